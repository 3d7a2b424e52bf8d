"""One checked Bundle entry against an open session: first `resolve_target` (which resource it
writes), then `apply_entry` (the write or read itself).

`apply_entry` is the single place where a batch or transaction entry touches storage; every
entry goes through the request's disclosure gate (reads disclose, writes are checked and
audited) exactly as the single interactions do. Nothing here opens, commits or rolls back a
session, nor stores the gate's events; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.consent.enforcement import Gate
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import (
    FhirRequest,
    FhirResponse,
    Services,
    parse_etag,
    version_headers,
)
from gateway.fhir_api.interactions.bundle_entries import Entry
from gateway.fhir_api.interactions.bundle_refs import References
from gateway.fhir_api.interactions.conditional import single_match
from gateway.fhir_api.interactions.create import create_in
from gateway.fhir_api.interactions.delete import delete_in
from gateway.fhir_api.interactions.patch import patch_in
from gateway.fhir_api.interactions.read import live_version
from gateway.fhir_api.interactions.update import update_in
from gateway.storage.base import Session
from gateway.storage.ids import new_id

Key = tuple[str, str]


def resolve_target(
    svc: Services, session: Session, entry: Entry, refs: References, gate: Gate
) -> None:
    """Set `entry.key` (and `entry.matched`), resolving conditional criteria in `session`."""
    target = entry.target
    if entry.method == "GET":
        return
    if entry.method == "POST":
        _resolve_create(svc, session, entry, refs, gate)
    elif target.id is not None:
        entry.key = (target.resource_type, target.id)
    else:
        params = refs.params(target.params)
        entry.key = single_match(
            svc, session, target.resource_type, params, f"conditional {entry.method}", gate=gate
        )
        if entry.key is None and entry.method == "PUT":
            # No match: create, with the body's id when it names one (as PUT [type]?criteria
            # does, so a hidden resource with that id is refused alike, never bypassed).
            body_id = entry.resource.get("id") if entry.resource else None
            entry.key = (target.resource_type, body_id if isinstance(body_id, str) else new_id())
        elif entry.key is None and entry.method == "PATCH":
            raise FhirError(Category.NOT_FOUND, "conditional PATCH matched no resource")


def _resolve_create(
    svc: Services, session: Session, entry: Entry, refs: References, gate: Gate
) -> None:
    resource_type = entry.target.resource_type
    if entry.if_none_exist:
        params = refs.params(entry.if_none_exist)
        entry.key = single_match(svc, session, resource_type, params, "ifNoneExist", gate=gate)
        if entry.key is not None:
            entry.matched = True
            return
    entry.key = (resource_type, new_id())


def apply_entry(
    svc: Services, session: Session, base: str, entry: Entry, gate: Gate
) -> FhirResponse:
    """Carry out one resolved entry inside `session`."""
    return _APPLY[entry.method](svc, session, base, entry, gate)


def _post(svc: Services, session: Session, base: str, entry: Entry, gate: Gate) -> FhirResponse:
    assert entry.key is not None and entry.resource is not None
    if entry.matched:  # conditional create found one: 200 with it, nothing written
        sv = live_version(session, *entry.key, gate)
        shown = gate.disclose_one(session, sv)
        assert shown is not None  # single_match returns only what the caller may see
        gate.note_read(shown)
        return FhirResponse(200, shown.body, version_headers(base, sv))
    resource_type, id = entry.key
    return create_in(svc, session, base, resource_type, entry.resource, id=id, gate=gate)


def _put(svc: Services, session: Session, base: str, entry: Entry, gate: Gate) -> FhirResponse:
    assert entry.key is not None and entry.resource is not None
    resource_type, id = entry.key
    resource = {**entry.resource, "id": id}
    return update_in(svc, session, base, resource_type, id, resource, entry.if_match, gate=gate)


def _patch(svc: Services, session: Session, base: str, entry: Entry, gate: Gate) -> FhirResponse:
    assert entry.key is not None and entry.patch is not None
    resource_type, id = entry.key
    return patch_in(svc, session, base, resource_type, id, entry.patch, entry.if_match, gate=gate)


def _delete(svc: Services, session: Session, base: str, entry: Entry, gate: Gate) -> FhirResponse:
    if entry.if_match is not None:
        _check_version(session, entry.key, entry.if_match)
    if entry.key is None:  # conditional delete that matched nothing
        return FhirResponse(204)
    return delete_in(session, *entry.key, gate=gate)


def _check_version(session: Session, key: Key | None, if_match: str) -> None:
    wanted = parse_etag(if_match, "If-Match")
    current = session.current(*key) if key else None
    if current is None or current.deleted or current.version != wanted:
        raise FhirError(
            Category.PRECONDITION_FAILED,
            f'ifMatch W/"{wanted}" does not match the current version',
            ("If-Match",),
        )


def _get(svc: Services, session: Session, base: str, entry: Entry, gate: Gate) -> FhirResponse:
    target = entry.target
    if target.id is None:
        gate.start("search-type", target.resource_type)
        req = FhirRequest("GET", base, target.resource_type, params=list(target.params))
        req.gate = gate
        return svc.search.search_in(svc, session, req)
    if target.vid is not None:
        gate.start("vread", target.resource_type)
        sv = session.version(target.resource_type, target.id, int(target.vid))
        if sv is None or sv.deleted:
            raise FhirError(Category.NOT_FOUND, "no such version")
    else:
        gate.start("read", target.resource_type)
        sv = live_version(session, target.resource_type, target.id, gate)
    shown = gate.disclose_one(session, sv)
    if shown is None:  # the same answer as for what does not exist
        what = "no such version" if target.vid is not None else None
        raise FhirError(
            Category.NOT_FOUND, what or f"{target.resource_type}/{target.id} is not known"
        )
    headers = version_headers(base, sv)
    del headers["Location"]
    if entry.if_none_match is not None and entry.if_none_match.strip() in (sv.etag, "*"):
        return FhirResponse(304, None, headers)
    gate.note_read(shown, "vread" if target.vid is not None else "read")
    return FhirResponse(200, shown.body, headers)


_APPLY: dict[str, Callable[[Services, Session, str, Entry, Gate], FhirResponse]] = {
    "GET": _get,
    "POST": _post,
    "PUT": _put,
    "PATCH": _patch,
    "DELETE": _delete,
}
