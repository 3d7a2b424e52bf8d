"""The follow-up report (seuranta, seeds 001-002), pure: what is past its time on a date, and
its grouping per coordinator and per organisation, as the `$follow-up` Parameters.

It reads no storage and decides no visibility: follow_up.py passes only what the caller may
see, so the report never names what the gate hid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.coordination import common
from gateway.coordination.common import part
from gateway.coordination.network import coordinators_at, instant, member
from gateway.coordination.participation_summary import ref_of
from gateway.coordination.plan_work import (
    TASK_TYPE,
    due_date,
    is_follow_up,
    is_responsibility,
    plan_of,
    review_date,
)
from gateway.coordination.render.codes import has_code

Resource = Mapping[str, Any]

# Task statuses of work still to be done (draft: not yet sent; the rest: closed).
OPEN_TASK = ("requested", "received", "accepted", "ready", "in-progress", "on-hold")
KINDS = ("plan-past-review", "overdue-responsibility", "unanswered-handover")


@dataclass(frozen=True)
class Item:
    """One thing past its time: `item` (a reference), its `due` date, and whom it concerns."""

    kind: str  # one of KINDS
    item: str
    due: str  # YYYY-MM-DD
    coordinator: str | None  # PractitionerRole/<id>: the plan's coordinator on the report date
    organization: str | None  # Organization/<id>: the Task owner's, or the plan author's
    plan: str | None = None


def coordinator_of(careteam: Resource, on: str) -> str | None:
    """The CareTeam's coordinator (asiakasvastaava) at the start of `on` (a FHIR date or
    dateTime), as network.py reads coordinator periods."""
    found = coordinators_at(careteam, instant(on))
    return member(found[-1]) if found else None


@dataclass(frozen=True)
class Network:
    """What grouping needs besides the items: CareTeams and plans by reference, and each
    PractitionerRole's organisation."""

    careteams: Mapping[str, Resource]
    plans: Mapping[str, Resource]
    role_orgs: Mapping[str, str]

    def org(self, ref: str | None) -> str | None:
        if ref and ref.startswith("PractitionerRole/"):
            return self.role_orgs.get(ref)
        return ref if ref and ref.startswith("Organization/") else None

    def coordinator(self, careteam: str | None, on: str) -> str | None:
        team = self.careteams.get(careteam or "")
        return coordinator_of(team, on) if team is not None else None


@dataclass(frozen=True)
class Finding:
    """An item before grouping: what names its coordinator (`team`, a CareTeam reference) and
    its organisation (`party`: the Task owner or the plan author, as referenced)."""

    kind: str  # one of KINDS
    item: str
    due: str
    team: str | None
    party: str | None
    plan: str | None = None


def is_late(task: Resource, on: str) -> bool:
    """An open Task whose due date is before `on`."""
    due = due_date(task)
    return task.get("status") in OPEN_TASK and due is not None and due < on


def _kind(task: Resource, requests: Mapping[str, Resource]) -> str | None:
    """What a late Task is late as (first that applies): a handover, a plan's follow-up, a
    responsibility; None for anything else."""
    if has_code(task.get("code"), TASK_TYPE, "coordinator-handover"):
        return "handover"
    if is_follow_up(task, requests) and plan_of(task):
        return "follow-up"
    return "responsibility" if is_responsibility(task) else None


def _team(plan: str | None, plans: Mapping[str, Resource]) -> str | None:
    """The plan's (first) CareTeam, whose coordinator the plan's items concern."""
    teams = [ref_of(t) for t in (plans.get(plan or "") or {}).get("careTeam") or []]
    return teams[0] if teams else None


def _task_finding(
    task: Resource, kind: str | None, plans: Mapping[str, Resource]
) -> Finding | None:
    """A late handover (still requested) or responsibility; else None."""
    ref, due, owner = f"Task/{task.get('id')}", str(due_date(task)), ref_of(task.get("owner"))
    if kind == "handover" and task.get("status") == "requested":
        return Finding(KINDS[2], ref, due, ref_of(task.get("focus")), owner)
    if kind == "responsibility":
        plan = plan_of(task)
        return Finding(KINDS[1], ref, due, _team(plan, plans), owner, plan)
    return None


def _plan_finding(
    plan: Resource, late: Mapping[str, str], on: str, plans: Mapping[str, Resource]
) -> Finding | None:
    """An active plan past its review date or with a late follow-up Task; else None."""
    ref = f"CarePlan/{plan.get('id')}"
    dues = [d for d in (review_date(plan), late.get(ref)) if d is not None and d < on]
    if plan.get("status") != "active" or not dues:
        return None
    return Finding(KINDS[0], ref, min(dues), _team(ref, plans), ref_of(plan.get("author")), ref)


def findings(
    on: str,
    plans: Iterable[Resource],
    tasks: Iterable[Resource],
    requests: Mapping[str, Resource],
    by_ref: Mapping[str, Resource],
) -> list[Finding]:
    """Everything past its time on date `on` (YYYY-MM-DD), sorted: active plans past their
    review date or whose follow-up Task is overdue; open responsibilities past their due date
    (follow-up Tasks count for their plan, not twice); handovers still requested past their
    window. `by_ref`: the plans by reference, whose CareTeam the items concern."""
    kinds = [(t, _kind(t, requests)) for t in tasks if is_late(t, on)]
    follow_ups: dict[str, str] = {}
    for task in (t for t, kind in kinds if kind == "follow-up"):
        plan, due = str(plan_of(task)), str(due_date(task))
        follow_ups[plan] = min(due, follow_ups.get(plan, due))
    found = [_task_finding(t, kind, by_ref) for t, kind in kinds]
    found += [_plan_finding(p, follow_ups, on, by_ref) for p in plans]
    out = [f for f in found if f is not None]
    return sorted(out, key=lambda f: (KINDS.index(f.kind), f.due, f.item))


def items_of(found: Iterable[Finding], on: str, network: Network) -> list[Item]:
    """The findings with their coordinator on `on` and their organisation (each CareTeam's
    coordinator read once)."""
    coordinators: dict[str | None, str | None] = {}
    out = []
    for f in found:
        if f.team not in coordinators:
            coordinators[f.team] = network.coordinator(f.team, on)
        out.append(Item(f.kind, f.item, f.due, coordinators[f.team], network.org(f.party), f.plan))
    return out


def follow_up_items(
    on: str,
    plans: Iterable[Resource],
    tasks: Iterable[Resource],
    requests: Mapping[str, Resource],
    network: Network,
) -> list[Item]:
    """Everything past its time on date `on` (`findings`), grouped by `network`."""
    return items_of(findings(on, plans, tasks, requests, network.plans), on, network)


def grouped(items: Iterable[Item]) -> list[tuple[str, str, list[Item]]]:
    """(`coordinator` | `organization`, reference, items) groups: every item once under its
    coordinator and once under its organisation (an unknown one: no group), sorted."""
    groups: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        if item.coordinator:
            groups.setdefault(("coordinator", item.coordinator), []).append(item)
        if item.organization:
            groups.setdefault(("organization", item.organization), []).append(item)
    return [(by, ref, groups[(by, ref)]) for by, ref in sorted(groups)]


def _item_part(item: Item) -> dict[str, Any]:
    parts = [
        part("item", valueReference={"reference": item.item}),
        part("due", valueDate=item.due),
    ]
    if item.plan and item.plan != item.item:
        parts.append(part("plan", valueReference={"reference": item.plan}))
    return part(item.kind, part=parts)


def report(on: str, items: Iterable[Item]) -> dict[str, Any]:
    """The `$follow-up` answer: the report date, then one `group` part per group."""
    groups = [
        part("group", part=[part(by, valueReference={"reference": ref}), *map(_item_part, found)])
        for by, ref, found in grouped(items)
    ]
    return common.parameters(part("date", valueDate=on), groups)
