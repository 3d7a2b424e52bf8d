// One ValueSet per local CodeSystem (same id, the whole CodeSystem), plus the labels a
// client's record may carry. Profiles bind to these (required where the codes are ours).

RuleSet: LocalValueSet
* ^language = #fi
* ^experimental = false
* ^status = #active

ValueSet: CoordinatorRoleVS
Id: coordinator-role
Title: "Asiakasvastaavamallin roolit (roles in the client's network)"
Description: "All codes of the coordinator-role CodeSystem."
* insert LocalValueSet
* include codes from system CoordinatorRole

ValueSet: ProfessionalRoleVS
Id: professional-role
Title: "Ammattiroolit (professional roles)"
Description: "All codes of the professional-role CodeSystem."
* insert LocalValueSet
* include codes from system ProfessionalRole

ValueSet: NetworkOrganizationTypeVS
Id: network-organization-type
Title: "Palveluverkoston organisaatiotyypit (network organisation types)"
Description: "All codes of the network-organization-type CodeSystem."
* insert LocalValueSet
* include codes from system NetworkOrganizationType

ValueSet: ServiceKindVS
Id: service-kind
Title: "Palvelulajit (service kinds)"
Description: "All codes of the service-kind CodeSystem."
* insert LocalValueSet
* include codes from system ServiceKind

ValueSet: HandoverReasonVS
Id: handover-reason
Title: "Asiakasvastaavan vaihdon syyt (handover reasons)"
Description: "All codes of the handover-reason CodeSystem."
* insert LocalValueSet
* include codes from system HandoverReason

ValueSet: BusinessStatusVS
Id: business-status
Title: "Vastuun käsittelyvaihe (business status of a responsibility)"
Description: "All codes of the business-status CodeSystem."
* insert LocalValueSet
* include codes from system BusinessStatus

ValueSet: PlanCategoryVS
Id: plan-category
Title: "Suunnitelman laji (plan category)"
Description: "All codes of the plan-category CodeSystem."
* insert LocalValueSet
* include codes from system PlanCategory

ValueSet: TaskTypeVS
Id: task-type
Title: "Koordinoinnin tehtävät (coordination task types)"
Description: "All codes of the task-type CodeSystem."
* insert LocalValueSet
* include codes from system TaskType

ValueSet: LastingSolutionVS
Id: lasting-solution
Title: "Pysyvä ratkaisu (lasting solution)"
Description: "All codes of the lasting-solution CodeSystem."
* insert LocalValueSet
* include codes from system LastingSolution

ValueSet: SecurityLabelVS
Id: security-label
Title: "Suojausmerkinnät (security labels)"
Description: "All codes of the security-label CodeSystem."
* insert LocalValueSet
* include codes from system SecurityLabel

ValueSet: ClientSecurityLabel
Id: client-security-label
Title: "Asiakkaan suojausmerkinnät (security labels on a client)"
Description: "What may stand in a client's Patient.meta.security: TURVAKIELTO and the v3 confidentiality codes (R and V mean the same as TURVAKIELTO to the gateway)."
* insert LocalValueSet
* include codes from system SecurityLabel
* include codes from valueset $v3-Confidentiality

ValueSet: DataOriginVS
Id: data-origin
Title: "Tiedon alkuperä (data origin)"
Description: "All codes of the data-origin CodeSystem."
* insert LocalValueSet
* include codes from system DataOrigin

ValueSet: FeedbackStageVS
Id: feedback-stage
Title: "Palautteen vaihe (feedback stage)"
Description: "All codes of the feedback-stage CodeSystem."
* insert LocalValueSet
* include codes from system FeedbackStage

ValueSet: PeerSupportAnswerVS
Id: peer-support-answer
Title: "Vertaistukitarjouksen vastaus (answer to the peer-support offer)"
Description: "All codes of the peer-support-answer CodeSystem."
* insert LocalValueSet
* include codes from system PeerSupportAnswer

ValueSet: SummarySectionVS
Id: summary-section
Title: "Loppuyhteenvedon osiot (final summary sections)"
Description: "All codes of the summary-section CodeSystem."
* insert LocalValueSet
* include codes from system SummarySection
