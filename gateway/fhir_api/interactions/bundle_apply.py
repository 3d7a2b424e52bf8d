"""One checked Bundle entry against an open session: first `resolve_target` (which resource it
writes), then `apply_entry` (the write or read itself).

`apply_entry` is the single place where a batch or transaction entry touches storage, so the
audit, outbox and consent hooks of later issues belong there. Nothing here opens, commits or
rolls back a session; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable

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


def resolve_target(svc: Services, session: Session, entry: Entry, refs: References) -> None:
    """Set `entry.key` (and `entry.matched`), resolving conditional criteria in `session`."""
    target = entry.target
    if entry.method == "GET":
        return
    if entry.method == "POST":
        _resolve_create(svc, session, entry, refs)
    elif target.id is not None:
        entry.key = (target.resource_type, target.id)
    else:
        params = refs.params(target.params)
        entry.key = single_match(
            svc, session, target.resource_type, params, f"conditional {entry.method}"
        )
        if entry.key is None and entry.method == "PUT":
            entry.key = (target.resource_type, new_id())
        elif entry.key is None and entry.method == "PATCH":
            raise FhirError(Category.NOT_FOUND, "conditional PATCH matched no resource")


def _resolve_create(svc: Services, session: Session, entry: Entry, refs: References) -> None:
    resource_type = entry.target.resource_type
    if entry.if_none_exist:
        params = refs.params(entry.if_none_exist)
        entry.key = single_match(svc, session, resource_type, params, "ifNoneExist")
        if entry.key is not None:
            entry.matched = True
            return
    entry.key = (resource_type, new_id())


def apply_entry(svc: Services, session: Session, base: str, entry: Entry) -> FhirResponse:
    """Carry out one resolved entry inside `session`."""
    return _APPLY[entry.method](svc, session, base, entry)


def _post(svc: Services, session: Session, base: str, entry: Entry) -> FhirResponse:
    assert entry.key is not None and entry.resource is not None
    if entry.matched:  # conditional create found one: 200 with it, nothing written
        sv = live_version(session, *entry.key)
        return FhirResponse(200, sv.body, version_headers(base, sv))
    resource_type, id = entry.key
    return create_in(svc, session, base, resource_type, entry.resource, id=id)


def _put(svc: Services, session: Session, base: str, entry: Entry) -> FhirResponse:
    assert entry.key is not None and entry.resource is not None
    resource_type, id = entry.key
    resource = {**entry.resource, "id": id}
    return update_in(svc, session, base, resource_type, id, resource, entry.if_match)


def _patch(svc: Services, session: Session, base: str, entry: Entry) -> FhirResponse:
    assert entry.key is not None and entry.patch is not None
    resource_type, id = entry.key
    return patch_in(svc, session, base, resource_type, id, entry.patch, entry.if_match)


def _delete(svc: Services, session: Session, base: str, entry: Entry) -> FhirResponse:
    if entry.if_match is not None:
        _check_version(session, entry.key, entry.if_match)
    if entry.key is None:  # conditional delete that matched nothing
        return FhirResponse(204)
    return delete_in(session, *entry.key)


def _check_version(session: Session, key: Key | None, if_match: str) -> None:
    wanted = parse_etag(if_match, "If-Match")
    current = session.current(*key) if key else None
    if current is None or current.deleted or current.version != wanted:
        raise FhirError(
            Category.PRECONDITION_FAILED,
            f'ifMatch W/"{wanted}" does not match the current version',
            ("If-Match",),
        )


def _get(svc: Services, session: Session, base: str, entry: Entry) -> FhirResponse:
    target = entry.target
    if target.id is None:
        req = FhirRequest("GET", base, target.resource_type, params=list(target.params))
        return svc.search.search_in(svc, session, req)
    if target.vid is not None:
        sv = session.version(target.resource_type, target.id, int(target.vid))
        if sv is None or sv.deleted:
            raise FhirError(Category.NOT_FOUND, "no such version")
    else:
        sv = live_version(session, target.resource_type, target.id)
    headers = version_headers(base, sv)
    del headers["Location"]
    if entry.if_none_match is not None and entry.if_none_match.strip() in (sv.etag, "*"):
        return FhirResponse(304, None, headers)
    return FhirResponse(200, sv.body, headers)


_APPLY: dict[str, Callable[[Services, Session, str, Entry], FhirResponse]] = {
    "GET": _get,
    "POST": _post,
    "PUT": _put,
    "PATCH": _patch,
    "DELETE": _delete,
}
