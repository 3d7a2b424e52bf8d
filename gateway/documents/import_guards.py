"""The coordination model's write guards (gateway/coordination/guards.py) applied to an imported
document's transaction: `$import-cda` runs under its own rule (`cda-custodian`), which skips the
REST write path's guards, so a document must not do what a REST write may not (name a second
open coordinator, change the coordinator outside $designate-coordinator / $accept-handover,
change a handover's state). Reads storage only; never writes and never discloses.

The document's references are transaction placeholders (`urn:uuid:…`) of conditional creates;
they are resolved here as the transaction will (the stored match of each conditional create, in
the transaction's order), so a coordinator the directory already has compares equal to the one
the stored network names.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway.consent.model import Decision, Reason, Verdict
from gateway.coordination.guards import guard_write
from gateway.errors import FhirError
from gateway.fhir_api.context import FhirRequest, Services
from gateway.storage.base import Session

Entry = dict[str, Any]
# The resource types guard_write has rules for.
GUARDED = ("CareTeam", "Task")


def check(svc: Services, req: FhirRequest, session: Session, entries: list[Entry]) -> None:
    """409 naming the guard's rule when a written CareTeam or Task breaks a coordination rule
    (audited as a refused write); nothing is written then, the transaction never runs."""
    ids = placeholders(svc, session, entries)
    for entry in entries:
        resource = entry.get("resource") or {}
        rtype = resource.get("resourceType")
        if (entry.get("request") or {}).get("method") != "PUT" or rtype not in GUARDED:
            continue
        sv = session.current(str(rtype), str(resource.get("id")))
        live = None if sv is None or sv.deleted else orjson.loads(sv.body)
        try:
            guard_write("update" if live else "create", str(rtype), live, resolved(resource, ids))
        except FhirError:
            what = f"{rtype}/{resource.get('id')}"
            req.gate.note_deny(what, Decision(Verdict.DENY, Reason.WRITE_REFUSED))
            raise


def placeholders(svc: Services, session: Session, entries: list[Entry]) -> dict[str, str]:
    """fullUrl -> `Type/id` for every entry whose target is known before the transaction: a PUT
    at its id, a conditional create with exactly one stored match (criteria resolved in the
    transaction's order: plain creates, then conditional ones, each in entry order)."""
    out: dict[str, str] = {}
    for entry in entries:
        request = entry.get("request") or {}
        if request.get("method") == "PUT" and entry.get("fullUrl"):
            out[str(entry["fullUrl"])] = str(request.get("url"))
    for entry in entries:
        request = entry.get("request") or {}
        criteria = request.get("ifNoneExist")
        if request.get("method") != "POST" or not isinstance(criteria, str) or not criteria:
            continue
        rtype = str(request.get("url", "")).split("?")[0]
        params = [(k, out.get(v, v)) for k, v in parse_qsl(criteria.lstrip("?"))]
        found = svc.search.match_keys(session, rtype, params, None, 2)
        if len(found) == 1 and entry.get("fullUrl"):
            out[str(entry["fullUrl"])] = "/".join(found[0])
    return out


def resolved(value: Any, ids: dict[str, str]) -> Any:
    """`value` with every Reference.reference that is a known placeholder replaced."""
    if isinstance(value, dict):
        out = {k: resolved(v, ids) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in ids:
            out["reference"] = ids[ref]
        return out
    if isinstance(value, list):
        return [resolved(v, ids) for v in value]
    return value
