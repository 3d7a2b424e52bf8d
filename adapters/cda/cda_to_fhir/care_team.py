"""The network section -> CareTeam (the client network with the named coordinator): one
organizer, one member act per participant.
"""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, details, nodes
from adapters.cda.cda_to_fhir import parties
from adapters.cda.cda_to_fhir.common import entry_key, statements
from adapters.cda.cda_to_fhir.context import Doc, ref

Element = nodes.Element


def network(doc: Doc, section: Element, plan: dict[str, Any], where: str) -> None:
    for i, st in statements(section):
        if nodes.local(st) != "organizer":
            doc.unrecognised.append(f"entry {where}/entry[{i}]")
            continue
        team = _care_team(doc, st, f"{where}/{i}")
        plan.setdefault("careTeam", []).append(ref(doc.put(team)))


def _care_team(doc: Doc, st: Element, where: str) -> dict[str, Any]:
    team: dict[str, Any] = {
        "resourceType": "CareTeam",
        "id": doc.derived("CareTeam", *entry_key(st, where)),
        "status": "active",
        "category": [doc.s.raw["network_category"]],
        "subject": ref(doc.patient),
    }
    name = nodes.text(nodes.first(st, "code/originalText"))
    if name:
        team["name"] = name
    when = datatypes.period(nodes.first(st, "effectiveTime"))
    if when:
        team["period"] = when
    managers = [
        m
        for k, el in enumerate(nodes.every(st, "performer/assignedEntity"))
        if (m := parties.assigned(doc, el, f"{where}/manager{k}"))
    ]
    if managers:
        team["managingOrganization"] = [ref(m) for m in managers]
    members = [_member(doc, act, f"{where}/member{k}") for k, act in enumerate(_members(doc, st))]
    team["participant"] = [m for m in members if m]
    details.read(doc.s, st, "network", team, wrapper="component")
    if notes := details.read_notes(doc.s, st, wrapper="component"):
        team["note"] = notes
    return team


def _members(doc: Doc, st: Element) -> list[Element]:
    template = doc.s.entry_template("member")
    return [a for a in nodes.every(st, "component/act") if template in nodes.template_ids(a)]


def _member(doc: Doc, act: Element, where: str) -> dict[str, Any] | None:
    who = parties.assigned(doc, nodes.first(act, "performer/assignedEntity"), where)
    if who is None:
        return None
    member: dict[str, Any] = {"member": ref(who)}
    role = datatypes.concept(doc.s, nodes.first(act, "code"))
    if role:
        member["role"] = [role]
    when = datatypes.period(nodes.first(act, "effectiveTime"))
    if when:
        member["period"] = when
    details.read(doc.s, act, "member", member)
    return member
