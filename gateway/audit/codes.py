"""Data only: every code system URL and code the AuditEvent builders use, defined once here.

IHE Basic Audit Log Patterns (BALP, https://profiles.ihe.net/ITI/BALP/) fix these codes per
pattern; `builders.py` picks them, `parts.py` turns them into Codings. No logic belongs here,
and no value from a client's record ever does.
"""

from __future__ import annotations

# A code as (system, code, display); display "" where no display is given.
Code = tuple[str, str, str]

# -- code systems -----------------------------------------------------------------------------
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
# The R4 ValueSet v3-PurposeOfUse (AuditEvent.purposeOfEvent, agent.purposeOfUse and
# Consent.provision.purpose) draws its codes from CodeSystem v3-ActReason; using the same system
# as the Consents (samples/bundles) lets an audited purpose be compared with a consented one.
PURPOSE_OF_USE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
SECURITY_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
IHE_EVENT = "urn:ihe:event-type-code"
BALP_AUTHZ = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
BALP_AGENT = "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes"

# Our own identifier systems (canonical base as in fhir_profiles/ and samples/).
CLIENT_ID_SYSTEM = "https://fhir-plan-gateway.example/sid/oauth-client-id"
GATEWAY_SYSTEM = "https://fhir-plan-gateway.example/sid/gateway"
JTI_PREFIX = "urn:ietf:params:oauth:jti:"  # BALP AuthZconsent entity[token], after RFC 3553

# -- AuditEvent.type / subtype ----------------------------------------------------------------
REST: Code = (AUDIT_EVENT_TYPE, "rest", "Restful Operation")
EXPORT: Code = (DCM, "110106", "Export")
SECURITY_ALERT: Code = (DCM, "110113", "Security Alert")
USER_AUTHENTICATED: Code = (DCM, "110114", "User Authenticated")
LOGIN: Code = (DCM, "110122", "Login")
GET_ACCESS_TOKEN: Code = (IHE_EVENT, "ITI-71", "Get Access Token")
DISCLOSE: Code = (LIFECYCLE, "disclose", "")
AUTHZ_CONSENT: Code = (
    BALP_AUTHZ,
    "AuthZ-Consent",
    "Authorization Decision using Roles and Consent",
)
AUTHZ_ROLE: Code = (BALP_AUTHZ, "AuthZ-Role", "Authorization Decision using only Roles")
# http://hl7.org/fhir/R4/valueset-type-restful-interaction.html: the display is the code.
INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "history-system",
    "create",
    "search-type",
    "search-system",
)
# The interactions answered with Bundle pages: one AuditEvent per page.
PAGED_INTERACTIONS = (
    "search-type",
    "search-system",
    "history-instance",
    "history-type",
    "history-system",
)

# -- AuditEvent.action (required binding AuditEventAction) and outcome (AuditEventOutcome) ----
ACTION_CREATE, ACTION_READ, ACTION_UPDATE, ACTION_DELETE, ACTION_EXECUTE = "C", "R", "U", "D", "E"
WRITE_ACTIONS = {"create": "C", "update": "U", "patch": "U", "delete": "D"}
OUTCOME_SUCCESS, OUTCOME_MINOR, OUTCOME_SERIOUS, OUTCOME_MAJOR = "0", "4", "8", "12"

# -- agent types ------------------------------------------------------------------------------
SOURCE_ROLE: Code = (DCM, "110153", "Source Role ID")
DESTINATION_ROLE: Code = (DCM, "110152", "Destination Role ID")
APPLICATION: Code = (DCM, "110150", "Application")
RECIPIENT: Code = (PARTICIPATION_TYPE, "IRCP", "information recipient")
AUTHOR: Code = (PARTICIPATION_TYPE, "AUT", "author (originator)")
# BALP AuthZconsent agent[userorg]: the pattern fixes PROV for the requesting organisation.
PROVIDER_ORG: Code = (ROLE_CLASS, "PROV", "healthcare provider")
AUTH_SERVER: Code = (SECURITY_ROLE, "authserver", "authorization server")
OAUTH_SERVICE: Code = (BALP_AGENT, "AuthzOauthService", "")

# -- AuditEvent.source.type -------------------------------------------------------------------
APPLICATION_SERVER: Code = (SOURCE_TYPE, "4", "Application Server")
SECURITY_SERVER: Code = (SOURCE_TYPE, "6", "Security Server")

# -- agent.network.type (required binding AuditEventAgentNetworkType) ------------------------
NETWORK_IP, NETWORK_URI = "2", "5"

# -- entity type / role -----------------------------------------------------------------------
PERSON: Code = (ENTITY_TYPE, "1", "Person")
SYSTEM_OBJECT: Code = (ENTITY_TYPE, "2", "System Object")
CONSENT_TYPE: Code = (RESOURCE_TYPES, "Consent", "Consent")
REQUEST_ID_TYPE: Code = (BALP_ENTITY, "XrequestId", "")
OAUTH_TOKEN_TYPE: Code = (BALP_AGENT, "UserOauthAgent", "")
PATIENT_ROLE: Code = (OBJECT_ROLE, "1", "Patient")
REPORT_ROLE: Code = (OBJECT_ROLE, "3", "Report")
RESOURCE_ROLE: Code = (OBJECT_ROLE, "4", "Domain Resource")
SECURITY_RESOURCE_ROLE: Code = (OBJECT_ROLE, "13", "Security Resource")
QUERY_ROLE: Code = (OBJECT_ROLE, "24", "Query")

# -- what a recorded query must not keep ------------------------------------------------------
# Search parameter names (any segment of a chained/_has name) whose values are personal data:
# the value is replaced by REDACTED in entity.query. References by id are kept (they are ids).
PERSONAL_PARAMS = frozenset(
    {
        "identifier",
        "name",
        "family",
        "given",
        "phonetic",
        "birthdate",
        "death-date",
        "address",
        "address-city",
        "address-country",
        "address-postalcode",
        "address-state",
        "telecom",
        "phone",
        "email",
        "text",  # the :text modifier searches free text
    }
)
REDACTED = "*"

# -- Provenance of a write by a named professional (builders.provenance) ---------------------
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_ACTIVITY = {
    "create": "CREATE",
    "update": "UPDATE",
    "patch": "UPDATE",
    "delete": "DELETE",
}
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
PROVENANCE_AUTHOR: Code = (PROVENANCE_PARTICIPANT, "author", "Author")
