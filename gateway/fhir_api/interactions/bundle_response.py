"""The transaction-response / batch-response Bundle: one entry per request entry, in the
request's order (http://hl7.org/fhir/R4/http.html#transaction-response).

Stored resources are embedded as their stored bytes (`orjson.Fragment`), never re-serialised
through models; a failed batch entry carries its OperationOutcome in `response.outcome`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson

from gateway.errors import FhirError, information
from gateway.fhir_api.context import FhirRequest, FhirResponse


def prefer_return(req: FhirRequest) -> str:
    """`Prefer: return=…` for the entries: minimal, representation (default), operationoutcome."""
    for part in (req.header("prefer") or "").split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "return":
            return value.strip().strip('"').lower()
    return "representation"


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def response_bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": entries}


def error_entry(err: FhirError) -> dict[str, Any]:
    return {"response": {"status": status_line(err.status), "outcome": err.outcome()}}


def success_entry(base: str, method: str, resp: FhirResponse, prefer: str) -> dict[str, Any]:
    response: dict[str, Any] = {"status": status_line(resp.status)}
    entry: dict[str, Any] = {}
    for header, name in (("Location", "location"), ("ETag", "etag")):
        if header in resp.headers:
            response[name] = resp.headers[header]
    if isinstance(resp.body, bytes) and resp.body:
        stored = orjson.loads(resp.body)
        entry["fullUrl"] = f"{base}/{stored['resourceType']}/{stored['id']}"
        last_updated = (stored.get("meta") or {}).get("lastUpdated")
        if last_updated:
            response["lastModified"] = last_updated
    if resp.body is not None and (method == "GET" or prefer == "representation"):
        body = resp.body
        entry["resource"] = orjson.Fragment(body) if isinstance(body, bytes) else body
    elif prefer == "operationoutcome" and method != "GET":
        response["outcome"] = information(f"{method} succeeded")
    entry["response"] = response
    return entry
