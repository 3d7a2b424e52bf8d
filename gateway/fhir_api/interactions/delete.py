"""delete: DELETE [base]/[type]/[id], and conditional delete DELETE [base]/[type]?criteria
(http://hl7.org/fhir/R4/http.html#delete). History is kept; a later read answers 410.

The gate's write rules decide. Deleting what does not exist is a 204 no-op (R4 allows it), and
so is deleting what the caller may not see: the same answer, nothing changed, a denial audited.
The delete's AuditEvent is stored in the same transaction.
"""

from __future__ import annotations

import orjson

from gateway.consent.enforcement import Gate
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id
from gateway.fhir_api.interactions.conditional import criteria, single_match
from gateway.storage.base import Session


def delete_in(session: Session, resource_type: str, id: str, *, gate: Gate) -> FhirResponse:
    session.lock(f"{resource_type}/{id}")
    current = session.current(resource_type, id)
    if current is None or current.deleted:
        known = current is not None and gate.is_trusted
        return FhirResponse(204, None, {"ETag": current.etag} if known and current else {})
    try:
        gate.check_write(session, "delete", resource_type, current, None)
    except FhirError as e:
        if e.category is not Category.NOT_FOUND:
            raise
        return FhirResponse(204)  # hidden: as if it did not exist
    gate.note_write(
        "delete", f"{resource_type}/{id}", orjson.loads(current.body), current.version + 1
    )
    sv = session.delete(resource_type, id)
    headers = {"ETag": sv.etag} if sv else {}
    return FhirResponse(204, None, headers)


def conditional_delete_in(
    svc: Services,
    session: Session,
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    gate: Gate,
) -> FhirResponse:
    match = single_match(svc, session, resource_type, params, "conditional delete", gate=gate)
    if match is None:
        return FhirResponse(204)
    return delete_in(session, *match, gate=gate)


def delete(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type
    with svc.repo.writer() as session:
        if req.id is None:
            resp = conditional_delete_in(
                svc, session, req.resource_type, criteria(req), gate=req.gate
            )
        else:
            check_id(req.id)
            resp = delete_in(session, req.resource_type, req.id, gate=req.gate)
        req.gate.flush_into(session)
        return resp
