"""history: instance, type and system level (http://hl7.org/fhir/R4/http.html#history).

Pages are stable: the first page fixes an upper time bound (`_at_most`, our own paging
parameter) that every later page repeats, so new versions never shift a page under a reader.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import orjson

from gateway.errors import invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id, digits
from gateway.search.dates import parse_instant_us
from gateway.storage.base import StoredVersion


def _int_param(req: FhirRequest, name: str, default: int, maximum: int) -> int:
    raw = req.param(name)
    if raw is None:
        return default
    value = digits(raw, maximum)
    if value is None:
        raise invalid(f"{name} must be a non-negative integer", name)
    return value


def history_entry(base: str, sv: StoredVersion) -> dict[str, Any]:
    url = f"{base}/{sv.resource_type}/{sv.id}"
    entry: dict[str, Any] = {"fullUrl": url}
    if not sv.deleted:
        entry["resource"] = orjson.Fragment(sv.body)
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


def history(svc: Services, req: FhirRequest) -> FhirResponse:
    if req.id is not None:
        check_id(req.id)
    count = _int_param(req, "_count", svc.settings.default_page_size, svc.settings.max_page_size)
    offset = _int_param(req, "_offset", 0, 10**9)
    since = req.param("_since")
    since_us = parse_instant_us(since, "_since") if since else None
    at_most_us = digits(req.param("_at_most") or "") or time.time_ns() // 1000
    with svc.repo.reader() as session:
        if req.id is not None:
            assert req.resource_type
            if session.current(req.resource_type, req.id) is None:
                from gateway.errors import not_found

                raise not_found(f"{req.resource_type}/{req.id} is not known")
        versions, total = session.history(
            req.resource_type, req.id, since_us, at_most_us, offset, count
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
    if offset + count < total:
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": links,
        "entry": [history_entry(req.base, sv) for sv in versions],
    }
    return FhirResponse(200, bundle)
