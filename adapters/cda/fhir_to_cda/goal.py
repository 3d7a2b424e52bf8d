"""Goal -> a goal observation (moodCode GOL) of the goals section."""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, details, nodes
from adapters.cda.fhir_to_cda.common import author, entry_code, head, new_entry
from adapters.cda.fhir_to_cda.parties import Index
from adapters.cda.mapping import Structure, translate
from adapters.cda.parse import child

Element = nodes.Element


def goals(s: Structure, idx: Index, section: Element, plan: dict[str, Any]) -> list[str]:
    lines = []
    for goal in filter(None, (idx.get(g) for g in plan.get("goal", ()))):
        obs = head(
            s,
            new_entry(section),
            "observation",
            "goal",
            {"classCode": "OBS", "moodCode": "GOL"},
            f"Goal/{goal['id']}",
        )
        entry_code(s, obs, "goal")
        words = (goal.get("description") or {}).get("text") or ""
        child(obs, "text", text=words)
        child(
            obs,
            "statusCode",
            {"code": translate("goal-status-to-act-status", goal.get("lifecycleStatus"))},
        )
        due = ((goal.get("target") or [{}])[0]).get("dueDate")
        datatypes.write_period(obs, "effectiveTime", {"start": goal.get("startDate"), "end": due})
        author(s, idx, obs, goal.get("expressedBy"), None)
        details.write(s, obs, "goal", goal)
        details.write_notes(s, obs, goal.get("note"))
        lines.append(words + (f" (tavoiteaika {due})" if due else ""))
    return lines
