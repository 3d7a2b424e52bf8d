"""create: POST [base]/[type], with conditional create via If-None-Exist
(http://hl7.org/fhir/R4/http.html#create, #ccreate). The server assigns the id."""

from __future__ import annotations

from typing import Any

from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, version_headers
from gateway.fhir_api.interactions.conditional import single_match
from gateway.storage.base import Session
from gateway.storage.ids import new_id
from gateway.storage.sql import prepare_new


def create_in(
    svc: Services,
    session: Session,
    base: str,
    resource_type: str,
    resource: dict[str, Any],
    if_none_exist: str | None = None,
    id: str | None = None,
) -> FhirResponse:
    """Create inside an open writer session; `resource` is already validated."""
    if if_none_exist:
        found = single_match(svc, session, resource_type, if_none_exist, "If-None-Exist")
        if found is not None:
            sv = session.current(*found)
            assert sv is not None
            return FhirResponse(200, sv.body, version_headers(base, sv))
    fresh = id or new_id()
    sv = session.insert_new(prepare_new(resource_type, fresh, resource, svc.repo.indexer))
    return FhirResponse(201, sv.body, version_headers(base, sv))


def create(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type
    resource = svc.validator.validate_body(req.resource_type, req.resource, expect_id=None)
    if_none_exist = req.header("if-none-exist")
    if if_none_exist:
        with svc.repo.writer() as session:
            return create_in(svc, session, req.base, req.resource_type, resource, if_none_exist)
    # Body and index rows are built before the write transaction opens: writers queue on it.
    prepared = prepare_new(req.resource_type, new_id(), resource, svc.repo.indexer)
    sv = svc.repo.insert_new(prepared)
    return FhirResponse(201, sv.body, version_headers(req.base, sv))
