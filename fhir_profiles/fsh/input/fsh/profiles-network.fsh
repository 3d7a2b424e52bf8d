// The client's network (CareTeam with the named coordinator), the shared client plan
// (asiakassuunnitelma) and the client's goals.

Profile: ClientNetwork
Parent: CareTeam
Id: client-network
Title: "Asiakkaan palveluverkosto (the client's network)"
Description: "The client's network with exactly one active named coordinator (asiakasvastaava); every participant is dated, so who was responsible is answerable for any past date."
* ^experimental = false
* obeys cn-1 and cn-2
* category 1..*
* category = $loinc#LA28865-6
* subject 1..1
* subject only Reference(Patient)
* managingOrganization 1..*
* participant 1..*
* participant.extension contains ChosenByClient named chosen-by-client 0..1
* participant.role 1..*
* participant.period 1..1
* participant.period.start 1..1

Invariant: cn-1
Description: "An active network has exactly one coordinator (asiakasvastaava) whose period has no end."
Severity: #error
Expression: "status = 'active' implies participant.where(role.coding.where(system = 'https://fhir-plan-gateway.example/CodeSystem/coordinator-role' and code = 'asiakasvastaava').exists() and period.end.empty()).count() = 1"

Invariant: cn-2
Description: "The coordinator (asiakasvastaava) is a PractitionerRole: a named professional of an organisation."
Severity: #error
Expression: "participant.where(role.coding.where(system = 'https://fhir-plan-gateway.example/CodeSystem/coordinator-role' and code = 'asiakasvastaava').exists()).all(member.reference.matches('^(.*/)?PractitionerRole/[A-Za-z0-9.-]+(/_history/[A-Za-z0-9.-]+)?$') or member.reference.startsWith('urn:uuid:') or member.type = 'PractitionerRole')"

Profile: ClientPlan
Parent: CarePlan
Id: client-plan
Title: "Asiakassuunnitelma (shared client plan)"
Description: "The shared client plan: written by the coordinator's organisation (the custodian), with the client's network, the review date (palaamme tähän), the peer-support offer and, at the end, the lasting solution."
* ^experimental = false
* extension contains
    ReviewDate named review-date 0..1 and
    PeerSupportOffer named peer-support-offer 0..1 and
    LastingSolutionExtension named lasting-solution 0..1
* category 1..*
* category = $plan-category#asiakassuunnitelma
* intent = #plan
* subject only Reference(Patient)
* author 1..1
* author only Reference(Organization or PractitionerRole)
* careTeam 1..*
* careTeam only Reference(CareTeam)

Profile: ClientGoal
Parent: Goal
Id: client-goal
Title: "Asiakkaan tavoite (the client's goal)"
Description: "A goal of the client plan, as text; client-own-words says it is in the client's own words."
* ^experimental = false
* extension contains ClientOwnWords named client-own-words 0..1
* description.text 1..1
