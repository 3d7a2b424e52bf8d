"""delete: DELETE [base]/[type]/[id], and conditional delete DELETE [base]/[type]?criteria
(http://hl7.org/fhir/R4/http.html#delete). History is kept; a later read answers 410."""

from __future__ import annotations

from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id
from gateway.fhir_api.interactions.conditional import criteria, single_match
from gateway.storage.base import Session


def delete_in(session: Session, resource_type: str, id: str) -> FhirResponse:
    sv = session.delete(resource_type, id)
    headers = {"ETag": sv.etag} if sv else {}
    return FhirResponse(204, None, headers)


def conditional_delete_in(
    svc: Services, session: Session, resource_type: str, params: list[tuple[str, str]]
) -> FhirResponse:
    match = single_match(svc, session, resource_type, params, "conditional delete")
    if match is None:
        return FhirResponse(204)
    return delete_in(session, *match)


def delete(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type
    with svc.repo.writer() as session:
        if req.id is None:
            return conditional_delete_in(svc, session, req.resource_type, criteria(req))
        check_id(req.id)
        return delete_in(session, req.resource_type, req.id)
