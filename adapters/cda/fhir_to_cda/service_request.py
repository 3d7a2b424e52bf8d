"""ServiceRequest -> a service act (moodCode RQO) of the planned-services section, with each
Task that fulfils it as a nested responsibility act.
"""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, details, nodes
from adapters.cda.fhir_to_cda.common import author, entry_code, head, new_entry, performer
from adapters.cda.fhir_to_cda.parties import Index
from adapters.cda.mapping import Structure, translate
from adapters.cda.parse import child

Element = nodes.Element


_INTENT_TO_MOOD = {"order": "RQO", "plan": "INT", "proposal": "PRP"}


def services(s: Structure, idx: Index, section: Element, plan: dict[str, Any]) -> list[str]:
    lines = []
    tasks = idx.of_type("Task")
    for act_ref in plan.get("activity", ()):
        request = idx.get(act_ref.get("reference"))
        if request is None or request["resourceType"] != "ServiceRequest":
            continue
        mood = _INTENT_TO_MOOD.get(request.get("intent", ""), "RQO")
        act = head(
            s,
            new_entry(section),
            "act",
            "service",
            {"classCode": "ACT", "moodCode": mood},
            f"ServiceRequest/{request['id']}",
        )
        if datatypes.write_concept(s, act, "code", request.get("code")) is None:
            child(act, "code", {"nullFlavor": "UNK"})
        child(
            act,
            "statusCode",
            {"code": translate("request-status-to-act-status", request.get("status"))},
        )
        datatypes.write_period(act, "effectiveTime", request.get("occurrencePeriod"))
        for who in request.get("performer", ()):
            performer(s, idx, act, who)
        author(s, idx, act, request.get("requester"), request.get("authoredOn"))
        for task in tasks:
            if idx.get(task.get("focus")) is request:
                _task(s, idx, act, task)
        details.write(s, act, "service", request)
        details.write_notes(s, act, request.get("note"))
        what = (request.get("code") or {}).get("text") or "?"
        end = (request.get("occurrencePeriod") or {}).get("end")
        lines.append(what + (f", viimeistään {end}" if end else ""))
    return lines


def _task(s: Structure, idx: Index, parent: Element, task: dict[str, Any]) -> None:
    rel = child(parent, "entryRelationship", {"typeCode": "COMP"})
    act = head(
        s,
        rel,
        "act",
        "responsibility",
        {"classCode": "ACT", "moodCode": "RQO"},
        f"Task/{task['id']}",
    )
    entry_code(s, act, "responsibility")
    if task.get("description"):
        child(act, "text", text=task["description"])
    child(act, "statusCode", {"code": translate("task-status-to-act-status", task.get("status"))})
    datatypes.write_period(act, "effectiveTime", task.get("executionPeriod"))
    performer(s, idx, act, task.get("owner"))
    author(s, idx, act, task.get("requester"), None)
    details.write(s, act, "responsibility", task)
    details.write_notes(s, act, task.get("note"))
