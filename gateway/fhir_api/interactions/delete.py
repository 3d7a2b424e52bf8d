"""delete: DELETE [base]/[type]/[id], and conditional delete DELETE [base]/[type]?criteria
(http://hl7.org/fhir/R4/http.html#delete). History is kept; a later read answers 410."""

from __future__ import annotations

from urllib.parse import urlencode

from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id
from gateway.fhir_api.interactions.create import conditional_matches
from gateway.storage.base import Session


def delete_in(session: Session, resource_type: str, id: str) -> FhirResponse:
    sv = session.delete(resource_type, id)
    headers = {"ETag": sv.etag} if sv else {}
    return FhirResponse(204, None, headers)


def conditional_delete_in(
    svc: Services, session: Session, resource_type: str, query: str
) -> FhirResponse:
    session.lock(f"conditional-create:{resource_type}")
    matches = conditional_matches(svc, session, resource_type, query)
    if len(matches) > 1:
        raise FhirError(
            Category.PRECONDITION_FAILED,
            f"conditional delete matched {len(matches)} resources; criteria must be more selective",
        )
    if not matches:
        return FhirResponse(204)
    return delete_in(session, *matches[0])


def delete(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type
    with svc.repo.writer() as session:
        if req.id is None:
            query = urlencode([(k, v) for k, v in req.params if not k.startswith("_format")])
            return conditional_delete_in(svc, session, req.resource_type, query)
        check_id(req.id)
        return delete_in(session, req.resource_type, req.id)
