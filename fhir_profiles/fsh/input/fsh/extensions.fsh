// Extensions of the client coordinator model. Each one says where it may stand (Context).

RuleSet: LocalDefinition
* ^experimental = false
* ^status = #active

Extension: ReviewDate
Id: review-date
Title: "Palaamme tähän (review date)"
Description: "When the network returns to the plan (\"palaamme tähän\"): the follow-up lists plans past this date."
Context: CarePlan
* insert LocalDefinition
* value[x] only date
* value[x] 1..1

Extension: ClientOwnWords
Id: client-own-words
Title: "Asiakkaan omin sanoin (in the client's own words)"
Description: "True when Goal.description is the client's own words, not the professionals' summary."
Context: Goal
* insert LocalDefinition
* value[x] only boolean
* value[x] 1..1

Extension: ChosenByClient
Id: chosen-by-client
Title: "Asiakkaan valitsema (chosen by the client)"
Description: "True when the client chose this actor into the network."
Context: CareTeam.participant
* insert LocalDefinition
* value[x] only boolean
* value[x] 1..1

Extension: PeerSupportOffer
Id: peer-support-offer
Title: "Vertaistuen tarjous (peer-support offer)"
Description: "Peer support or an experience expert offered to the client, and the client's answer."
Context: CarePlan
* insert LocalDefinition
* extension contains
    answer 1..1 and
    date 0..1 and
    offeredBy 0..1
* extension[answer] ^short = "Vastaus (the client's answer)"
* extension[answer].value[x] only Coding
* extension[answer].value[x] 1..1
* extension[answer].value[x] from PeerSupportAnswerVS (required)
* extension[date] ^short = "Milloin (when offered or answered)"
* extension[date].value[x] only dateTime
* extension[date].value[x] 1..1
* extension[offeredBy] ^short = "Kuka tarjosi (who offered it)"
* extension[offeredBy].value[x] only Reference(PractitionerRole)
* extension[offeredBy].value[x] 1..1
* value[x] 0..0

Extension: LastingSolutionExtension
Id: lasting-solution
Title: "Pysyvä ratkaisu (lasting solution)"
Description: "Where the client's path led: studies, employment, rehabilitation, a pension..."
Context: Composition, CarePlan
* insert LocalDefinition
* value[x] only Coding
* value[x] 1..1
* value[x] from LastingSolutionVS (required)

Extension: Custodian
Id: custodian
Title: "Rekisterinpitäjä (custodian)"
Description: "The organisation (or a professional of it) that holds this record; the consent gate shows the record to its custodians."
Context: DomainResource
* insert LocalDefinition
* value[x] only Reference(Organization or PractitionerRole)
* value[x] 1..1
