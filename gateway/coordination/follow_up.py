"""Follow-up (seuranta, seeds 001-002): what is past its time, per coordinator and per
organisation, and bringing a case back to the team (palautus tiimiin).

`$follow-up` only reports (it changes nothing), and only what the caller may see: every resource
it looks at comes through the disclosure gate, so a partner's list holds its own clients' plans
and work. `$bring-back` writes one bring-back Task (and reopens the plan) in one transaction.
The grouping is pure (`follow_up_items`, `grouped`) so it is tested without storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway.consent.vocabulary import CANONICAL
from gateway.coordination import common
from gateway.coordination.common import Params, part
from gateway.coordination.participation import PLAN_NETWORK, check_standing, coordinator_of, ref_of
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

Resource = Mapping[str, Any]

REVIEW_DATE = f"{CANONICAL}/StructureDefinition/review-date"
LASTING_SOLUTION = f"{CANONICAL}/StructureDefinition/lasting-solution"
TASK_TYPE = f"{CANONICAL}/CodeSystem/task-type"
SERVICE_KIND = f"{CANONICAL}/CodeSystem/service-kind"
PLAN_CATEGORY = f"{CANONICAL}/CodeSystem/plan-category|asiakassuunnitelma"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
# Task statuses of work still to be done (draft: not yet sent; the rest: closed).
OPEN_TASK = ("requested", "received", "accepted", "ready", "in-progress", "on-hold")
KINDS = ("plan-past-review", "overdue-responsibility", "unanswered-handover")
BRING_BACK_DAYS = 7  # the team's answer window when the caller names no date


@dataclass(frozen=True)
class Item:
    """One thing past its time: `item` (a reference), its `due` date, and whom it concerns."""

    kind: str  # one of KINDS
    item: str
    due: str  # YYYY-MM-DD
    coordinator: str | None  # PractitionerRole/<id>: the plan's coordinator on the report date
    organization: str | None  # Organization/<id>: the Task owner's, or the plan author's
    plan: str | None = None


def _coded(concept: Any, system: str, code: str) -> bool:
    codings = (concept or {}).get("coding") if isinstance(concept, Mapping) else None
    return any(c.get("system") == system and c.get("code") == code for c in codings or [])


def _due(task: Resource) -> str | None:
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
    if _coded(task.get("code"), TASK_TYPE, "follow-up"):
        return True
    focus = requests.get(ref_of(task.get("focus")) or "")
    return focus is not None and _coded(focus.get("code"), SERVICE_KIND, "seuranta")


def _plan_of(task: Resource) -> str | None:
    """The CarePlan a Task is based on, if any."""
    refs = (ref_of(b) for b in task.get("basedOn") or [])
    return next((r for r in refs if r and r.startswith("CarePlan/")), None)


def is_responsibility(task: Resource) -> bool:
    """A network-responsibility Task: code fulfill, based on a CarePlan."""
    return _coded(task.get("code"), TASK_CODE, "fulfill") and _plan_of(task) is not None


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

    def plan_coordinator(self, plan: str | None, on: str) -> str | None:
        found = self.plans.get(plan or "")
        teams = [ref_of(t) for t in (found or {}).get("careTeam") or []]
        return self.coordinator(teams[0] if teams else None, on)


def follow_up_items(
    on: str,
    plans: Iterable[Resource],
    tasks: Iterable[Resource],
    requests: Mapping[str, Resource],
    network: Network,
) -> list[Item]:
    """Everything past its time on date `on` (YYYY-MM-DD): active plans past their review date
    or whose follow-up Task is overdue; open responsibilities past their due date (follow-up
    Tasks count for their plan, not twice); handovers still requested past their window."""
    tasks = list(tasks)
    late_follow_up: dict[str, str] = {}
    out: list[Item] = []
    for task in tasks:
        due, ref = _due(task), f"Task/{task.get('id')}"
        if task.get("status") not in OPEN_TASK or due is None or due >= on:
            continue
        if _coded(task.get("code"), TASK_TYPE, "coordinator-handover"):
            if task.get("status") == "requested":
                team = ref_of(task.get("focus"))
                owner = network.org(ref_of(task.get("owner")))
                out.append(Item(KINDS[2], ref, due, network.coordinator(team, on), owner))
        elif is_follow_up(task, requests) and _plan_of(task):
            plan = str(_plan_of(task))
            late_follow_up[plan] = min(due, late_follow_up.get(plan, due))
        elif is_responsibility(task):
            plan = _plan_of(task)
            coordinator = network.plan_coordinator(plan, on)
            owner = network.org(ref_of(task.get("owner")))
            out.append(Item(KINDS[1], ref, due, coordinator, owner, plan))
    for plan in plans:
        ref = f"CarePlan/{plan.get('id')}"
        review = review_date(plan)
        dues = [d for d in (review, late_follow_up.get(ref)) if d is not None and d < on]
        if plan.get("status") != "active" or not dues:
            continue
        author = network.org(ref_of(plan.get("author")))
        out.append(Item(KINDS[0], ref, min(dues), network.plan_coordinator(ref, on), author, ref))
    return sorted(out, key=lambda i: (KINDS.index(i.kind), i.due, i.item))


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


# -- $follow-up ------------------------------------------------------------------------------------
def ids_of(refs: Iterable[str | None], rtype: str) -> list[str]:
    """The ids of the `rtype` references among `refs`, sorted, once each."""
    prefix = f"{rtype}/"
    return sorted({r[len(prefix) :] for r in refs if r and r.startswith(prefix)})


def by_ids(svc: Services, req: FhirRequest, rtype: str, ids: list[str]) -> dict[str, Resource]:
    """The visible `rtype` resources of these ids by reference, in one audited search."""
    if not ids:
        return {}
    found = common.search_visible(svc, req, rtype, [("_id", ",".join(ids))])
    return {f"{rtype}/{r['id']}": r for r in found}


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


def follow_up(svc: Services, req: FhirRequest) -> FhirResponse:
    """`$follow-up`: what is past its time on `date`, grouped per coordinator and organisation."""
    params = Params.of(req, allowed=("date", "coordinator", "organization"))
    on = params.date("date") or common.today(req)
    if len(on) < 10:
        raise invalid("date must be a full date (YYYY-MM-DD)", common.where("date"))
    on = on[:10]
    coordinator = params.ref("coordinator", types=("PractitionerRole",))
    organization = params.ref("organization", types=("Organization",))
    plans = common.search_visible(svc, req, "CarePlan", [("category", PLAN_CATEGORY)])
    tasks = common.search_visible(svc, req, "Task", [("status", ",".join(OPEN_TASK))])
    found = common.search_visible(
        svc, req, "ServiceRequest", [("code", f"{SERVICE_KIND}|seuranta")]
    )
    requests = {f"ServiceRequest/{r['id']}": r for r in found}
    items = follow_up_items(on, plans, tasks, requests, _network(svc, req, plans, tasks))
    items = [
        i
        for i in items
        if coordinator in (None, i.coordinator) and organization in (None, i.organization)
    ]
    return common.ok(report(on, items))


# -- $bring-back -----------------------------------------------------------------------------------
REOPENS = ("completed", "on-hold")  # brought back: the plan is active again
BRINGS_BACK = ("active", *REOPENS)


def bring_back_task(
    plan: Resource, owner: Mapping[str, Any], requester: str, reason: str, due: str, now: str
) -> dict[str, Any]:
    """The bring-back Task (task-type#bring-back): the case back to the team that holds it."""
    ref = {"reference": f"CarePlan/{plan.get('id')}"}
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": common.new_id(),
        "basedOn": [ref],
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {
            "coding": [{"system": TASK_TYPE, "code": "bring-back", "display": "Palautus tiimiin"}],
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
    """The plan's CareTeam's managing organisation; the plan's author when there is none."""
    for team_ref in plan.get("careTeam") or []:
        try:
            team = common.read_ref(svc, req, ref_of(team_ref) or "")
        except FhirError as err:
            if err.category in (Category.NOT_FOUND, Category.GONE, Category.INVALID):
                continue
            raise
        for org in team.get("managingOrganization") or []:
            if ref_of(org):
                return {"reference": ref_of(org)}
    return {"reference": ref_of(plan.get("author")) or ""}


def bring_back(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/{id}/$bring-back`: a bring-back Task for the team (and the plan reopened)."""
    params = Params.of(req, allowed=("reason", "date"))
    reason = str(params.str("reason", required=True))
    due = params.date("date")
    plan = common.read_visible(svc, req, "CarePlan", str(req.id))
    check_standing(svc, req, plan, PLAN_NETWORK, "bring the case back to the team")
    if plan.get("status") not in BRINGS_BACK:
        raise common.conflict(
            "plan-reopenable",
            "only an active, completed or on-hold plan is brought back",
            "CarePlan.status",
        )
    if due is None:
        due = (date.fromisoformat(common.today(req)) + timedelta(BRING_BACK_DAYS)).isoformat()
    requester = common.acting_role(req) or common.caller_org(req) or ref_of(plan.get("author"))
    owner = _team_owner(svc, req, plan)
    task = bring_back_task(plan, owner, str(requester), reason, due, common.now(req))
    entries = [common.put(task)]
    targets = [f"Task/{task['id']}/_history/1"]
    if plan.get("status") in REOPENS:
        entries.append(common.put(reopened(plan), common.version_of(plan)))
        targets.append(common.next_version(plan))
    entries.append(common.provenance_entry(req, targets, CREATE, reason))
    results = common.apply(svc, req, entries, authority=PLAN_NETWORK)
    return common.ok(common.body_of(results[0]), 201)


CREATE = {"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}

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
