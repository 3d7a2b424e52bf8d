"""patch: PATCH [base]/[type]/[id] with a JSON Patch document (RFC 6902;
http://hl7.org/fhir/R4/http.html#patch). The patched resource is validated like an update."""

from __future__ import annotations

from typing import Any

import jsonpatch
import orjson

from gateway.consent.enforcement import Gate
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id
from gateway.fhir_api.interactions.read import live_version
from gateway.fhir_api.interactions.update import update_in
from gateway.storage.base import Session


def parse_patch(raw: bytes) -> list[dict[str, Any]]:
    try:
        ops = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise invalid(f"the JSON Patch body is not valid JSON: {e.msg}", "body") from None
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise invalid("a JSON Patch document is an array of operation objects", "body")
    return ops


_FAILURES = (
    jsonpatch.JsonPatchException,
    jsonpatch.JsonPointerException,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
)


def apply_ops(resource: dict[str, Any], ops: list[dict[str, Any]]) -> Any:
    """`resource` with `ops` applied one by one, so a failure names its operation. jsonpatch's
    own messages quote the document, so they never reach the caller (no record values in
    messages)."""
    document: Any = resource
    for i, op in enumerate(ops):
        where = f"body[{i}]"
        name, path = str(op.get("op"))[:20], str(op.get("path"))[:80]
        try:
            document = jsonpatch.apply_patch(document, [op], in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            raise FhirError(
                Category.UNPROCESSABLE, f"JSON Patch test at '{path}' failed", (where,)
            ) from None
        except _FAILURES:
            raise FhirError(
                Category.UNPROCESSABLE,
                f"JSON Patch operation '{name}' at '{path}' could not be applied",
                (where,),
            ) from None
    return document


def patch_in(
    svc: Services,
    session: Session,
    base: str,
    resource_type: str,
    id: str,
    ops: list[dict[str, Any]],
    if_match: str | None,
    *,
    gate: Gate,
) -> FhirResponse:
    session.lock(f"{resource_type}/{id}")
    current = live_version(session, resource_type, id, gate)
    if gate.disclose_one(session, current) is None:  # patching what one cannot see: 404
        raise FhirError(Category.NOT_FOUND, f"{resource_type}/{id} is not known")
    patched = apply_ops(orjson.loads(current.body), ops)
    if not isinstance(patched, dict):
        raise FhirError(
            Category.UNPROCESSABLE, "JSON Patch must leave a resource object", ("body",)
        )
    resource = svc.validator.validate_body(resource_type, patched, expect_id=id)
    return update_in(
        svc, session, base, resource_type, id, resource, if_match, method="PATCH", gate=gate
    )


def patch(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.resource_type and req.id
    check_id(req.id)
    ops = parse_patch(req.raw_body)
    with svc.repo.writer() as session:
        resp = patch_in(
            svc,
            session,
            req.base,
            req.resource_type,
            req.id,
            ops,
            req.header("if-match"),
            gate=req.gate,
        )
        req.gate.flush_into(session)
        return resp
