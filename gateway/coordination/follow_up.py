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
from gateway.coordination.follow_up_report import OPEN_TASK, Network, follow_up_items, report
from gateway.coordination.participation_summary import ref_of
from gateway.coordination.plan_work import SERVICE_KIND
from gateway.coordination.visible import by_ids, ids_of
from gateway.errors import invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

Resource = Mapping[str, Any]

PLAN_CATEGORY = f"{CANONICAL}/CodeSystem/plan-category|asiakassuunnitelma"


def _network(
    svc: Services, req: FhirRequest, plans: list[Resource], tasks: list[Resource]
) -> Network:
    """The CareTeams of the plans and handovers, and the organisations of the roles named."""
    team_refs = [ref_of(t) for p in plans for t in p.get("careTeam") or []]
    team_refs += [ref_of(t.get("focus")) for t in tasks]
    careteams = by_ids(svc, req, "CareTeam", ids_of(team_refs, "CareTeam"))
    role_refs = [ref_of(t.get("owner")) for t in tasks] + [ref_of(p.get("author")) for p in plans]
    roles = by_ids(svc, req, "PractitionerRole", ids_of(role_refs, "PractitionerRole"))
    role_orgs = {k: ref_of(r.get("organization")) or "" for k, r in roles.items()}
    by_ref = {f"CarePlan/{p['id']}": p for p in plans}
    return Network(careteams, by_ref, role_orgs)


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
    plans = common.search_visible(svc, req, "CarePlan", [("category", PLAN_CATEGORY)])
    tasks = common.search_visible(svc, req, "Task", [("status", ",".join(OPEN_TASK))])
    seuranta = [("code", f"{SERVICE_KIND}|seuranta")]
    found = common.search_visible(svc, req, "ServiceRequest", seuranta)
    requests = {f"ServiceRequest/{r['id']}": r for r in found}
    items = follow_up_items(on, plans, tasks, requests, _network(svc, req, plans, tasks))
    wanted = [
        i
        for i in items
        if coordinator in (None, i.coordinator) and organization in (None, i.organization)
    ]
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
