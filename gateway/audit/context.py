"""Who did something, from where, why, when and with what outcome: the input of every builder.

An `AuditContext` holds ids and codes only (organisation, OAuth client, PractitionerRole, purpose
of use, request id): never a name, a HETU or any other value from a client's record, so nothing
built from it can carry personal data beyond references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from gateway.audit import codes

_ID = re.compile(r"^[A-Za-z0-9\-\.]{1,64}$")


class Outcome(StrEnum):
    """AuditEvent.outcome (R4 required binding AuditEventOutcome)."""

    SUCCESS = codes.OUTCOME_SUCCESS
    MINOR_FAILURE = codes.OUTCOME_MINOR  # e.g. part of an answer withheld
    SERIOUS_FAILURE = codes.OUTCOME_SERIOUS  # e.g. refused (403/404 by consent, bad token)
    MAJOR_FAILURE = codes.OUTCOME_MAJOR  # the server failed


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuditContext:
    """The caller and the circumstances of one request, as far as audit needs them."""

    client_id: str  # OAuth client_id (SMART Backend Services), as registered
    server: str  # this gateway: its service base URL, the observer and source of every event
    organization_id: str | None = None  # Organization id of the caller; None only before login
    practitioner_role_id: str | None = None  # the acting professional, when the caller names one
    address: str | None = None  # the caller's network address as seen on the connection
    purpose_of_use: tuple[str, ...] = ()  # v3-PurposeOfUse codes (e.g. CAREMGT, TREAT)
    request_id: str | None = None  # X-Request-Id: BALP's transaction entity
    when: datetime = field(default_factory=_now)  # timezone-aware
    outcome: Outcome = Outcome.SUCCESS

    def __post_init__(self) -> None:
        if self.when.tzinfo is None:
            raise ValueError("AuditContext.when must be timezone-aware")
        for name in ("organization_id", "practitioner_role_id"):
            value = getattr(self, name)
            if value is not None and not _ID.match(value):
                raise ValueError(f"AuditContext.{name} must be a FHIR id")
        if not self.client_id or not self.server:
            raise ValueError("AuditContext needs a client_id and the server")

    @property
    def recorded(self) -> str:
        """`when` as a FHIR instant in UTC."""
        return self.when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
