"""Builds the client-readable plan's view model from the plan's resources: the only place where
FHIR becomes words. Pure: no I/O, no clock (`today` and `printed` are given), no visibility
decisions (it renders exactly the resources it is handed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from gateway.coordination.render import texts
from gateway.coordination.render.codes import coding_display
from gateway.coordination.render.model import ClientPlanView, GoalView, OverlapView, PeerSupport
from gateway.coordination.render.network import network
from gateway.coordination.render.people import coordinator, person, person_line
from gateway.coordination.render.resources import (
    PlanResources,
    day,
    extension,
    human_name,
    points_to,
    ref_of,
    sub_extension,
)
from gateway.coordination.render.responsibilities import responsibilities, review


def build_view(
    res: PlanResources,
    lang: str,
    today: date,
    printed: date | None = None,
    overlaps: Sequence[str] = (),
) -> ClientPlanView:
    """The view model of one plan in `lang` ("fi" or "en"); `overlaps` are already in words."""
    plan = res.plan
    view = ClientPlanView(
        lang=lang,
        client_name=human_name(res.patient),
        title=str(plan.get("title") or texts.text(lang, "title")),
        period=_period(plan, lang),
        generated=texts.text(lang, "printed", date=texts.format_date(lang, printed or today)),
        solution=_solution(res, lang),
        coordinator=coordinator(res, lang, today),
        goals=_goals(res, lang),
        responsibilities=responsibilities(res, lang, today),
        review=review(res, lang),
        overlaps=[OverlapView(text) for text in overlaps],
        network=network(res, lang, today),
        refs=res.refs(),
    )
    view.peer_support = _peer_support(res, view, lang)
    return view


def _period(plan: dict, lang: str) -> str:
    period = plan.get("period") or {}
    start, end = day(period.get("start")), day(period.get("end"))
    if start and end:
        fmt = texts.format_date
        return texts.text(lang, "valid", start=fmt(lang, start), end=fmt(lang, end))
    if start:
        return texts.text(lang, "valid_from", start=texts.format_date(lang, start))
    return ""


def _solution(res: PlanResources, lang: str) -> str:
    ext = extension(res.plan, "lasting-solution")
    return coding_display(ext.get("valueCoding"), lang) if ext else ""


def _goals(res: PlanResources, lang: str) -> list[GoalView]:
    client = (
        ref_of(res.patient)
        if res.patient
        else str((res.plan.get("subject") or {}).get("reference"))
    )
    out = []
    for goal in res.goals:
        text = (goal.get("description") or {}).get("text")
        if not isinstance(text, str) or not text.strip():
            continue
        own = extension(goal, "client-own-words")
        own_words = (
            own.get("valueBoolean") is True if own else points_to(goal.get("expressedBy"), client)
        )
        due = day(next(iter(goal.get("target") or []), {}).get("dueDate"))
        # Goal.note carries the translation of the client's words for an English reader.
        notes = [n.get("text") for n in goal.get("note") or []] if lang == "en" else []
        out.append(
            GoalView(
                text=text.strip(),
                own_words=own_words,
                due=texts.text(lang, "goal_by", date=texts.format_date(lang, due)) if due else "",
                notes=tuple(n for n in notes if isinstance(n, str)),
            )
        )
    return out


def _peer_support(res: PlanResources, view: ClientPlanView, lang: str) -> PeerSupport:
    """The offer recorded on the plan (peer-support-offer), and peer-support responsibilities."""
    services = tuple(
        texts.text(lang, "peer_service", who=r.who, status=r.status)
        for r in view.responsibilities
        if r.peer_support
    )
    ext = extension(res.plan, "peer-support-offer")
    if not ext:
        return PeerSupport(services=services)
    offered = day(sub_extension(ext, "date").get("valueDateTime"))
    offered_by = sub_extension(ext, "offeredBy").get("valueReference")
    return PeerSupport(
        offered=texts.text(lang, "peer_offered", date=texts.format_date(lang, offered))
        if offered
        else "",
        answer=coding_display(sub_extension(ext, "answer").get("valueCoding"), lang),
        offered_by=person_line(person(res, offered_by, lang)) if offered_by else "",
        services=services,
    )
