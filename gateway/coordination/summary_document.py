"""The final summary as a FHIR document (http://hl7.org/fhir/R4/documents.html): what the
Composition references, the Composition as a later reader may see it, the document Bundle, and
the DocumentReference that files the Bundle in the client register.

Pure: no storage, no clock, no ids of its own. It includes only the resources it is given (the
operations pass what the caller may see), and never leaves a narrative written from an entry the
reader may not see: `shown_to_reader` withholds such a section.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.coordination.participation_summary import ref_of
from gateway.coordination.summary_composition import TITLE, empty_reason
from gateway.coordination.summary_text import SECTION_SYSTEM, code_words, withheld

Resource = Mapping[str, Any]


def referenced(comp: Resource) -> list[str]:
    """What the document includes after the Composition, in order, once each: the subject, the
    authors, the custodian, the event details (the plan) and every section entry (one level:
    what those resources name in turn is not included)."""
    refs = [ref_of(comp.get("subject"))]
    refs += [ref_of(a) for a in comp.get("author") or []]
    refs.append(ref_of(comp.get("custodian")))
    refs += [ref_of(d) for e in comp.get("event") or [] for d in e.get("detail") or []]
    refs += [ref_of(x) for s in comp.get("section") or [] for x in s.get("entry") or []]
    return list(dict.fromkeys(r for r in refs if r))


def document(
    comp: Resource, included: Sequence[Resource], base: str, identifier: str, timestamp: str
) -> dict[str, Any]:
    """The document Bundle: the Composition first, then the included resources."""
    entries = [comp, *included]
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{identifier}"},
        "type": "document",
        "timestamp": timestamp,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in entries
        ],
    }


def _attachment(data: bytes, when: str) -> dict[str, Any]:
    """The document Bundle's JSON as a base64 application/fhir+json attachment (SHA-1 hash)."""
    return {
        "contentType": "application/fhir+json",
        "language": "fi",
        "data": base64.b64encode(data).decode("ascii"),
        "size": len(data),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
        "title": TITLE,
        "creation": when,
    }


def document_reference(
    doc: Resource, comp: Resource, doc_id: str, replaces: Sequence[str], when: str
) -> dict[str, Any]:
    """The DocumentReference that files the document in the client register: the Bundle itself
    as base64 application/fhir+json, related to the plan and the Composition."""
    related = [ref for d in comp.get("event") or [] for ref in d.get("detail") or []]
    out: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "masterIdentifier": doc["identifier"],
        "status": "current",
        "docStatus": "final",
        "type": comp["type"],
        "subject": comp["subject"],
        "date": when,
        "author": comp["author"],
        "custodian": comp["custodian"],
        "description": TITLE,
        "content": [{"attachment": _attachment(orjson.dumps(doc), when)}],
        "context": {"related": [*related, {"reference": f"Composition/{comp['id']}"}]},
    }
    if replaces:
        out["relatesTo"] = [{"code": "replaces", "target": {"reference": r}} for r in replaces]
    period = next((e.get("period") for e in comp.get("event") or [] if e.get("period")), None)
    if period:
        out["context"]["period"] = period
    return out


def _withheld_section(sec: Mapping[str, Any], kept: list[Any]) -> dict[str, Any]:
    """A section the reader sees only `kept` of: no narrative written from the rest."""
    code = next((c.get("code") for c in (sec.get("code") or {}).get("coding") or []), "")
    fi, en = code_words(SECTION_SYSTEM, str(code)) or (str(sec.get("title") or ""), "")
    masked = {k: v for k, v in sec.items() if k not in ("entry", "text")}
    masked["text"] = withheld(fi, en)
    if kept:
        masked["entry"] = kept
    else:
        masked["emptyReason"] = empty_reason("withheld")
    return masked


def shown_to_reader(comp: Resource, shown: set[str]) -> dict[str, Any]:
    """The Composition as this reader gets it: a section with an entry the reader may not see
    loses that entry and its narrative (which was written from it) says only that it is
    withheld, so no hidden content leaks through the text."""
    out_sections = []
    for sec in comp.get("section") or []:
        entries = sec.get("entry") or []
        kept = [e for e in entries if ref_of(e) in shown]
        out_sections.append(sec if len(kept) == len(entries) else _withheld_section(sec, kept))
    return {**comp, "section": out_sections}
