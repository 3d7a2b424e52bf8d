"""Reading a batch or transaction Bundle into checked entries, before any storage work
(http://hl7.org/fhir/R4/http.html#transaction, bundle.html#bundle-rules).

Every problem is a FhirError whose expression starts at `Bundle.entry[i]`. This module must never
open a session or touch storage: the caller decides what a failed entry means.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import Services, parse_etag
from gateway.fhir_api.interactions.bundle_errors import at_entry
from gateway.fhir_api.interactions.bundle_urls import Target, parse_query, parse_url
from gateway.fhir_api.interactions.patch import parse_patch

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
JSON_PATCH = "application/json-patch+json"


@dataclass
class Entry:
    """One request entry, checked; `key` is the (type, id) it writes once resolved in a session."""

    index: int
    method: str
    target: Target
    full_url: str | None = None
    resource: dict[str, Any] | None = None
    patch: list[dict[str, Any]] | None = None
    if_none_exist: list[tuple[str, str]] | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    key: tuple[str, str] | None = None
    matched: bool = False  # a conditional create that found its resource: nothing is written

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"


def parse_entries(svc: Services, entries: list[Any], base: str) -> list[Entry | FhirError]:
    """Each raw entry as an `Entry`, or the FhirError that makes it unusable."""
    out: list[Entry | FhirError] = []
    for index, raw in enumerate(entries):
        try:
            out.append(parse_entry(svc, raw, index, base))
        except FhirError as err:
            out.append(at_entry(err, index))
    return out


def parse_entry(svc: Services, raw: Any, index: int, base: str) -> Entry:
    path = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise invalid(f"{path} must be an object", path)
    request = raw.get("request")
    if not isinstance(request, dict):
        raise invalid(f"{path} needs a request (method and url)", f"{path}.request")
    method = request.get("method")
    if method not in METHODS:
        raise invalid(
            f"{path}.request.method must be one of {', '.join(METHODS)}", f"{path}.request.method"
        )
    url = request.get("url")
    if not isinstance(url, str) or not url.strip():
        raise invalid(f"{path}.request.url is required", f"{path}.request.url")
    entry = Entry(index, method, parse_url(url.strip(), base, method, f"{path}.request.url"))
    entry.full_url = _text(raw, "fullUrl", path)
    _read_preconditions(entry, request)
    _read_resource(svc, entry, raw.get("resource"))
    return entry


def _text(obj: dict[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{where}.{name} must be a non-empty string", f"{where}.{name}")
    return value.strip()


def _read_preconditions(entry: Entry, request: dict[str, Any]) -> None:
    where = f"{entry.path}.request"
    if_none_exist = _text(request, "ifNoneExist", where)
    if if_none_exist is not None:
        if entry.method != "POST":
            raise invalid("ifNoneExist applies to POST entries only", f"{where}.ifNoneExist")
        # Accept `identifier=a|b`, `?identifier=…` and `Patient?identifier=…` alike.
        query = if_none_exist.split("?", 1)[1] if "?" in if_none_exist else if_none_exist
        entry.if_none_exist = parse_query(query, f"{where}.ifNoneExist", required=True)
    entry.if_match = _text(request, "ifMatch", where)
    if entry.if_match is not None:
        if entry.method not in ("PUT", "PATCH", "DELETE"):
            raise invalid("ifMatch applies to PUT, PATCH and DELETE entries", f"{where}.ifMatch")
        parse_etag(entry.if_match, f"{where}.ifMatch")
    entry.if_none_match = _text(request, "ifNoneMatch", where)
    if entry.if_none_match is not None and entry.method != "GET":
        raise FhirError(
            Category.NOT_SUPPORTED,
            "ifNoneMatch is supported on GET entries only",
            (f"{where}.ifNoneMatch",),
        )


def _read_resource(svc: Services, entry: Entry, resource: Any) -> None:
    if entry.method in ("POST", "PUT"):
        entry.resource = _checked_resource(svc, entry, resource)
    elif entry.method == "PATCH":
        entry.patch = _patch_document(entry, resource)


def _checked_resource(svc: Services, entry: Entry, resource: Any) -> dict[str, Any]:
    where = f"{entry.path}.resource"
    if not isinstance(resource, dict):
        raise invalid(f"a {entry.method} entry needs a resource object", where)
    wanted = entry.target.resource_type
    given = resource.get("resourceType")
    if not isinstance(given, str) or given not in svc.validator.resource_types:
        raise invalid(
            f"{where}.resourceType '{str(given)[:40]}' is not served by this gateway",
            f"{where}.resourceType",
        )
    if given != wanted:
        raise invalid(
            f"{where}.resourceType '{given}' does not match request.url type '{wanted}'",
            f"{where}.resourceType",
        )
    expect_id = entry.target.id if entry.method == "PUT" else None
    if expect_id is not None and resource.get("id") is None:
        raise invalid(f"a PUT entry's resource must carry the id '{expect_id}'", f"{where}.id")
    if entry.method == "PUT" and expect_id is None and isinstance(resource.get("id"), str):
        expect_id = resource["id"]  # a conditional PUT keeps its body's id, as PUT [type]? does
    return svc.validator.validate_resource(resource, expect_id)


def _patch_document(entry: Entry, resource: Any) -> list[dict[str, Any]]:
    """JSON Patch carried in a Binary (http://hl7.org/fhir/R4/http.html#patch, transactions)."""
    where = f"{entry.path}.resource"
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    if kind == "Parameters":
        raise FhirError(
            Category.NOT_SUPPORTED,
            "FHIRPath Patch (Parameters) is not supported; send a Binary with contentType "
            f"{JSON_PATCH}",
            (f"{where}",),
        )
    if kind != "Binary" or not isinstance(resource, dict):
        raise invalid(f"a PATCH entry needs a Binary resource holding {JSON_PATCH}", where)
    if str(resource.get("contentType", "")).split(";")[0].strip().lower() != JSON_PATCH:
        raise invalid(f"the Binary's contentType must be {JSON_PATCH}", f"{where}.contentType")
    data = resource.get("data")
    try:
        raw = base64.b64decode(data if isinstance(data, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raise invalid("the Binary's data must be base64", f"{where}.data") from None
    try:
        return parse_patch(raw)
    except FhirError as err:
        raise invalid(f"{where}.data: {err.message}", f"{where}.data") from None


def check_full_urls(entries: list[Entry | FhirError]) -> list[Entry | FhirError]:
    """A fullUrl names one entry only (bundle.html#bundle-unique); later repeats become errors."""
    seen: dict[str, int] = {}
    out: list[Entry | FhirError] = []
    for item in entries:
        if isinstance(item, Entry) and item.full_url is not None:
            first = seen.setdefault(item.full_url, item.index)
            if first != item.index:
                item = invalid(
                    f"{item.path}.fullUrl repeats the fullUrl of Bundle.entry[{first}]",
                    f"{item.path}.fullUrl",
                )
        out.append(item)
    return out
