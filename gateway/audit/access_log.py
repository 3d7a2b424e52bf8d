"""A client's own access log: which organisation (and professional) touched my records, when,
why and how it ended, newest first.

It asks the search engine (`AuditEvent?patient=<id>&_sort=-date`), never SQL, so the disclosure
gate that filters every search also filters this view. It reduces each event to references and
codes: nothing is logged, and nothing beyond ids and codes is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from gateway.audit import codes
from gateway.fhir_api.context import FhirRequest, check_id

if TYPE_CHECKING:
    from gateway.consent.enforcement import Gate
    from gateway.fhir_api.context import Services
    from gateway.storage.base import Session

DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Access:
    """One line of the access log."""

    when: str  # AuditEvent.recorded
    organization: str | None  # `Organization/<id>`
    practitioner_role: str | None  # `PractitionerRole/<id>`
    purpose: tuple[str, ...]  # purposeOfEvent codes
    event: str  # subtype code (read, search-type, AuthZ-Consent…) or else the type code
    outcome: str  # AuditEvent.outcome: 0 success, 4 partly withheld, 8 refused


def access_log(
    svc: Services,
    session: Session,
    patient_id: str,
    limit: int = DEFAULT_LIMIT,
    gate: Gate | None = None,
) -> list[Access]:
    """The newest `limit` accesses to the client's records, through svc.search in `session`
    and the caller's disclosure `gate` (only the client's custodians see the audit trail; with
    no gate, the trusted in-process view)."""
    check_id(patient_id, "patient")
    count = max(1, min(limit, svc.settings.max_page_size))
    params = [("patient", f"Patient/{patient_id}"), ("_sort", "-date"), ("_count", str(count))]
    req = FhirRequest("GET", "", resource_type="AuditEvent", params=params)
    if gate is not None:
        req.gate = gate
    response = svc.search.search_in(svc, session, req)
    assert isinstance(response.body, dict)
    # Entries hold stored bytes as orjson Fragments: one round trip makes them plain JSON.
    bundle = orjson.loads(orjson.dumps(response.body))
    return [
        _access(e["resource"])
        for e in bundle.get("entry", ())
        if e.get("search", {}).get("mode") == "match"
    ]


def _access(event: dict[str, Any]) -> Access:
    return Access(
        when=event["recorded"],
        organization=_agent_ref(event, "Organization/"),
        practitioner_role=_agent_ref(event, "PractitionerRole/"),
        purpose=_purposes(event),
        event=(event.get("subtype") or [event["type"]])[0].get("code", ""),
        outcome=event.get("outcome", ""),
    )


def _agent_ref(event: dict[str, Any], prefix: str) -> str | None:
    for agent in event.get("agent", ()):
        ref = (agent.get("who") or {}).get("reference", "")
        if ref.startswith(prefix):
            return ref
    return None


def _purposes(event: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        c["code"]
        for concept in event.get("purposeOfEvent", ())
        for c in concept.get("coding", ())
        if c.get("system") == codes.PURPOSE_OF_USE and "code" in c
    )
