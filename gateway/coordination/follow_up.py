"""Follow-up (seuranta, seeds 001-002): `$follow-up` reports what is past its time, per
coordinator and per organisation; `$bring-back` brings a case back to the team (palautus
tiimiin).

`$follow-up` only reports (it changes nothing), and only what the caller may see: every resource
it looks at comes through the disclosure gate, so a partner's list holds its own clients' plans
and work. The report itself is pure (follow_up_report.py); `$bring-back` is bring_back.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.consent.vocabulary import CANONICAL
from gateway.coordination import common
from gateway.coordination.bring_back import bring_back
from gateway.coordination.common import Params
from gateway.coordination.follow_up_report import (
    OPEN_TASK,
    Finding,
    Network,
    findings,
    is_late,
    items_of,
    report,
)
from gateway.coordination.participation_summary import ref_of
from gateway.coordination.plan_work import SERVICE_KIND, plan_of
from gateway.coordination.visible import by_ids, ids_of
from gateway.errors import invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

Resource = Mapping[str, Any]

PLAN_CATEGORY = f"{CANONICAL}/CodeSystem/plan-category|asiakassuunnitelma"
PLAN_CRITERIA = (("category", PLAN_CATEGORY),)


def _plans(svc: Services, req: FhirRequest, tasks: list[Resource], on: str) -> dict[str, Resource]:
    """The active plans (the only ones a plan can be late as), and the other plans that late
    Tasks are based on (their CareTeam names the Task's coordinator), by reference."""
    found = common.search_visible(svc, req, "CarePlan", [*PLAN_CRITERIA, ("status", "active")])
    by_ref = {f"CarePlan/{p['id']}": p for p in found}
    based_on = [plan_of(t) for t in tasks if is_late(t, on) and plan_of(t) not in by_ref]
    ids = ids_of(based_on, "CarePlan")
    return by_ref | by_ids(svc, req, "CarePlan", ids, PLAN_CRITERIA)


def _roles(svc: Services, req: FhirRequest, found: list[Finding]) -> dict[str, str]:
    """The organisation of each PractitionerRole that owns or authored an item."""
    ids = ids_of((f.party for f in found), "PractitionerRole")
    roles = by_ids(svc, req, "PractitionerRole", ids)
    return {k: ref_of(r.get("organization")) or "" for k, r in roles.items()}


def _report_date(params: Params, req: FhirRequest) -> str:
    on = params.date("date") or common.today(req)
    if len(on) < 10:
        raise invalid("date must be a full date (YYYY-MM-DD)", common.where("date"))
    return on[:10]


def follow_up(svc: Services, req: FhirRequest) -> FhirResponse:
    """`$follow-up`: what is past its time on `date`, grouped per coordinator and organisation."""
    params = Params.of(req, allowed=("date", "coordinator", "organization"))
    on = _report_date(params, req)
    coordinator = params.ref("coordinator", types=("PractitionerRole",))
    organization = params.ref("organization", types=("Organization",))
    tasks = common.search_visible(svc, req, "Task", [("status", ",".join(OPEN_TASK))])
    seuranta = [("code", f"{SERVICE_KIND}|seuranta")]
    found = common.search_visible(svc, req, "ServiceRequest", seuranta)
    requests = {f"ServiceRequest/{r['id']}": r for r in found}
    plans = _plans(svc, req, tasks, on)
    active = [p for p in plans.values() if p.get("status") == "active"]
    late = findings(on, active, tasks, requests, plans)
    # Only what is late needs its organisation and coordinator: roles first (few), then only the
    # CareTeams of the items the `organization` filter keeps.
    network = Network({}, plans, _roles(svc, req, late))
    late = [f for f in late if organization in (None, network.org(f.party))]
    teams = by_ids(svc, req, "CareTeam", ids_of((f.team for f in late), "CareTeam"))
    items = items_of(late, on, Network(teams, plans, network.role_orgs))
    wanted = [i for i in items if coordinator in (None, i.coordinator)]
    return common.ok(report(on, wanted))


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "follow-up",
        follow_up,
        system=True,
        affects_state=False,
        scope=("CarePlan", "s"),
        title="Follow-up: what is past its time (seuranta)",
        description=(
            "Active plans past their review date (review-date extension) or whose follow-up "
            "Task is overdue, open network responsibilities past their due date, and "
            "coordinator handovers still requested past their answer window, grouped per "
            "coordinator (the CareTeam's asiakasvastaava on `date`) and per organisation (the "
            "Task owner's, the plan author's). Only what the caller may see; changes nothing."
        ),
        parameters=(
            Param("date", "date", documentation="the report date; default today"),
            Param("coordinator", "Reference", documentation="only this PractitionerRole's"),
            Param("organization", "Reference", documentation="only this Organization's"),
            Param("date", "date", use="out", min=1),
            Param("group", "Parameters", use="out", max="*"),
        ),
    ),
    Operation(
        "bring-back",
        bring_back,
        resource_types=("CarePlan",),
        instance=True,
        scope=("Task", "c"),
        title="Bring the case back to the team (palautus tiimiin)",
        description=(
            "Creates a bring-back Task (task-type#bring-back) for the plan's CareTeam's managing "
            "organisation, due `date` (default in 7 days), and makes a completed or on-hold "
            "plan active again, in one transaction with a Provenance. Who may: a holder or a "
            "network member (contributor) of the plan (rule plan-network)."
        ),
        parameters=(
            Param("reason", "string", min=1, documentation="why the case comes back"),
            Param("date", "date", documentation="when the team should have taken it up"),
            Param("return", "Task", use="out", min=1),
        ),
    ),
)
