"""Bringing a case back to the team (palautus tiimiin, seeds 001-002): `$bring-back` writes one
bring-back Task for the team holding the plan, and reopens a completed or on-hold plan, in one
transaction with a Provenance (declared in follow_up.OPERATIONS).

Only a holder or a network member of the plan may (standing.py); nothing is written outside
`common.apply`, and a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import fhir_profiles
from gateway.coordination import common
from gateway.coordination.common import Params
from gateway.coordination.participation_summary import ref_of
from gateway.coordination.plan_work import TASK_TYPE
from gateway.coordination.standing import PLAN_NETWORK, PlanAction, target_plan
from gateway.coordination.summary_composition import LASTING_SOLUTION
from gateway.coordination.visible import readable
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services

Resource = Mapping[str, Any]

BRING_BACK_DAYS = 7  # the team's answer window when the caller names no date
REOPENS = ("completed", "on-hold")  # brought back: the plan is active again
# Who may bring the case back, and which plans.
BRING_BACK = PlanAction(
    PLAN_NETWORK,
    "bring the case back to the team",
    ("active", *REOPENS),
    "plan-reopenable",
    "only an active, completed or on-hold plan is brought back",
)


def bring_back_task(
    plan: Resource, owner: Mapping[str, Any], requester: str, reason: str, due: str, now: str
) -> dict[str, Any]:
    """The bring-back Task (task-type#bring-back): the case back to the team that holds it."""
    ref = {"reference": f"CarePlan/{plan.get('id')}"}
    display = fhir_profiles.display(TASK_TYPE, "bring-back", "fi")
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": common.new_id(),
        "basedOn": [ref],
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {
            "coding": [{"system": TASK_TYPE, "code": "bring-back", "display": display}],
            "text": "Palautus tiimiin (the case brought back to the team)",
        },
        "description": reason,
        "focus": ref,
        "authoredOn": now,
        "lastModified": now,
        "requester": {"reference": requester},
        "owner": dict(owner),
        "reasonCode": {"text": reason},
        "restriction": {"period": {"end": due}},
    }
    if plan.get("subject"):
        task["for"] = plan["subject"]
    return task


def reopened(plan: Resource) -> dict[str, Any]:
    """The plan active again, without the lasting solution it was closed with (its earlier
    version keeps it, as does the final summary)."""
    out = {k: v for k, v in plan.items() if k != "meta"}
    out["status"] = "active"
    kept = [e for e in plan.get("extension") or [] if e.get("url") != LASTING_SOLUTION]
    if kept:
        out["extension"] = kept
    else:
        out.pop("extension", None)
    return out


def _team_owner(svc: Services, req: FhirRequest, plan: Resource) -> Mapping[str, Any]:
    """The managing organisation of the first of the plan's CareTeams that names one and the
    caller may see; the plan's author when there is none."""
    teams = [ref_of(t) or "" for t in plan.get("careTeam") or []]
    for team in readable(svc, req, teams):
        managers = [ref_of(o) for o in team.get("managingOrganization") or []]
        for manager in filter(None, managers):
            return {"reference": manager}
    return {"reference": ref_of(plan.get("author")) or ""}


def _default_due(req: FhirRequest) -> str:
    return (date.fromisoformat(common.today(req)) + timedelta(BRING_BACK_DAYS)).isoformat()


def bring_back(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/{id}/$bring-back`: a bring-back Task for the team (and the plan reopened)."""
    params = Params.of(req, allowed=("reason", "date"))
    reason = str(params.str("reason", required=True))
    due = params.date("date")
    plan = target_plan(svc, req, BRING_BACK)
    requester = common.acting_role(req) or common.caller_org(req) or ref_of(plan.get("author"))
    owner = _team_owner(svc, req, plan)
    task = bring_back_task(
        plan, owner, str(requester), reason, due or _default_due(req), common.now(req)
    )
    entries, targets = [common.put(task)], [f"Task/{task['id']}/_history/1"]
    if plan.get("status") in REOPENS:
        entries.append(common.put(reopened(plan), common.version_of(plan)))
        targets.append(common.next_version(plan))
    entries.append(common.provenance_entry(req, targets, common.CREATE, reason))
    results = common.apply(svc, req, entries, authority=PLAN_NETWORK)
    return common.ok(common.body_of(results[0]), 201)
