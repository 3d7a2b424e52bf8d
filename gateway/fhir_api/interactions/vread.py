"""vread: GET [base]/[type]/[id]/_history/[vid] (http://hl7.org/fhir/R4/http.html#vread)."""

from __future__ import annotations

from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api import elements
from gateway.fhir_api.context import (
    FhirRequest,
    FhirResponse,
    Services,
    check_id,
    digits,
    version_headers,
)


def vread(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type and req.id and req.vid is not None
    check_id(req.id)
    vid = digits(req.vid)
    if vid is None:
        raise invalid("version id must be a positive integer", "vid")
    with svc.repo.reader(consistent=False) as session:
        sv = session.version(req.resource_type, req.id, vid)
    if sv is None:
        raise FhirError(Category.NOT_FOUND, f"{req.resource_type}/{req.id} has no such version")
    if sv.deleted:
        raise FhirError(
            Category.GONE, f"version {req.vid} is a deletion", headers={"ETag": sv.etag}
        )
    headers = version_headers(req.base, sv)
    del headers["Location"]
    body = elements.for_read(sv.body, req.param("_elements"), req.param("_summary"))
    return FhirResponse(200, body, headers)
