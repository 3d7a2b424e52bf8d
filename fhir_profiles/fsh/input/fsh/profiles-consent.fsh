// The client's permission to share (suostumus), in the shapes of IHE Privacy Consent on FHIR.

Profile: SharingConsent
Parent: Consent
Id: sharing-consent
Title: "Suostumus tietojen luovuttamiseen (sharing consent)"
Description: "The client's privacy consent: the base provision names the recipient organisations (actor role IRCP), the purpose and the period; nested provisions (e.g. deny) make exceptions."
* ^experimental = false
* scope = $consentscope#patient-privacy
* category = $loinc#59284-0
* patient 1..1
* organization 1..*
* provision 1..1
* provision.period 1..1
* provision.actor.role = $v3-ParticipationType#IRCP
* provision.purpose 1..*
