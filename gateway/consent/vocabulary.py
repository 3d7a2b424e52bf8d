"""The consent gate's tables: which resources are a client's plan, who holds a record, codes.

Data only (STYLE habit 1): no branches here. `decisions.py` and `records.py` read these tables;
changing who sees what starts by changing a row here and the table in the module docstring of
`decisions.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_profiles import CANONICAL

SECURITY_LABELS = f"{CANONICAL}/CodeSystem/security-label"
CUSTODIAN_EXTENSION = f"{CANONICAL}/StructureDefinition/custodian"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
RESOURCE_TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"
HETU_SYSTEM = "urn:oid:1.2.246.21"
SOTE_SYSTEM = "urn:oid:1.2.246.537.6.202.2008"  # SOTE organisation register (THL)
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"

Coding = tuple[str, str]  # (system, code)

# TURVAKIELTO (Finnish non-disclosure order) on Patient.meta.security; v3 R and V are equivalent.
PROTECTED_LABELS: frozenset[Coding] = frozenset(
    {
        (SECURITY_LABELS, "turvakielto"),
        (V3_CONFIDENTIALITY, "R"),
        (V3_CONFIDENTIALITY, "V"),
    }
)
REDACTED: dict[str, str] = {"system": V3_OBSERVATION_VALUE, "code": "REDACTED"}

PRIVACY_SCOPE: Coding = (CONSENT_SCOPE, "patient-privacy")
RECIPIENT_ROLE: Coding = (V3_PARTICIPATION, "IRCP")
CUSTODIAN_ROLE: Coding = (V3_PARTICIPATION, "CST")
# Consent.provision.action codes under which a read by another organisation falls.
READ_ACTIONS: frozenset[Coding] = frozenset(
    {(CONSENT_ACTION, "access"), (CONSENT_ACTION, "disclose")}
)
# Consents that decide (R4 consent-state-codes); `inactive` = revoked, so it permits nothing.
DECIDING_STATUS = "active"
# A Consent in any other status than these names no client custodian (Consent.organization).
NOT_CUSTODY_STATUSES: frozenset[str] = frozenset({"entered-in-error"})


@dataclass(frozen=True)
class Path:
    """Where a reference sits: `element` (a list fans out), then `reference` inside each item.

    `coded` keeps only items whose CodeableConcept `coded[0]` carries the coding `coded[1]`.
    """

    element: str
    reference: str = ""
    coded: tuple[str, Coding] | None = None


# How each plan resource is tied to its client: a reference to Patient/<id> at these paths. A
# reference to another plan resource ties it to that resource's client (one hop, Provenance).
SELF = Path("")  # the Patient is its own client
CLIENT_LINKS: dict[str, tuple[Path, ...]] = {
    "Patient": (SELF,),
    "CarePlan": (Path("subject"),),
    "Goal": (Path("subject"),),
    "CareTeam": (Path("subject"),),
    "ServiceRequest": (Path("subject"),),
    "Task": (Path("for"),),
    "Consent": (Path("patient"),),
    "Provenance": (Path("target"),),
    "QuestionnaireResponse": (Path("subject"), Path("source")),
    "Communication": (Path("subject"), Path("recipient"), Path("sender")),
    "DocumentReference": (Path("subject"),),
    "Composition": (Path("subject"),),
    # The audit trail (IHE BALP): an event is about the patients it names in role Patient.
    "AuditEvent": (Path("entity", "what", ("role", (OBJECT_ROLE, "1"))),),
}
# Plan types shown to the client's custodians (and record holders) only, never under a permit
# Consent: the audit trail says who looked at what, including what was withheld from whom; a
# document (the final summary, issue 4) aggregates records that each have their own consent
# rules, so its stored text could disclose what a deny withholds. Partners get a document only
# through `Composition/$document`, which rebuilds it entry by entry through the gate.
DOCUMENT_TYPES: frozenset[str] = frozenset({"Composition", "DocumentReference"})
CUSTODIAN_ONLY_TYPES: frozenset[str] = frozenset({"AuditEvent"}) | DOCUMENT_TYPES
PLAN_TYPES: frozenset[str] = frozenset(CLIENT_LINKS)
# Types whose client links may go through another resource (one hop, never further).
VIA_TYPES: frozenset[str] = frozenset({"Provenance"})

# Who holds a record (its custodian): Organization or PractitionerRole (-> its organization)
# references at these paths, plus the custodian extension on any resource.
HOLDERS: dict[str, tuple[Path, ...]] = {
    "Patient": (Path("managingOrganization"),),
    "CarePlan": (Path("author"),),
    "CareTeam": (Path("managingOrganization"),),
    "Goal": (Path("expressedBy"),),
    "ServiceRequest": (Path("requester"), Path("performer")),
    "Task": (Path("requester"), Path("owner")),
    "Consent": (Path("organization"),),
    "Provenance": (
        Path("agent", "who", ("type", CUSTODIAN_ROLE)),
        Path("agent", "onBehalfOf", ("type", CUSTODIAN_ROLE)),
    ),
    "QuestionnaireResponse": (Path("author"),),
    "Communication": (Path("sender"),),
    "DocumentReference": (Path("custodian"), Path("author")),
    "Composition": (Path("custodian"), Path("author")),
}

# The shared network directory: every authenticated organisation sees these; never client data.
DIRECTORY_TYPES: frozenset[str] = frozenset(
    {"Organization", "Practitioner", "PractitionerRole", "Endpoint"}
)
