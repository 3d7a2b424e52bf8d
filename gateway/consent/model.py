"""The values the consent decision service works on: who asks, about what, and the answer.

Plain frozen dataclasses, no behaviour beyond small properties; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.consent.vocabulary import Coding


@dataclass(frozen=True)
class Caller:
    """The authenticated calling organisation, the professional acting for it, and why.

    `role` is a PractitionerRole id the security layer has checked belongs to `organization`;
    `purpose` a v3 PurposeOfUse / ActReason coding (system, code) when the caller states one.
    """

    organization: str
    role: str | None = None
    purpose: Coding | None = None


@dataclass(frozen=True)
class Client:
    """One client (Patient) as the rules need them: the Patient resource and their Consents.

    `patient` is None when the Patient is not stored (deleted or never loaded): then nothing of
    theirs is shown to anyone but the custodians (fail closed).
    """

    id: str
    patient: Mapping[str, Any] | None
    consents: tuple[Mapping[str, Any], ...] = ()


class Verdict(StrEnum):
    PERMIT = "permit"
    DENY = "deny"
    NOT_APPLICABLE = "not-applicable"  # no rule permits or denies: shown only to custodians


class Reason(StrEnum):
    """Why; stable codes for AuditEvent (BALP) and tests, never free text with personal data."""

    RECORD_HOLDER = "record-holder"  # the caller's organisation holds this record
    CLIENT_CUSTODIAN = "client-custodian"  # it manages the client's consent (holds the process)
    DIRECTORY = "directory"  # shared network directory (Organization, PractitionerRole, …)
    CONSENT_PERMIT = "consent-permit"
    CONSENT_DENY = "consent-deny"  # a deny rule naming the caller (or with unknown conditions)
    PROHIBITION = "prohibition"  # a deny rule without actor: everyone but custodians
    NO_CONSENT = "no-consent"  # no active rule applies to this caller at this time
    PROTECTED_CLIENT = "protected-client"  # TURVAKIELTO: the Patient is never shown to others
    NOT_PLAN_RESOURCE = "not-plan-resource"  # a type outside the plan and directory tables
    NO_CLIENT = "no-client"  # a plan resource tied to no client we can resolve
    UNKNOWN_CLIENT = "unknown-client"  # tied to a Patient that is not stored
    AUDIT_TRAIL = "audit-trail"  # AuditEvents: the client's custodians only
    DOCUMENT = "document"  # Composition/DocumentReference: custodians only (vocabulary.py)
    INSUFFICIENT_SCOPE = "insufficient-scope"  # the token's scopes do not cover the request
    OPERATION_REFUSED = "operation-refused"  # hooks.start_operation: e.g. writing AuditEvents
    FOREIGN_ROLE = "foreign-role"  # the named acting role is not an active role of the caller
    WRITE_REFUSED = "write-refused"  # a write the write rules (writes.py) do not allow


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: Reason
    consent: str | None = None  # id of the Consent whose rule decided, for audit
    client: str | None = None  # the client the decision was about (first that decided)
    clients: frozenset[str] = field(default_factory=frozenset)  # every client of the resource

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.PERMIT
