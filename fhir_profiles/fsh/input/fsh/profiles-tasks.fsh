// Network responsibilities (ServiceRequest + Task, the Gravity referral pattern) and the
// escorted handover of the coordinator (saattaen vaihtaen).

Profile: ResponsibilityRequest
Parent: ServiceRequest
Id: responsibility-request
Title: "Vastuu suunnitelmassa (a responsibility in the plan)"
Description: "What a partner of the network is asked to do for the client, based on the client plan; the service kind drives the overlap check."
* ^experimental = false
* basedOn 1..*
* basedOn only Reference(CarePlan)
* intent = #order
* code 1..1
* code from ServiceKindVS (required)
* subject only Reference(Patient)
* requester 1..1
* performer 1..*

Profile: NetworkResponsibility
Parent: Task
Id: network-responsibility
Title: "Verkoston vastuutehtävä (network responsibility)"
Description: "The partner's task for one responsibility: it fulfils the ServiceRequest, is owned by the partner organisation or professional and is due by restriction.period.end."
* ^experimental = false
* code 1..1
* code = $task-code#fulfill
* intent = #order
* focus 1..1
* focus only Reference(ServiceRequest)
* for 1..1
* for only Reference(Patient)
* basedOn only Reference(CarePlan)
* requester 1..1
* owner 1..1
* owner only Reference(Organization or PractitionerRole)
* restriction 1..1
* restriction.period 1..1
* restriction.period.end 1..1
* restriction.period.end ^short = "Määräaika (due date)"
* businessStatus from BusinessStatusVS (required)

Profile: CoordinatorHandover
Parent: Task
Id: coordinator-handover
Title: "Asiakasvastaavan vaihto saattaen vaihtaen (escorted handover)"
Description: "A proposal to the next coordinator (owner) to take over the client's network (focus); only the owner accepts or rejects, a rejection says why, and the current coordinator stays responsible until acceptance."
* ^experimental = false
* obeys ho-1
* code 1..1
* code = $task-type#coordinator-handover
* intent = #order
* focus 1..1
* focus only Reference(CareTeam)
* for 1..1
* for only Reference(Patient)
* requester 1..1
* owner 1..1
* owner only Reference(PractitionerRole)
* restriction 1..1
* restriction.period 1..1
* restriction.period.end 1..1
* restriction.period.end ^short = "Vastattava viimeistään (answer by)"
* reasonCode from HandoverReasonVS (required)

Invariant: ho-1
Description: "A rejected handover says why (statusReason)."
Severity: #error
Expression: "status = 'rejected' implies statusReason.exists()"
