"""Who does what by when, in words: each network responsibility (Task, with the ServiceRequest it
fulfils) and the follow-up that says when we return to the plan.

Open responsibilities come first, soonest due first (solutions first); done ones after. A Task
for a coordinator handover or a bring-back is the professionals' business, not a responsibility
shown to the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from gateway.coordination.render import texts
from gateway.coordination.render.codes import concept_display, has_code
from gateway.coordination.render.model import ResponsibilityView, Review
from gateway.coordination.render.people import person, person_line
from gateway.coordination.render.resources import CODE_SYSTEM, PlanResources, day, extension

SERVICE_KIND = f"{CODE_SYSTEM}service-kind"
TASK_TYPE = f"{CODE_SYSTEM}task-type"
FOLLOW_UP_SERVICE, PEER_SUPPORT_SERVICE = "seuranta", "vertaistuki"
NOT_RESPONSIBILITIES = ("coordinator-handover", "bring-back")
# ServiceRequest.status as the Task.status words when no Task of it was visible.
REQUEST_AS_TASK = {"active": "requested", "on-hold": "on-hold", "completed": "completed"}


def is_follow_up(res: PlanResources, task: Mapping[str, Any]) -> bool:
    if has_code(task.get("code"), TASK_TYPE, "follow-up"):
        return True
    request = res.get(task.get("focus"))
    return bool(request) and has_code(request.get("code"), SERVICE_KIND, FOLLOW_UP_SERVICE)


def _is_shown(res: PlanResources, task: Mapping[str, Any]) -> bool:
    code = task.get("code")
    if any(has_code(code, TASK_TYPE, c) for c in NOT_RESPONSIBILITIES):
        return False
    return not is_follow_up(res, task)


def _who(res: PlanResources, ref: Any, lang: str) -> str:
    p = person(res, ref, lang)
    line = person_line(p)
    return f"{p.organization}: {line}" if p.organization and line else line or p.organization


def _view(
    res: PlanResources,
    request: Mapping[str, Any] | None,
    task: Mapping[str, Any] | None,
    lang: str,
    today: date,
) -> ResponsibilityView:
    request, task = request or {}, task or {}
    status = task.get("status") or REQUEST_AS_TASK.get(str(request.get("status")), "cancelled")
    due = day(((task.get("restriction") or {}).get("period") or {}).get("end"))
    due = due or day((request.get("occurrencePeriod") or {}).get("end"))
    state = "done" if status == "completed" else "open"
    if status in texts.CLOSED_STATUSES - {"completed"}:
        state = "closed"
    words = texts.status_words(lang, str(status))
    if state == "open" and due is not None and due < today:
        state, words = "late", f"{words}, {texts.status_words(lang, 'overdue')}"
    description = str(task.get("description") or "")
    what = concept_display(request.get("code"), lang) or description
    owner = task.get("owner") or next(iter(request.get("performer") or []), None)
    return ResponsibilityView(
        who=_who(res, owner, lang),
        what=what,
        detail=description if description != what else "",
        due=texts.text(lang, "by", date=texts.format_date(lang, due)) if due else "",
        status=words,
        state=state,
        peer_support=has_code(request.get("code"), SERVICE_KIND, PEER_SUPPORT_SERVICE),
    )


def _sort_key(item: tuple[ResponsibilityView, date | None]) -> tuple[int, date, str]:
    view, due = item
    return (view.state in ("done", "closed"), due or date.max, view.what)


def responsibilities(res: PlanResources, lang: str, today: date) -> list[ResponsibilityView]:
    items: list[tuple[ResponsibilityView, date | None]] = []
    fulfilled: set[str] = set()
    for task in res.tasks:
        focus = (task.get("focus") or {}).get("reference")
        fulfilled.add(str(focus))
        if _is_shown(res, task):
            due = day(((task.get("restriction") or {}).get("period") or {}).get("end"))
            items.append((_view(res, res.get(focus), task, lang, today), due))
    for request in res.requests:
        ref = f"ServiceRequest/{request.get('id')}"
        if ref not in fulfilled and not has_code(
            request.get("code"), SERVICE_KIND, FOLLOW_UP_SERVICE
        ):
            due = day((request.get("occurrencePeriod") or {}).get("end"))
            items.append((_view(res, request, None, lang, today), due))
    return [view for view, _ in sorted(items, key=_sort_key)]


def review(res: PlanResources, lang: str) -> Review | None:
    """CarePlan review-date ("palaamme tähän"), else the follow-up Task's due date."""
    follow_ups = [t for t in res.tasks if is_follow_up(res, t) and t.get("status") != "cancelled"]
    ext = extension(res.plan, "review-date")
    when = day(ext.get("valueDate")) if ext else None
    task = min(
        follow_ups,
        key=lambda t: str(((t.get("restriction") or {}).get("period") or {}).get("end") or "~"),
        default=None,
    )
    if when is None and task is not None:
        when = day(((task.get("restriction") or {}).get("period") or {}).get("end"))
    if when is None:
        return None
    who = _who(res, task.get("owner"), lang) if task else ""
    return Review(date=texts.format_date(lang, when), who=who)
