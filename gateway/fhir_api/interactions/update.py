"""update: PUT [base]/[type]/[id] (update-as-create allowed), If-Match versioning, and
conditional update PUT [base]/[type]?criteria
(http://hl7.org/fhir/R4/http.html#update, #cond-update).

The gate's write rules decide what may be stored; an existing resource the caller may not see
answers 404 (as a missing one would to PATCH/DELETE; a PUT cannot create over it). The update's
AuditEvent is stored in the same transaction, by whoever opened it (`gate.flush_into`).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.consent.enforcement import Gate
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import (
    FhirRequest,
    FhirResponse,
    Services,
    check_id,
    parse_etag,
    version_headers,
)
from gateway.fhir_api.interactions.conditional import criteria, single_match
from gateway.fhir_api.interactions.create import create_in
from gateway.storage.base import Session

_SERVER_META = ("versionId", "lastUpdated")


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without server-owned meta, for no-op detection."""
    out = {k: v for k, v in resource.items() if k != "meta"}
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in _SERVER_META}
    if meta:
        out["meta"] = meta
    return out


def update_in(
    svc: Services,
    session: Session,
    base: str,
    resource_type: str,
    id: str,
    resource: dict[str, Any],
    if_match: str | None = None,
    method: str = "PUT",
    *,
    gate: Gate,
) -> FhirResponse:
    """Update inside an open writer session; `resource` is validated and its id equals `id`."""
    session.lock(f"{resource_type}/{id}")
    current = session.current(resource_type, id)
    live = None if current is None or current.deleted else current
    interaction = "patch" if method == "PATCH" else "create" if live is None else "update"
    checked = gate.check_write(session, interaction, resource_type, live, resource)
    assert checked is not None
    resource = checked
    if if_match is not None:
        wanted = parse_etag(if_match)
        if current is None or current.deleted or current.version != wanted:
            have = "none" if current is None or current.deleted else f'W/"{current.version}"'
            raise FhirError(
                Category.PRECONDITION_FAILED,
                f'If-Match W/"{wanted}" does not match the current version ({have})',
            )
    unchanged = (
        current is not None
        and not current.deleted
        and _content(orjson.loads(current.body)) == _content(resource)
    )
    if unchanged:
        # An update that changes nothing keeps the version (as HAPI and Blaze do), so
        # re-importing the same data is idempotent.
        assert current is not None
        return FhirResponse(200, current.body, version_headers(base, current))
    version = current.version + 1 if current is not None else 1  # what session.write makes
    gate.note_write(interaction, f"{resource_type}/{id}", resource, version)
    sv = session.write(resource_type, id, resource, method)
    status = 201 if current is None or current.deleted else 200
    return FhirResponse(status, sv.body, version_headers(base, sv))


def conditional_update_in(
    svc: Services,
    session: Session,
    base: str,
    resource_type: str,
    criteria: list[tuple[str, str]],
    resource: dict[str, Any],
    if_match: str | None = None,
    *,
    gate: Gate,
) -> FhirResponse:
    match = single_match(svc, session, resource_type, criteria, "conditional update", gate=gate)
    body_id = resource.get("id")
    if match is None:
        if body_id:
            return update_in(
                svc, session, base, resource_type, body_id, resource, if_match, gate=gate
            )
        return create_in(svc, session, base, resource_type, resource, gate=gate)
    _, found = match
    if body_id and body_id != found:
        raise invalid(
            f"the body's id '{body_id}' differs from the matched resource's id",
            f"{resource_type}.id",
        )
    resource = {**resource, "id": found}
    return update_in(svc, session, base, resource_type, found, resource, if_match, gate=gate)


def update(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type
    if_match = req.header("if-match")
    if req.id is None:
        # A body id is kept (and checked against the match), not dropped as on create.
        body_id = req.resource.get("id") if isinstance(req.resource, dict) else None
        resource = svc.validator.validate_body(req.resource_type, req.resource, expect_id=body_id)
        with svc.repo.writer() as session:
            resp = conditional_update_in(
                svc,
                session,
                req.base,
                req.resource_type,
                criteria(req),
                resource,
                if_match,
                gate=req.gate,
            )
            req.gate.flush_into(session)
            return resp
    check_id(req.id)
    resource = svc.validator.validate_body(req.resource_type, req.resource, expect_id=req.id)
    with svc.repo.writer() as session:
        resp = update_in(
            svc, session, req.base, req.resource_type, req.id, resource, if_match, gate=req.gate
        )
        req.gate.flush_into(session)
        return resp
