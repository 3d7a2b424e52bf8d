"""What a plan's work is, read from its resources: a network responsibility, a plan's
follow-up, the plan a Task is based on, a Task's due date and the plan's review date.

Pure and shared by the follow-up report and the final summary; it decides no visibility.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.consent.vocabulary import CANONICAL
from gateway.coordination.participation_summary import ref_of
from gateway.coordination.render.codes import has_code

Resource = Mapping[str, Any]

REVIEW_DATE = f"{CANONICAL}/StructureDefinition/review-date"
TASK_TYPE = f"{CANONICAL}/CodeSystem/task-type"
SERVICE_KIND = f"{CANONICAL}/CodeSystem/service-kind"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"


def due_date(task: Resource) -> str | None:
    """A Task's due date (restriction.period.end), as YYYY-MM-DD."""
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    return str(end)[:10] if isinstance(end, str) else None


def review_date(plan: Resource) -> str | None:
    """The plan's "when we return to this" date (review-date extension), as YYYY-MM-DD."""
    for ext in plan.get("extension") or []:
        if ext.get("url") == REVIEW_DATE and isinstance(ext.get("valueDate"), str):
            return str(ext["valueDate"])[:10]
    return None


def is_follow_up(task: Resource, requests: Mapping[str, Resource]) -> bool:
    """A plan's follow-up Task: task-type#follow-up, or focused on a seuranta ServiceRequest."""
    if has_code(task.get("code"), TASK_TYPE, "follow-up"):
        return True
    focus = requests.get(ref_of(task.get("focus")) or "")
    return focus is not None and has_code(focus.get("code"), SERVICE_KIND, "seuranta")


def plan_of(task: Resource) -> str | None:
    """The CarePlan a Task is based on, if any."""
    refs = (ref_of(b) for b in task.get("basedOn") or [])
    return next((r for r in refs if r and r.startswith("CarePlan/")), None)


def is_responsibility(task: Resource) -> bool:
    """A network-responsibility Task: code fulfill, based on a CarePlan."""
    return has_code(task.get("code"), TASK_CODE, "fulfill") and plan_of(task) is not None
