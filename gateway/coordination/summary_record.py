"""What the final summary is built from, read through the disclosure gate: the plan's goals,
services, responsibilities, network and stage feedback, and the organisation holding the plan.

Every read is gated and audited (`common`, visible.py); what the caller may not see is not in
the record, so the summary cannot disclose it. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.consent.vocabulary import CUSTODIAN_EXTENSION
from gateway.coordination import common
from gateway.coordination.participation_summary import ref_of
from gateway.coordination.plan_work import is_responsibility
from gateway.coordination.summary_composition import PlanRecord
from gateway.coordination.visible import by_ids, ids_of, key
from gateway.fhir_api.context import FhirRequest, Services

Resource = Mapping[str, Any]


def _ordered(resources: Iterable[Resource], field: str) -> list[Resource]:
    return sorted(resources, key=lambda r: (str(r.get(field) or ""), str(r.get("id"))))


def _requests(svc: Services, req: FhirRequest, plan: Resource) -> list[Resource]:
    """The ServiceRequests based on the plan or named by its activities."""
    found = common.search_visible(svc, req, "ServiceRequest", [("based-on", key(plan))])
    requests = {key(r): r for r in found}
    activity = [ref_of(a.get("reference")) for a in plan.get("activity") or []]
    missing = [r for r in activity if r and r not in requests]
    requests.update(by_ids(svc, req, "ServiceRequest", ids_of(missing, "ServiceRequest")))
    return _ordered(requests.values(), "authoredOn")


def gather(svc: Services, req: FhirRequest, plan: Resource) -> PlanRecord:
    """The plan's goals, services (based on it or its activities), responsibility Tasks, first
    CareTeam and stage feedback, as far as the caller may see them, in a stable order."""
    target = [("based-on", key(plan))]
    goal_refs = [ref_of(g) for g in plan.get("goal") or []]
    goals = by_ids(svc, req, "Goal", ids_of(goal_refs, "Goal"))
    requests = _requests(svc, req, plan)
    tasks = [t for t in common.search_visible(svc, req, "Task", target) if is_responsibility(t)]
    team_refs = [ref_of(t) for t in plan.get("careTeam") or []]
    teams = by_ids(svc, req, "CareTeam", ids_of(team_refs, "CareTeam"))
    feedback = common.search_visible(svc, req, "QuestionnaireResponse", target)
    return PlanRecord(
        plan=plan,
        goals=[goals[r] for r in dict.fromkeys(goal_refs) if r in goals],
        requests=requests,
        tasks=_ordered(tasks, "authoredOn"),
        careteam=next(iter(teams.values()), None),
        feedback=_ordered(feedback, "authored"),
    )


def plan_custodian(svc: Services, req: FhirRequest, plan: Resource) -> str:
    """The organisation holding the plan: its custodian extension, else its author (a
    PractitionerRole counts as its organisation)."""
    stamped = [e for e in plan.get("extension") or [] if e.get("url") == CUSTODIAN_EXTENSION]
    ref = ref_of(stamped[0].get("valueReference")) if stamped else ref_of(plan.get("author"))
    if ref and ref.startswith("PractitionerRole/"):
        ref = ref_of(common.read_ref(svc, req, ref).get("organization"))
    if not ref or not ref.startswith("Organization/"):
        raise common.conflict(
            "plan-custodian", "the plan names no holding organisation", "CarePlan.author"
        )
    return ref
