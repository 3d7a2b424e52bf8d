"""The goals section -> Goal (one per goal observation): the client's own goals."""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, details, nodes
from adapters.cda.cda_to_fhir import parties
from adapters.cda.cda_to_fhir.common import entry_key, statements, words
from adapters.cda.cda_to_fhir.context import Doc, ref
from adapters.cda.mapping import translate

Element = nodes.Element


def goals(doc: Doc, section: Element, plan: dict[str, Any], where: str) -> None:
    for i, st in statements(section):
        text = words(doc, st)
        if text is None or nodes.local(st) != "observation":
            doc.unrecognised.append(f"entry {where}/entry[{i}]")
            continue
        goal: dict[str, Any] = {
            "resourceType": "Goal",
            "id": doc.derived("Goal", *entry_key(st, f"{where}/{i}")),
            "lifecycleStatus": translate(
                "act-status-to-goal-status", nodes.attr(st, "statusCode", "code")
            ),
            "description": {"text": text},
            "subject": ref(doc.patient),
        }
        when = datatypes.period(nodes.first(st, "effectiveTime"))
        if when.get("start"):
            goal["startDate"] = when["start"][:10]
        if when.get("end"):
            goal["target"] = [{"dueDate": when["end"][:10]}]
        who = parties.assigned(doc, nodes.first(st, "author/assignedAuthor"), f"{where}/{i}/author")
        if who:
            goal["expressedBy"] = ref(who)
        details.read(doc.s, st, "goal", goal)
        if notes := details.read_notes(doc.s, st):
            goal["note"] = notes
        plan.setdefault("goal", []).append(ref(doc.put(goal)))
