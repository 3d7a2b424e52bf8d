"""history: instance, type and system level (http://hl7.org/fhir/R4/http.html#history).

Pages are stable: the first page fixes an upper time bound (`_at_most`, our own paging
parameter) that every later page repeats, so new versions never shift a page under a reader.

Through the disclosure gate: each version is decided on its own content (a delete marker on the
version it deleted); hidden versions are left out before paging, so a page holds only what the
caller may see. Up to EXACT_TOTAL_MAX stored versions every one is decided, the total is the
visible count and `_offset` counts visible versions; beyond that pages are filled by scanning,
`_offset` counts stored versions and the total is absent (exact would mean deciding them all).
The instance history of a resource the caller may not see is 404 as if it did not exist. One
BALP query AuditEvent per page, durable before the response.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import orjson

from gateway.consent.enforcement import TRUSTED as _TRUSTED
from gateway.consent.enforcement import Gate, Shown
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id, digits
from gateway.fhir_api.interactions.read import last_live
from gateway.search.dates import parse_instant_us
from gateway.storage.base import Session, StoredVersion

# A filtered page reads stored versions in batches until it is full; it gives up (and links to
# where it stopped) after this many, so a caller who sees little of a long history is bounded.
MAX_SCANNED = 10_000
EXACT_TOTAL_MAX = 2_000


def _int_param(req: FhirRequest, name: str, default: int, maximum: int) -> int:
    raw = req.param(name)
    if raw is None:
        return default
    value = digits(raw, maximum)
    if value is None:
        raise invalid(f"{name} must be a non-negative integer", name)
    return value


def history_entry(base: str, sv: StoredVersion, body: bytes | None = None) -> dict[str, Any]:
    url = f"{base}/{sv.resource_type}/{sv.id}"
    entry: dict[str, Any] = {"fullUrl": url}
    if not sv.deleted:
        entry["resource"] = orjson.Fragment(body if body is not None else sv.body)
    method = "POST" if sv.method == "POST" else sv.method
    entry["request"] = {
        "method": "PUT" if method == "PATCH" else method,
        "url": sv.resource_type if method == "POST" else f"{sv.resource_type}/{sv.id}",
    }
    entry["response"] = {
        "status": "201 Created"
        if sv.version == 1 and not sv.deleted
        else ("204 No Content" if sv.deleted else "200 OK"),
        "etag": sv.etag,
        "lastModified": sv.last_updated,
    }
    return entry


def _decide(gate: Gate, session: Session, versions: list[StoredVersion]) -> list[Shown | None]:
    """Per version what the caller may see; a delete marker is decided on what it deleted."""
    decided = [last_live(session, sv) if sv.deleted else sv for sv in versions]
    present = [d for d in decided if d is not None]
    shown = iter(gate.disclose(session, present))
    out: list[Shown | None] = []
    for sv, d in zip(versions, decided, strict=True):
        s = next(shown) if d is not None else None
        # A delete marker is listed with what it deleted (as the marker itself: no body).
        out.append(Shown(sv, b"", s.decision) if s is not None and sv.deleted else s)
    return out


def _filtered_page(
    gate: Gate,
    session: Session,
    req: FhirRequest,
    since_us: int | None,
    at_most_us: int,
    offset: int,
    count: int,
) -> tuple[list[Shown], int | None]:
    """Up to `count` visible versions from stored position `offset` on, and the stored position
    of the next visible one (None when there is none)."""
    page: list[Shown] = []
    position, scanned, batch = offset, 0, max(count * 2, 50)
    while scanned < MAX_SCANNED:
        versions, _ = session.history(
            req.resource_type, req.id, since_us, at_most_us, position, batch
        )
        if not versions:
            return page, None
        for i, shown in enumerate(_decide(gate, session, versions)):
            if shown is None:
                continue
            if len(page) == count:
                return page, position + i
            page.append(shown)
        position += len(versions)
        scanned += len(versions)
    return page, position


def history(svc: Services, req: FhirRequest) -> FhirResponse:
    if req.id is not None:
        check_id(req.id)
    gate = req.gate
    level = "instance" if req.id else "type" if req.resource_type else "system"
    gate.start(f"history-{level}", req.resource_type)
    count = _int_param(req, "_count", svc.settings.default_page_size, svc.settings.max_page_size)
    offset = _int_param(req, "_offset", 0, 10**9)
    since = req.param("_since")
    since_us = parse_instant_us(since, "_since") if since else None
    at_most_us = digits(req.param("_at_most") or "") or time.time_ns() // 1000
    total: int | None = None
    next_offset: int | None = None
    with svc.repo.reader() as session:
        if req.id is not None:
            assert req.resource_type
            current = session.current(req.resource_type, req.id)
            if current is None or not _visible(gate, session, current):
                # Its denial is stored by routes.py once this reader session has closed.
                raise FhirError(Category.NOT_FOUND, f"{req.resource_type}/{req.id} is not known")
        if gate.is_trusted:
            versions, total = session.history(
                req.resource_type, req.id, since_us, at_most_us, offset, count
            )
            shown = [Shown(sv, sv.body, _TRUSTED) for sv in versions]
            next_offset = offset + count if offset + count < total else None
        else:
            _, stored = session.history(req.resource_type, req.id, since_us, at_most_us, 0, 0)
            if stored <= EXACT_TOTAL_MAX:
                everything, _ = session.history(
                    req.resource_type, req.id, since_us, at_most_us, 0, stored
                )
                visible = [v for v in _decide(gate, session, everything) if v is not None]
                total, shown = len(visible), visible[offset : offset + count]
                next_offset = offset + count if offset + count < total else None
            else:
                shown, next_offset = _filtered_page(
                    gate, session, req, since_us, at_most_us, offset, count
                )
    path = "/".join(p for p in (req.resource_type, req.id) if p)
    self_url = f"{req.base}/{path + '/' if path else ''}_history"

    def link(relation: str, off: int) -> dict[str, str]:
        q: list[tuple[str, str]] = [("_count", str(count)), ("_at_most", str(at_most_us))]
        if since:
            q.append(("_since", since))
        q.append(("_offset", str(off)))
        return {"relation": relation, "url": f"{self_url}?{urlencode(q)}"}

    links = [link("self", offset)]
    if next_offset is not None:
        links.append(link("next", next_offset))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    gate.note_query(f"{path + '/' if path else ''}_history", req.params, shown, f"history-{level}")
    gate.flush_reads(svc.repo)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    bundle["entry"] = [history_entry(req.base, s.version, s.body) for s in shown]
    return FhirResponse(200, bundle)


def _visible(gate: Gate, session: Session, current: StoredVersion) -> bool:
    if gate.is_trusted:
        return True
    decided = last_live(session, current) if current.deleted else current
    return decided is not None and gate.disclose_one(session, decided) is not None
