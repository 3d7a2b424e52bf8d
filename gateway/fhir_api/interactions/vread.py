"""vread: GET [base]/[type]/[id]/_history/[vid] (http://hl7.org/fhir/R4/http.html#vread).

Through the disclosure gate, decided on the version asked for: hidden = 404 as if missing.
"""

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
from gateway.fhir_api.interactions.read import last_live


def vread(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type and req.id and req.vid is not None
    check_id(req.id)
    vid = digits(req.vid)
    if vid is None:
        raise invalid("version id must be a positive integer", "vid")
    gate = req.gate
    gate.start("vread", req.resource_type)
    missing = FhirError(Category.NOT_FOUND, f"{req.resource_type}/{req.id} has no such version")
    with svc.repo.reader() as session:
        sv = session.version(req.resource_type, req.id, vid)
        if sv is None:
            raise missing
        decided = last_live(session, sv) if sv.deleted else sv
        shown = gate.disclose_one(session, decided) if decided is not None else None
    if shown is None and not gate.is_trusted:
        gate.flush_reads(svc.repo)
        raise missing
    if sv.deleted:
        raise FhirError(
            Category.GONE, f"version {req.vid} is a deletion", headers={"ETag": sv.etag}
        )
    assert shown is not None
    gate.note_read(shown, "vread")
    gate.flush_reads(svc.repo)
    headers = version_headers(req.base, sv)
    del headers["Location"]
    body = elements.for_read(shown.body, req.param("_elements"), req.param("_summary"))
    return FhirResponse(200, body, headers)
