"""The CDA adapter's public API: `to_fhir` (a CDA R2 document -> a transaction Bundle of the
plan) and `from_fhir` (a plan's resources -> a CDA R2 document of our Kanta-style structure,
docs/cda.md). Pure: the gateway validates, decides, stores and audits; nothing here does I/O or
logs, and no document content reaches an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.cda import nodes, parse
from adapters.cda.cda_to_fhir import document
from adapters.cda.errors import CdaError
from adapters.cda.fhir_to_cda.document import export
from adapters.cda.mapping import structure
from adapters.ids import Ids

MEDIA_TYPE = "application/xml"
KINDS = ("hosu", "social-plan", "ccda-care-plan", "generic")
EXPORT_KINDS = ("hosu", "social-plan")


@dataclass(frozen=True)
class CdaImport:
    kind: str
    bundle: dict[str, Any]
    unrecognised: list[str]
    document_id: str
    set_id: str
    plan_id: str | None
    patient_fullurl: str
    custodian_oid: str | None = None
    author_oids: list[str] = field(default_factory=list)


def to_fhir(data: bytes, ids: Ids, *, validate_schema: bool = True) -> CdaImport:
    """The transaction Bundle for one CDA document; raises CdaError only. `validate_schema`
    False skips the XSD (the benchmark's comparison only: the gateway always validates)."""
    root = parse.parse_valid_document(data) if validate_schema else parse.parse_document(data)
    s = structure()
    kind = document.kind_of(s, root)
    doc = document.start(s, ids, root)
    if kind is document.GENERIC:
        doc.unrecognised += [f"templateId {t}" for t in nodes.template_ids(root)]
    plan = document.header(doc, kind, root)
    recognised = document.sections(doc, kind, root, plan)
    if not recognised and not kind.plan:
        raise CdaError(
            "not-recognised",
            f"no section of this document is recognised ({len(doc.unrecognised)} listed)",
            root.sourceline,
            details=tuple(doc.unrecognised),
        )
    if kind.plan and not plan.get("careTeam"):
        raise CdaError("missing-element", "the network section (the coordinator)", root.sourceline)
    doc.put(plan)
    document.provenance(doc, root)
    doc_id = document.ii(nodes.first(root, "id"))
    return CdaImport(
        kind=kind.name,
        bundle=doc.bundle(),
        unrecognised=list(doc.unrecognised),
        document_id="^".join(p for p in doc_id if p),
        set_id="^".join(p for p in (doc.set_root, doc.set_ext) if p),
        plan_id=plan["id"],
        patient_fullurl=doc.patient,
        custodian_oid=_custodian_oid(root),
        author_oids=[
            el.get("root")
            for el in nodes.every(root, "author/assignedAuthor/representedOrganization/id")
            if el.get("root")
        ],
    )


def _custodian_oid(root: Any) -> str | None:
    el = nodes.first(root, "custodian/assignedCustodian/representedCustodianOrganization/id")
    return None if el is None or el.get("extension") else el.get("root")


def from_fhir(
    resources: list[dict[str, Any]] | dict[str, Any],
    kind: str,
    *,
    author_org: dict[str, Any],
    now: str,
    document_id: str | None = None,
) -> bytes:
    """A CDA R2 document of `kind` for the plan among `resources` (schema-valid)."""
    if kind not in EXPORT_KINDS:
        raise CdaError("unknown-kind", f"export kinds are {', '.join(EXPORT_KINDS)}")
    if isinstance(resources, dict):
        resources = [e.get("resource") for e in resources.get("entry", ()) if e.get("resource")]
    return export(
        structure(), list(resources), kind, author_org=author_org, now=now, document_id=document_id
    )
