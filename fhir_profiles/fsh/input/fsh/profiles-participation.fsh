// The client's participation (stage feedback) and the final summary (loppuyhteenveto).

Profile: ClientFeedback
Parent: QuestionnaireResponse
Id: client-feedback
Title: "Asiakkaan palaute (the client's stage feedback)"
Description: "The client's feedback on one stage of the path, answering the stage-feedback Questionnaire."
* ^experimental = false
* obeys cf-1 and cf-2
* questionnaire 1..1
* questionnaire = "https://fhir-plan-gateway.example/Questionnaire/stage-feedback"
* subject 1..1
* subject only Reference(Patient)
* basedOn 1..*
* basedOn only Reference(CarePlan)
* item 1..*

Invariant: cf-1
Description: "The answer to item 'stage' is one feedback-stage code."
Severity: #error
Expression: "item.where(linkId = 'stage').answer.valueCoding.where(system = 'https://fhir-plan-gateway.example/CodeSystem/feedback-stage').count() = 1"

Invariant: cf-2
Description: "The answers to item 'feedback' are text."
Severity: #error
Expression: "item.where(linkId = 'feedback').answer.all(valueString.exists())"

Profile: FinalSummary
Parent: Composition
Id: final-summary
Title: "Loppuyhteenveto (final summary)"
Description: "The summary at the end of the period: goals and how far they were reached, services used, responsibilities fulfilled and the lasting solution; held by the custodian."
* ^experimental = false
* extension contains LastingSolutionExtension named lasting-solution 0..1
* type = $loinc#34133-9
* subject 1..1
* subject only Reference(Patient)
* custodian 1..1
* section 1..*
* section.code 1..1
* section.code from SummarySectionVS (required)

RuleSet: English(path, text)
* {path}.extension[+].url = "http://hl7.org/fhir/StructureDefinition/translation"
* {path}.extension[=].extension[+].url = "lang"
* {path}.extension[=].extension[=].valueCode = #en
* {path}.extension[=].extension[+].url = "content"
* {path}.extension[=].extension[=].valueString = {text}

Instance: stage-feedback
InstanceOf: Questionnaire
Title: "Palautteesi (your feedback)"
Description: "The client's feedback at a stage of the path: the plan, a network meeting, a handover, follow-up, the final summary."
Usage: #definition
* url = "https://fhir-plan-gateway.example/Questionnaire/stage-feedback"
* version = "0.1.0"
* name = "StageFeedback"
* title = "Palautteesi (your feedback)"
* status = #active
* experimental = false
* language = #fi
* subjectType = #Patient
* item[0].linkId = "stage"
* item[=].text = "Mistä vaiheesta annat palautetta?"
* insert English(item[=].text, "Which stage is your feedback about?")
* item[=].type = #choice
* item[=].required = true
* item[=].answerValueSet = Canonical(FeedbackStageVS)
* item[+].linkId = "feedback"
* item[=].text = "Mitä haluat sanoa? Mikä on auttanut ja mikä ei?"
* insert English(item[=].text, "What would you like to say? What has helped and what has not?")
* item[=].type = #text
* item[=].required = true
* item[+].linkId = "contact"
* item[=].text = "Saako sinuun ottaa yhteyttä palautteesi vuoksi?"
* insert English(item[=].text, "May we contact you about your feedback?")
* item[=].type = #boolean
* item[=].required = false
