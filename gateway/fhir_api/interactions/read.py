"""read: GET [base]/[type]/[id] (http://hl7.org/fhir/R4/http.html#read). Serves stored bytes.

Through the disclosure gate: a resource the caller may not see answers 404 exactly as a missing
one does, and a deleted one answers 410 only to a caller who could see its last version. The
read's AuditEvent (or the denial's) is durable before the response is returned.
"""

from __future__ import annotations

from gateway.consent.enforcement import Gate
from gateway.errors import Category, FhirError
from gateway.fhir_api import elements
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id, version_headers
from gateway.storage.base import Session, StoredVersion


def _missing(resource_type: str, id: str) -> FhirError:
    return FhirError(Category.NOT_FOUND, f"{resource_type}/{id} is not known")


def last_live(session: Session, sv: StoredVersion) -> StoredVersion | None:
    """The version before a delete marker (what was deleted), if any."""
    return session.version(sv.resource_type, sv.id, sv.version - 1) if sv.version > 1 else None


def live_version(
    session: Session, resource_type: str, id: str, gate: Gate | None = None
) -> StoredVersion:
    """The current version, or not-found (never stored, or hidden from the caller) / gone
    (deleted, told only to a caller who could see what was deleted)."""
    sv = session.current(resource_type, id)
    if sv is None:
        raise _missing(resource_type, id)
    if sv.deleted:
        before = last_live(session, sv)
        if gate is not None and (before is None or gate.disclose_one(session, before) is None):
            raise _missing(resource_type, id)
        raise FhirError(
            Category.GONE, f"{resource_type}/{id} was deleted", headers={"ETag": sv.etag}
        )
    return sv


def read(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type and req.id
    check_id(req.id)
    gate = req.gate
    gate.start("read", req.resource_type)
    with svc.repo.reader(consistent=False) as session:
        sv = live_version(session, req.resource_type, req.id, gate)
        shown = gate.disclose_one(session, sv)
    if shown is None:
        gate.flush_reads(svc.repo)
        raise _missing(req.resource_type, req.id)
    gate.note_read(shown)
    gate.flush_reads(svc.repo)
    headers = version_headers(req.base, sv)
    del headers["Location"]
    body = elements.for_read(shown.body, req.param("_elements"), req.param("_summary"))
    return FhirResponse(200, body, headers)
