"""A plan's FHIR resources -> one CDA R2 document of our Kanta-style structure (docs/cda.md):
the header (client, author, custodian = register keeper, plan period) and the kind's sections in
the order mappings/cda/kinds.json lists them. Schema order is the order written here.
"""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes
from adapters.cda.errors import CdaError
from adapters.cda.fhir_to_cda import WRITERS, parties
from adapters.cda.fhir_to_cda.parties import Index, write_assigned, write_org
from adapters.cda.mapping import Kind, Structure, translate
from adapters.cda.parse import child, new_root, serialise
from adapters.ids import Ids
from fhir_profiles import CANONICAL

Element = Any
CUSTODIAN_EXT = f"{CANONICAL}/StructureDefinition/custodian"


def export(
    s: Structure,
    resources: list[dict[str, Any]],
    kind_name: str,
    *,
    author_org: dict[str, Any],
    now: str,
    document_id: str | None,
) -> bytes:
    kind = s.kinds[kind_name]
    idx = Index(resources)
    plans = idx.of_type("CarePlan")
    if len(plans) != 1:
        raise CdaError("export-incomplete", "exactly one CarePlan is needed")
    plan = plans[0]
    patient = idx.get(plan.get("subject"))
    if patient is None or parties.hetu(patient) is None:
        raise CdaError("export-incomplete", "the plan's Patient with a HETU is needed")
    try:
        root = _header(s, idx, kind, plan, patient, author_org, now, document_id)
        _body(s, idx, kind, root, plan)
    except ValueError:  # a malformed date in the resources
        raise CdaError("invalid-value", "a date or dateTime of the plan is malformed") from None
    return serialise(root)


def _header(
    s: Structure,
    idx: Index,
    kind: Kind,
    plan: dict[str, Any],
    patient: dict[str, Any],
    author_org: dict[str, Any],
    now: str,
    document_id: str | None,
) -> Element:
    raw = s.raw
    root = new_root()
    child(root, "realmCode", {"code": raw["realm"]})
    child(root, "typeId", raw["type_id"])
    for template in kind.template_ids:
        child(root, "templateId", {"root": template})
    doc_root, _, doc_ext = (
        document_id or Ids.derived("cda-export", plan["id"], kind.name, now)
    ).partition("^")
    child(root, "id", {"root": doc_root, "extension": doc_ext or None})
    child(root, "code", kind.code)
    child(root, "title", text=plan.get("title") or kind.title)
    datatypes.write_time(root, "effectiveTime", now)
    child(root, "confidentialityCode", raw["confidentiality"])
    child(root, "languageCode", {"code": raw["language"]})
    child(root, "setId", {"root": kind.set_id_root, "extension": plan["id"]})
    _record_target(s, root, patient)
    _authors(s, idx, root, plan, author_org, now)
    custodian = idx.get(_custodian_ref(plan)) or _org_of(idx, plan.get("author")) or author_org
    assigned = child(child(root, "custodian"), "assignedCustodian")
    write_org(s, assigned, "representedCustodianOrganization", custodian)
    event = child(child(root, "documentationOf"), "serviceEvent", {"classCode": "PCPR"})
    for ident in plan.get("identifier", ()):
        datatypes.write_identifier(s, event, "id", ident)
    datatypes.write_period(event, "effectiveTime", plan.get("period"))
    return root


def _record_target(s: Structure, root: Element, patient: dict[str, Any]) -> None:
    role = child(child(root, "recordTarget"), "patientRole")
    child(role, "id", {"root": "1.2.246.21", "extension": parties.hetu(patient)})
    person = child(role, "patient")
    names = patient.get("name") or []
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    datatypes.write_name(person, official)
    gender = patient.get("gender")
    if gender is not None:
        code = translate("administrative-gender-to-cda", gender)
        attrs = (
            {"code": code, "codeSystem": "2.16.840.1.113883.5.1"} if code else {"nullFlavor": "UNK"}
        )
        child(person, "administrativeGenderCode", attrs)
    if patient.get("birthDate"):
        datatypes.write_time(person, "birthTime", patient["birthDate"])


def _authors(
    s: Structure,
    idx: Index,
    root: Element,
    plan: dict[str, Any],
    author_org: dict[str, Any],
    now: str,
) -> None:
    written = idx.get(plan.get("author")) is not None
    if written:
        author = child(root, "author")
        datatypes.write_time(author, "time", plan.get("created") or now)
        write_assigned(s, idx, author, "assignedAuthor", plan["author"])
    plan_org = _org_of(idx, plan.get("author"))
    if not written or parties.sote_oid(plan_org) != parties.sote_oid(author_org):
        author = child(root, "author")
        datatypes.write_time(author, "time", now)
        assigned = child(author, "assignedAuthor")
        child(assigned, "id", {"nullFlavor": "NA"})
        write_org(s, assigned, "representedOrganization", author_org)


def _custodian_ref(plan: dict[str, Any]) -> Any:
    return next(
        (
            e.get("valueReference")
            for e in plan.get("extension", ())
            if e.get("url") == CUSTODIAN_EXT
        ),
        None,
    )


def _org_of(idx: Index, reference: Any) -> dict[str, Any] | None:
    target = idx.get(reference)
    if target is None:
        return None
    if target["resourceType"] == "Organization":
        return target
    return (
        idx.get(target.get("organization"))
        if target["resourceType"] == "PractitionerRole"
        else None
    )


def _body(s: Structure, idx: Index, kind: Kind, root: Element, plan: dict[str, Any]) -> None:
    body = child(child(root, "component"), "structuredBody")
    for spec in kind.sections:
        section = child(child(body, "component"), "section")
        child(section, "templateId", {"root": spec.template_id})
        child(section, "code", spec.code)
        child(section, "title", text=spec.title)
        text = child(section, "text")
        lines = WRITERS[spec.builder](s, idx, section, plan)
        items = child(text, "list")
        for line in lines or ["Ei merkintöjä (nothing recorded)"]:
            child(items, "item", text=line)
