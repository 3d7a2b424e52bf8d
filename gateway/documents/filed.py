"""The imported CDA document as it is filed in the client register: a DocumentReference holding
the original bytes (base64, SHA-1 hash, size) beside the plan made from it. Pure: the same
document, imported by the same organisation, always gives the same resource (ids derived from the
document's identifier, no clock), so importing it again changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from adapters.cda.convert import CdaImport
from adapters.ids import Ids
from gateway.consent.vocabulary import CUSTODIAN_EXTENSION

LOINC = "http://loinc.org"
# DocumentReference.type when the adapter names no document code: LOINC 18776-5 "Plan of care
# note", the closest document class for both of our plan kinds (and a C-CDA care plan).
PLAN_OF_CARE = {"system": LOINC, "code": "18776-5", "display": "Plan of care note"}
TITLES = {
    "hosu": "Terveys- ja hoitosuunnitelma (health and care plan), CDA R2",
    "social-plan": "Asiakassuunnitelma (social-welfare client plan), CDA R2",
}
MEDIA_TYPE = "application/xml"
_UUID = re.compile(r"^[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$")


def document_reference_id(document_id: str) -> str:
    """The DocumentReference id of one document (ClinicalDocument/id)."""
    return Ids.derived("DocumentReference", "cda", document_id)


def _uri(root: str) -> str:
    """An II root as a URI: a UUID (CDA R2 allows one) or an OID."""
    return f"urn:uuid:{root.lower()}" if _UUID.match(root) else f"urn:oid:{root}"


def master_identifier(document_id: str) -> dict[str, str]:
    """ClinicalDocument/id (root, or root^extension) as a FHIR Identifier."""
    root, _, extension = document_id.partition("^")
    if extension:
        return {"system": _uri(root), "value": extension}
    return {"system": "urn:ietf:rfc:3986", "value": _uri(root)}


def set_identifier(imported: CdaImport) -> dict[str, str] | None:
    """ClinicalDocument/setId as an Identifier, when the document has one of its own: every
    version of the document carries it, so a new version finds the ones it replaces."""
    if not imported.set_id or imported.set_id == imported.document_id:
        return None
    return master_identifier(imported.set_id)


def attachment(data: bytes, kind: str) -> dict[str, Any]:
    return {
        "contentType": MEDIA_TYPE,
        "data": base64.b64encode(data).decode("ascii"),
        "size": len(data),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
        "title": TITLES.get(kind, "CDA R2 document"),
    }


def _entry_of(imported: CdaImport, rtype: str) -> dict[str, Any] | None:
    for entry in imported.bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == rtype:
            return entry
    return None


def _document_date(imported: CdaImport) -> str | None:
    when = getattr(imported, "effective_time", None)
    if isinstance(when, str) and when:
        return when
    provenance = _entry_of(imported, "Provenance")
    recorded = (provenance or {}).get("resource", {}).get("recorded")
    return recorded if isinstance(recorded, str) else None


def _type(imported: CdaImport) -> dict[str, Any]:
    code = getattr(imported, "document_code", None)
    coding = code if isinstance(code, dict) and code.get("code") else PLAN_OF_CARE
    return {"coding": [coding]}


def document_reference(imported: CdaImport, data: bytes, org_id: str | None) -> dict[str, Any]:
    """The DocumentReference filing `data` (the document `imported` was made from), held by the
    importing organisation `org_id` (None: no caller, auth off): subject the document's client,
    related to its plan."""
    out: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": document_reference_id(imported.document_id),
        "masterIdentifier": master_identifier(imported.document_id),
        "status": "current",
        "docStatus": "final",
        "type": _type(imported),
        "subject": {"reference": imported.patient_fullurl},
        "description": TITLES.get(imported.kind, "CDA R2 document"),
        "content": [{"attachment": attachment(data, imported.kind)}],
    }
    if org_id is not None:
        org = {"reference": f"Organization/{org_id}"}
        out["extension"] = [{"url": CUSTODIAN_EXTENSION, "valueReference": org}]
        out["custodian"] = org
    identifier = set_identifier(imported)
    if identifier is not None:
        out["identifier"] = [identifier]
    when = _document_date(imported)
    if when and "T" in when:  # DocumentReference.date is an instant: a bare date is left out
        out["date"] = when
    plan = _plan_fullurl(imported)
    if plan:
        out["context"] = {"related": [{"reference": plan}]}
    return out


def _plan_fullurl(imported: CdaImport) -> str | None:
    entry = _entry_of(imported, "CarePlan")
    return str(entry["fullUrl"]) if entry and entry.get("fullUrl") else None
