"""A CDA document's filing in the client register over time: the earlier versions of the same
document (its setId) it replaces, refusing one older than what is filed, and the Provenance of
who filed it (written with the first filing only, so a repeat import writes nothing). Reads go
through the caller's gate (common.search_visible) except the existence check of the document's
own DocumentReference, which discloses nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.cda.convert import CdaImport
from gateway.consent import writes
from gateway.coordination import common
from gateway.documents.filed import set_identifier
from gateway.fhir_api.context import FhirRequest, Services

Entry = dict[str, Any]


def earlier_versions(
    svc: Services, req: FhirRequest, imported: CdaImport, doc_ref: dict[str, Any]
) -> list[dict[str, Any]]:
    """The DocumentReferences of earlier versions of this document (the same setId) the caller
    may see, in id order; this document itself left out."""
    identifier = set_identifier(imported)
    if identifier is None:
        return []
    token = f"{identifier['system']}|{identifier['value']}"
    found = common.search_visible(svc, req, "DocumentReference", [("identifier", token)])
    return sorted((d for d in found if d["id"] != doc_ref["id"]), key=lambda d: d["id"])


def superseded(old: dict[str, Any]) -> dict[str, Any]:
    """`old` marked superseded (its meta kept but for the server-owned fields)."""
    return {**writes.without_volatile(dict(old)), "status": "superseded"}


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def check_not_older(doc_ref: dict[str, Any], earlier: list[dict[str, Any]]) -> None:
    """409 when a newer version of the document is already filed: an old version never
    overwrites the plan a newer one made (ids derive from the setId, shared by all versions)."""
    mine = _instant(doc_ref.get("date"))
    for other in earlier:
        theirs = _instant(other.get("date"))
        if mine is not None and theirs is not None and theirs > mine:
            raise common.conflict(
                "cda-newer-version",
                "a newer version of this document is already filed",
                "ClinicalDocument.effectiveTime",
            )


def is_filed(svc: Services, doc_ref_id: str) -> bool:
    """Whether this document was imported before (its DocumentReference is stored)."""
    with svc.repo.reader() as session:
        sv = session.current("DocumentReference", doc_ref_id)
    return sv is not None and not sv.deleted


def provenance(req: FhirRequest, entries: list[Entry], doc_ref: dict[str, Any]) -> Entry:
    """Who filed the document, when (the caller's acting role on behalf of its organisation):
    written with the first import of a document only, so a repeat import writes nothing. The
    adapter's own Provenance says who wrote the document (its custodian and author)."""
    targets = [
        str(e["request"]["url"])
        for e in entries
        if (e.get("request") or {}).get("method") == "PUT"
        and (e.get("resource") or {}).get("resourceType") != "Provenance"
    ]
    entry = common.provenance_entry(req, targets, common.CREATE, reason="CDA document filed")
    source = {"role": "source", "what": {"reference": f"DocumentReference/{doc_ref['id']}"}}
    entry["resource"]["entity"] = [source]
    return entry
