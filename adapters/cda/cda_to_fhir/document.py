"""A parsed CDA document -> the import (context.Doc): the kind, the header (client, authors,
custodian, plan period), each recognised section through its reader, the CarePlan and the
Provenance of the custodian; what is not recognised is listed, never guessed.
"""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, nodes
from adapters.cda.cda_to_fhir import BUILDERS, parties
from adapters.cda.cda_to_fhir.context import Doc, ref
from adapters.cda.errors import CdaError
from adapters.cda.mapping import Kind, Structure
from adapters.ids import Ids
from fhir_profiles import CANONICAL

Element = nodes.Element
GENERIC = Kind("generic", (), None, "", None, False, False, ())
CUSTODIAN_EXT = f"{CANONICAL}/StructureDefinition/custodian"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PROVENANCE_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def kind_of(s: Structure, root: Element) -> Kind:
    """Our kind named by one of the document's templateIds, else GENERIC."""
    for template in nodes.template_ids(root):
        if template in s.by_template:
            return s.kinds[s.by_template[template]]
    return GENERIC


def ii(el: Element | None) -> tuple[str, str]:
    """An II as (root, extension), empty strings when absent."""
    if el is None or not el.get("root"):
        return "", ""
    return el.get("root"), el.get("extension") or ""


def start(s: Structure, ids: Ids, root: Element) -> Doc:
    doc_id = ii(nodes.first(root, "id"))
    if not doc_id[0]:
        raise CdaError("missing-element", "ClinicalDocument/id", nodes.line(root))
    set_id = ii(nodes.first(root, "setId"))
    set_root, set_ext = set_id if set_id[0] else doc_id
    return Doc(s=s, ids=ids, set_root=set_root, set_ext=set_ext)


def sections(doc: Doc, kind: Kind, root: Element, plan: dict[str, Any]) -> int:
    """Every section (nested ones too) through its reader; the number recognised."""
    found = 0
    body = nodes.first(root, "component/structuredBody")
    for i, section in enumerate(body.iter(nodes.q("section")) if body is not None else ()):
        code_el = nodes.first(section, "code")
        code = (
            ("", "")
            if code_el is None
            else (code_el.get("codeSystem") or "", code_el.get("code") or "")
        )
        builder = doc.s.section_of(kind, nodes.template_ids(section), code)
        if builder is None:
            doc.unrecognised.append(_section_label(section, code))
            continue
        found += 1
        BUILDERS[builder](doc, section, plan, f"section{i}")
    return found


def _section_label(section: Element, code: tuple[str, str]) -> str:
    if code[1]:
        return f"section {code[0]}|{code[1]}"
    templates = nodes.template_ids(section)
    if templates:
        return f"section templateId {templates[0]}"
    return f"section at line {section.sourceline}"


def header(doc: Doc, kind: Kind, root: Element) -> dict[str, Any]:
    """recordTarget, author, custodian, serviceEvent -> the Patient and the CarePlan's header."""
    target = nodes.first(root, "recordTarget/patientRole")
    if target is None:
        raise CdaError("missing-element", "recordTarget/patientRole", nodes.line(root))
    parties.patient(doc, target)
    plan: dict[str, Any] = {"resourceType": "CarePlan", "id": doc.derived("CarePlan")}
    if kind.plan:
        plan["category"] = [doc.s.raw["plan_category"]]
    plan.update(status="active", intent="plan")
    title = nodes.text(nodes.first(root, "title"))
    if title:
        plan["title"] = title
    plan["subject"] = ref(doc.patient)
    _service_event(doc, nodes.first(root, "documentationOf/serviceEvent"), plan)
    _authors(doc, root, plan)
    if kind.plan and "author" not in plan:
        raise CdaError("missing-element", "author/assignedAuthor", nodes.line(root))
    path = "custodian/assignedCustodian/representedCustodianOrganization"
    doc.custodian = parties.organization(doc, nodes.first(root, path), "custodian")
    if doc.custodian is None and kind.plan:
        raise CdaError("missing-element", "custodian", nodes.line(root))
    if doc.custodian:
        plan["extension"] = [{"url": CUSTODIAN_EXT, "valueReference": ref(doc.custodian)}]
    return plan


def _service_event(doc: Doc, event: Element | None, plan: dict[str, Any]) -> None:
    idents = [i for i in (datatypes.identifier(doc.s, el) for el in nodes.every(event, "id")) if i]
    if idents:
        plan["identifier"] = idents
    when = datatypes.period(nodes.first(event, "effectiveTime"))
    if when:
        plan["period"] = when


def _authors(doc: Doc, root: Element, plan: dict[str, Any]) -> None:
    """The first author is the plan's author (its time = created); all are Provenance agents."""
    for i, author in enumerate(nodes.every(root, "author")):
        who = parties.assigned(doc, nodes.first(author, "assignedAuthor"), f"author{i}")
        if who is None:
            continue
        doc.authors.append(who)
        if "author" not in plan:
            plan["author"] = ref(who)
            created = datatypes.fhir_time(nodes.first(author, "time"))
            if created:
                plan["created"] = created
    verifier = nodes.first(root, "legalAuthenticator/assignedEntity")
    doc.verifier = parties.assigned(doc, verifier, "legalAuthenticator")


def provenance(doc: Doc, root: Element) -> None:
    """Who holds and who wrote what this import brings: the custodian (CST), the authors, the
    legal authenticator; the entity is the document by its id. Put after every target."""
    recorded = datatypes.fhir_time(nodes.first(root, "effectiveTime"))
    if recorded is None:
        raise CdaError("missing-element", "ClinicalDocument/effectiveTime", nodes.line(root))
    if "T" not in recorded:  # a date only: Provenance.recorded is an instant
        recorded = (recorded + "-01-01")[:10] + "T00:00:00+00:00"
    agents = [_agent(V3_PARTICIPATION, "CST", doc.custodian)] if doc.custodian else []
    agents += [_agent(PROVENANCE_TYPE, "author", a) for a in doc.authors]
    if doc.verifier:
        agents.append(_agent(PROVENANCE_TYPE, "verifier", doc.verifier))
    doc_root, doc_ext = ii(nodes.first(root, "id"))
    what = (
        {"system": f"urn:oid:{doc_root}", "value": doc_ext}
        if doc_ext
        else {"system": datatypes.URI_SYSTEM, "value": f"urn:oid:{doc_root}"}
    )
    resource = {
        "resourceType": "Provenance",
        "id": doc.derived("Provenance"),
        "target": [ref(t) for t in doc.targets],
        "recorded": recorded,
        "activity": {"coding": [{"system": DATA_OPERATION, "code": "CREATE"}]},
        "agent": agents or [_agent(PROVENANCE_TYPE, "author", doc.patient)],
        "entity": [{"role": "source", "what": {"identifier": what}}],
    }
    doc.put(resource, target=False)


def _agent(system: str, code: str, who: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": system, "code": code}]}, "who": ref(who)}
