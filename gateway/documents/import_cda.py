"""`$import-cda`: a CDA R2 plan document (our Kanta-style HOSU or social-welfare client plan, or
a generic C-CDA care plan as far as its sections are recognised) in, the plan stored.

The document is converted by the pure adapter (adapters.cda.convert.to_fhir: safe parse, schema
validation, mapping by mappings/cda/), then written as ONE transaction of the caller
(common.apply: validated, decided by rule `cda-custodian` in import_rules.py, applied, audited)
together with a DocumentReference keeping the original bytes (and, on a document's first
filing, a Provenance of who filed it). Ids derive from the document's identifiers, so importing
the same document again changes nothing; a new version of it (the same setId) updates the same
plan and supersedes the earlier DocumentReference. It never writes outside that
transaction and never answers with document content in an error.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.cda.convert import CdaImport, to_fhir
from adapters.cda.errors import CdaError
from gateway.coordination import common
from gateway.coordination.common import parameters, part
from gateway.documents import filing, import_rules
from gateway.documents.body import CDA_MEDIA_TYPES, document_bytes
from gateway.documents.errors import MAX_LISTED, translated
from gateway.documents.filed import document_reference, document_reference_id
from gateway.errors import Category, FhirError, operation_outcome
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

Entry = dict[str, Any]
log = logging.getLogger(__name__)


def convert(svc: Services, data: bytes) -> CdaImport:
    """The adapter's import of `data`; every CdaError a 4xx FhirError."""
    if svc.ids is None:
        raise FhirError(
            Category.NOT_SUPPORTED, "this deployment has no pseudonym key: CDA import is off"
        )
    with translated():
        try:
            return to_fhir(data, svc.ids)
        except CdaError:
            raise
        except Exception as fault:
            # A document the mapper did not expect is the sender's problem to hear about, never a
            # 500; the log names the exception's type only (its message may quote the document).
            log.error("CDA mapping failed: %s", type(fault).__name__)
            raise FhirError(
                Category.UNPROCESSABLE, "the document could not be mapped to the plan"
            ) from None


def _with_source(entries: list[Entry], doc_ref: dict[str, Any]) -> list[Entry]:
    """The adapter's Provenance also names the filed document (DocumentReference) as source."""
    source = {"role": "source", "what": {"reference": f"DocumentReference/{doc_ref['id']}"}}
    out = []
    for entry in entries:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Provenance":
            entity = [*(resource.get("entity") or []), source]
            entry = {**entry, "resource": {**resource, "entity": entity}}
        out.append(entry)
    return out


def _writes(svc: Services, req: FhirRequest, imported: CdaImport, data: bytes) -> list[Entry]:
    """The adapter's entries, the DocumentReference filing the document (replacing the earlier
    versions of the same document, which become superseded), checked and stamped."""
    org = req.caller.organization if req.caller is not None else None
    doc_ref = document_reference(imported, data, org)
    earlier = filing.earlier_versions(svc, req, imported, doc_ref)
    filing.check_not_older(doc_ref, earlier)
    if earlier:  # every earlier version, whatever its status: the same on a repeat import
        refs = [{"reference": f"DocumentReference/{d['id']}"} for d in earlier]
        doc_ref["relatesTo"] = [{"code": "replaces", "target": r} for r in refs]
    entries = list(imported.bundle.get("entry") or [])
    filed = {
        "fullUrl": f"urn:uuid:{doc_ref['id']}",
        "resource": doc_ref,
        "request": {"method": "PUT", "url": f"DocumentReference/{doc_ref['id']}"},
    }
    replaced = [common.put(filing.superseded(d)) for d in earlier if d.get("status") == "current"]
    writes_ = [*_with_source(entries, doc_ref), filed, *replaced]
    if req.caller is not None and not filing.is_filed(svc, doc_ref["id"]):
        writes_.append(filing.provenance(req, writes_, doc_ref))
    return import_rules.prepared(svc, req, writes_)


def outcome(imported: CdaImport, created: int) -> dict[str, Any]:
    """What the import did, and a warning per part of the document it did not map."""
    issues = [
        {
            "severity": "information",
            "code": "informational",
            "diagnostics": f"CDA document of kind {imported.kind} imported; "
            f"{created} resource(s) created",
        }
    ]
    for item in imported.unrecognised[:MAX_LISTED]:
        issues.append(
            {"severity": "warning", "code": "not-supported", "diagnostics": f"not mapped: {item}"}
        )
    if len(imported.unrecognised) > MAX_LISTED:
        more = len(imported.unrecognised) - MAX_LISTED
        issues.append(
            {"severity": "warning", "code": "not-supported", "diagnostics": f"{more} more"}
        )
    return operation_outcome(issues)


def _stored(results: list[FhirResponse], rtype: str, id: str | None) -> dict[str, Any]:
    """The stored resource `rtype/id` among the transaction's results ({} if not there)."""
    for result in results:
        body = common.body_of(result)
        if body.get("resourceType") == rtype and body.get("id") == id:
            return body
    return {}


def import_cda(svc: Services, req: FhirRequest) -> FhirResponse:
    """`[base]/$import-cda`, `DocumentReference/$import-cda`: the document in, the plan stored."""
    data = document_bytes(req)
    imported = convert(svc, data)
    import_rules.check_custodian(svc, req, imported)
    entries = _writes(svc, req, imported, data)
    import_rules.check_scopes(req, entries)
    results = common.apply(svc, req, entries, authority=import_rules.RULE)
    created = sum(1 for r in results if r.status == 201)
    plan = _stored(results, "CarePlan", imported.plan_id)
    filed = f"DocumentReference/{document_reference_id(imported.document_id)}"
    answer = [
        part("kind", valueCode=imported.kind),
        part("documentReference", valueReference={"reference": filed}),
        part("outcome", resource=outcome(imported, created)),
    ]
    if plan:
        answer.insert(1, part("plan", resource=plan))
    return common.ok(parameters(answer))


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "import-cda",
        import_cda,
        resource_types=("DocumentReference",),
        system=True,
        consumes=CDA_MEDIA_TYPES,
        scope=("DocumentReference", "c"),
        title="Import a CDA plan document",
        description=(
            "Stores the plan a CDA R2 document carries (the Kanta-style health and care plan "
            "(hosu) or social-welfare client plan (social-plan); a generic C-CDA care plan as far "
            "as its sections are recognised, else 422 listing what was not) as one transaction, "
            "with a DocumentReference keeping the original document (SHA-1 hash). Body: the "
            "document (application/xml, text/xml, application/cda+xml) or a Parameters "
            "'document' (Attachment or Binary, base64). Unmapped sections are warnings in the "
            "outcome. Importing the same document again changes nothing; a new version (the "
            "same setId) updates the plan and supersedes the filed one, an older one than filed "
            "is a 409. Who may: the document's custodian organisation (its SOTE OID; rule "
            "cda-custodian)."
        ),
        parameters=(
            Param("document", "Attachment", documentation="the CDA document (base64)"),
            Param("kind", "code", use="out", min=1, documentation="hosu, social-plan, ..."),
            Param("plan", "CarePlan", use="out", documentation="the stored plan"),
            Param("documentReference", "Reference", use="out", min=1),
            Param("outcome", "OperationOutcome", use="out", min=1, documentation="warnings"),
        ),
    ),
)
