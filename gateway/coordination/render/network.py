"""The client's network as nodes for the picture: one node per organisation, with its people (the
CareTeam members) and what it does for the client (the Tasks it owns). The coordinator's
organisation comes first and is marked, so the picture can highlight it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from gateway.coordination.render.codes import concept_display
from gateway.coordination.render.model import NetworkNode
from gateway.coordination.render.people import (
    is_client,
    is_coordinator,
    organization_name,
    participants,
    person,
    person_line,
)
from gateway.coordination.render.resources import PlanResources
from gateway.coordination.render.responsibilities import is_follow_up


@dataclass
class _Node:
    title: str
    people: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    coordinator: bool = False


def _org_key(res: PlanResources, ref: Any) -> tuple[str, Any]:
    """The organisation a member or owner belongs to: (key, Reference to the organisation)."""
    target = res.get(ref)
    if target is not None and target.get("resourceType") == "PractitionerRole":
        org = target.get("organization") or {}
        return str(org.get("reference") or org.get("display") or ""), org
    key = ref.get("reference") or ref.get("display") if isinstance(ref, Mapping) else None
    return str(key or ""), ref


def network(res: PlanResources, lang: str, today: date) -> list[NetworkNode]:
    nodes: dict[str, _Node] = {}

    def node(ref: Any) -> _Node:
        key, org_ref = _org_key(res, ref)
        if key not in nodes:
            nodes[key] = _Node(organization_name(res, org_ref) or person(res, ref, lang).name)
        return nodes[key]

    members = [p for p in participants(res, today) if not is_client(p)]
    for p in sorted(members, key=lambda p: not is_coordinator(p)):
        target = node(p.get("member"))
        target.coordinator = target.coordinator or is_coordinator(p)
        if (res.get(p.get("member")) or {}).get("resourceType") != "Organization":
            line = person_line(person(res, p.get("member"), lang))
            if line and line not in target.people:
                target.people.append(line)
    for task in res.tasks:
        if task.get("status") in ("cancelled", "entered-in-error") or is_follow_up(res, task):
            continue
        request = res.get(task.get("focus")) or {}
        what = concept_display(request.get("code"), lang) or str(task.get("description") or "")
        if task.get("owner") and what:
            node(task["owner"]).tasks.append(what)
    ordered = sorted(nodes.values(), key=lambda n: not n.coordinator)
    return [
        NetworkNode(n.title, tuple(n.people), tuple(dict.fromkeys(n.tasks)), n.coordinator)
        for n in ordered
        if n.title
    ]
