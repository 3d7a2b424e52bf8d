"""create: POST [base]/[type], with conditional create via If-None-Exist
(http://hl7.org/fhir/R4/http.html#create, #ccreate). The server assigns the id.

The gate's write rules decide what may be stored (the creator may come back stamped as the
record's custodian), and the create's AuditEvent is stored in the same transaction. A
conditional create whose match the caller may not see creates: the hidden one does not exist
for this caller.
"""

from __future__ import annotations

from typing import Any

from gateway.consent.enforcement import Gate, shape_trusted, watched
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
    *,
    gate: Gate,
) -> FhirResponse:
    """Create inside an open writer session; `resource` is already validated. The caller
    stores the gate's events in this session before it commits (`gate.flush_into`)."""
    if if_none_exist:
        found = single_match(svc, session, resource_type, if_none_exist, "If-None-Exist", gate=gate)
        if found is not None:
            sv = session.current(*found)
            assert sv is not None
            shown = gate.disclose_one(session, sv)
            assert shown is not None  # single_match returns only what the caller may see
            gate.note_read(shown)
            return FhirResponse(200, shown.body, version_headers(base, sv))
    fresh = id or new_id()
    stored = gate.check_write(session, "create", resource_type, None, {**resource, "id": fresh})
    assert stored is not None
    gate.note_write("create", f"{resource_type}/{fresh}", stored, version=1)
    sv = session.insert_new(prepare_new(resource_type, fresh, stored, svc.repo.indexer))
    return FhirResponse(201, sv.body, version_headers(base, sv))


def create(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type
    resource = svc.validator.validate_body(req.resource_type, req.resource, expect_id=None)
    gate = req.gate
    if_none_exist = req.header("if-none-exist")
    if if_none_exist:
        with svc.repo.writer() as session:
            resp = create_in(
                svc, session, req.base, req.resource_type, resource, if_none_exist, gate=gate
            )
            gate.flush_into(session)
            return resp
    # Body and index rows are built before the write transaction opens: writers queue on it.
    fresh = new_id()
    what = f"{req.resource_type}/{fresh}"
    if gate.is_trusted:
        resource = shape_trusted("create", req.resource_type, None, {**resource, "id": fresh})
    else:
        with svc.repo.reader(consistent=False) as session:  # no snapshot: the writes decide
            checked = gate.check_write(
                session, "create", req.resource_type, None, {**resource, "id": fresh}
            )
        assert checked is not None
        resource = checked
    gate.note_write("create", what, resource, version=1)
    prepared = prepare_new(req.resource_type, fresh, resource, svc.repo.indexer)
    # The resource, its AuditEvent and what the write hooks add for it (a type they watch:
    # delivery's outbox rows) commit together (one group-committed transaction).
    hook = gate.take_hooks() if watched(req.resource_type) else None
    sv = svc.repo.insert_new(prepared, gate.prepared_events(svc.repo.indexer), hook=hook)
    return FhirResponse(201, sv.body, version_headers(req.base, sv))
