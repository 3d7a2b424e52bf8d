"""The planned-services section -> ServiceRequest (what, from whom, when) and a Task per
nested responsibility act (the partner's network responsibility: owner, due date, status).
"""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, details, nodes
from adapters.cda.cda_to_fhir import parties
from adapters.cda.cda_to_fhir.common import entry_key, statements
from adapters.cda.cda_to_fhir.context import Doc, ref
from adapters.cda.mapping import translate

Element = nodes.Element
TASK_CODE = {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}


def services(doc: Doc, section: Element, plan: dict[str, Any], where: str) -> None:
    for i, st in statements(section):
        if nodes.local(st) not in ("act", "procedure", "encounter", "substanceAdministration"):
            doc.unrecognised.append(f"entry {where}/entry[{i}]")
            continue
        request = _service_request(doc, st, plan, f"{where}/{i}")
        sr_url = doc.put(request)
        plan.setdefault("activity", []).append({"reference": ref(sr_url)})
        for j, task_el in enumerate(_responsibilities(doc, st)):
            _task(doc, task_el, request, sr_url, plan, f"{where}/{i}/{j}")


def _service_request(doc: Doc, st: Element, plan: dict[str, Any], where: str) -> dict[str, Any]:
    intents = doc.s.raw["mood_to_intent"]
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": doc.derived("ServiceRequest", *entry_key(st, where)),
        "basedOn": [ref(f"urn:uuid:{plan['id']}")],
        "status": translate("act-status-to-request-status", nodes.attr(st, "statusCode", "code")),
        "intent": intents.get(st.get("moodCode") or "", "order"),
        "subject": ref(doc.patient),
    }
    code = datatypes.concept(doc.s, nodes.first(st, "code"))
    if code:
        request["code"] = code
    when = datatypes.period(nodes.first(st, "effectiveTime"))
    if when:
        request["occurrencePeriod"] = when
    requester = parties.assigned(doc, nodes.first(st, "author/assignedAuthor"), f"{where}/author")
    if requester:
        request["requester"] = ref(requester)
    performers = [
        p
        for k, el in enumerate(nodes.every(st, "performer/assignedEntity"))
        if (p := parties.assigned(doc, el, f"{where}/performer{k}"))
    ]
    if performers:
        request["performer"] = [ref(p) for p in performers]
    details.read(doc.s, st, "service", request)
    if notes := details.read_notes(doc.s, st):
        request["note"] = notes
    return request


def _responsibilities(doc: Doc, st: Element) -> list[Element]:
    template = doc.s.entry_template("responsibility")
    return [
        a for a in nodes.every(st, "entryRelationship/act") if template in nodes.template_ids(a)
    ]


def _task(
    doc: Doc, el: Element, request: dict[str, Any], sr_url: str, plan: dict[str, Any], where: str
) -> None:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": doc.derived("Task", *entry_key(el, where)),
        "basedOn": [ref(f"urn:uuid:{plan['id']}")],
        "status": "requested",
        "intent": "order",
        "code": {"coding": [TASK_CODE]},
        "focus": ref(sr_url),
        "for": ref(doc.patient),
    }
    text = nodes.text(nodes.first(el, "text"))
    if text:
        task["description"] = text
    when = datatypes.period(nodes.first(el, "effectiveTime"))
    if when:
        task["executionPeriod"] = when
    requester = parties.assigned(doc, nodes.first(el, "author/assignedAuthor"), f"{where}/author")
    owner = parties.assigned(doc, nodes.first(el, "performer/assignedEntity"), f"{where}/owner")
    if requester or request.get("requester"):
        task["requester"] = ref(requester) if requester else request["requester"]
    if owner or request.get("performer"):
        task["owner"] = ref(owner) if owner else request["performer"][0]
    details.read(doc.s, el, "responsibility", task)
    if "restriction" not in task and (request.get("occurrencePeriod") or {}).get("end"):
        task["restriction"] = {"period": {"end": request["occurrencePeriod"]["end"]}}
    if notes := details.read_notes(doc.s, el):
        task["note"] = notes
    doc.put(task)
