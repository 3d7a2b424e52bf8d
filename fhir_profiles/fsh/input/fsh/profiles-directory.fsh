// The service network's directory: clients, organisations, professionals and their roles,
// with the Finnish identifiers aligned with FI Base (HETU, SOTE organisation register, Terhikki).

Profile: FiClient
Parent: Patient
Id: fi-client
Title: "Asiakas (client)"
Description: "A client with a Finnish personal identity code (HETU, urn:oid:1.2.246.21). meta.security may carry TURVAKIELTO (non-disclosure order) or a v3 confidentiality code; the gateway then shows the client to the custodians only."
* ^experimental = false
* obeys hetu-1
* identifier 1..*
* meta.security from ClientSecurityLabel (required)

Invariant: hetu-1
Description: "A HETU (urn:oid:1.2.246.21) is DDMMYY, a century sign, three digits and the right check character."
Severity: #error
Expression: "identifier.where(system = 'urn:oid:1.2.246.21').all(value.matches('^[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]$') and '0123456789ABCDEFHJKLMNPRSTUVWXY'.substring((value.substring(0, 6) + value.substring(7, 3)).toInteger() mod 31, 1) = value.substring(10, 1))"

Profile: FiOrganization
Parent: Organization
Id: fi-organization
Title: "Palveluverkoston organisaatio (network organisation)"
Description: "An organisation of the client's service network, identified in the SOTE organisation register (urn:oid:1.2.246.537.6.202.2008) and typed with network-organization-type."
* ^experimental = false
* obeys sote-1
* identifier 1..*
* type 1..*
* type from NetworkOrganizationTypeVS (required)

Invariant: sote-1
Description: "The organisation has a SOTE organisation register identifier (urn:oid:1.2.246.537.6.202.2008) and each one is an OID."
Severity: #error
Expression: "identifier.where(system = 'urn:oid:1.2.246.537.6.202.2008').exists() and identifier.where(system = 'urn:oid:1.2.246.537.6.202.2008').all(value.matches('^[0-2]([.](0|[1-9][0-9]*))+$'))"

Profile: FiPractitioner
Parent: Practitioner
Id: fi-practitioner
Title: "Ammattilainen (professional)"
Description: "A professional; health care professionals carry their Terhikki register number (urn:oid:1.2.246.537.26)."
* ^experimental = false
* obeys terhikki-1

Invariant: terhikki-1
Description: "A Terhikki register number (urn:oid:1.2.246.537.26) has 11 digits."
Severity: #error
Expression: "identifier.where(system = 'urn:oid:1.2.246.537.26').all(value.matches('^[0-9]{11}$'))"

Profile: FiProfessionalRole
Parent: PractitionerRole
Id: fi-professional-role
Title: "Ammattirooli (professional role)"
Description: "A professional's role in one organisation of the network, coded with professional-role."
* ^experimental = false
* practitioner 1..1
* organization 1..1
* code 1..*
* code from ProfessionalRoleVS (required)
