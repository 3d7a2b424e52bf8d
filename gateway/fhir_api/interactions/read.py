"""read: GET [base]/[type]/[id] (http://hl7.org/fhir/R4/http.html#read). Serves stored bytes."""

from __future__ import annotations

from gateway.errors import Category, FhirError
from gateway.fhir_api import elements
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id, version_headers
from gateway.storage.base import Session, StoredVersion


def live_version(session: Session, resource_type: str, id: str) -> StoredVersion:
    """The current version, or not-found (never stored) / gone (deleted)."""
    sv = session.current(resource_type, id)
    if sv is None:
        raise FhirError(Category.NOT_FOUND, f"{resource_type}/{id} is not known")
    if sv.deleted:
        raise FhirError(
            Category.GONE, f"{resource_type}/{id} was deleted", headers={"ETag": sv.etag}
        )
    return sv


def read(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type and req.id
    check_id(req.id)
    with svc.repo.reader(consistent=False) as session:
        sv = live_version(session, req.resource_type, req.id)
    headers = version_headers(req.base, sv)
    del headers["Location"]
    body = elements.for_read(sv.body, req.param("_elements"), req.param("_summary"))
    return FhirResponse(200, body, headers)
