"""Network responsibilities (vastuut ja aikataulut): `CarePlan/{id}/$assign-responsibility`
records who in the client's network does what by when, as a ServiceRequest (based on the plan)
and a Task to the partner (the Gravity referral pattern), and a new activity on the plan.

All three are written in ONE transaction as the caller, under the generic write rules (the
caller must hold the plan for writing: rule plan-full-writer); nothing is written when any
check fails. How the Task moves on afterwards (only the owner changes its status, only the
requester reassigns it) is consent/task_rules.py, on the plain REST path.

Answer: a Parameters with `service-request` and `task`, the resources as stored (200).
"""

from __future__ import annotations

from typing import Any

from gateway.consent.model import Caller
from gateway.consent.task_rules import FULFILL
from gateway.consent.vocabulary import CANONICAL
from gateway.consent.writes import full_writer
from gateway.coordination import common
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

SERVICE_KIND = f"{CANONICAL}/CodeSystem/service-kind"
BUSINESS_STATUS = f"{CANONICAL}/CodeSystem/business-status"
SENT = {"system": BUSINESS_STATUS, "code": "lahetetty", "display": "Lähetetty"}
REQUEST_PROFILE = f"{CANONICAL}/StructureDefinition/responsibility-request"
TASK_PROFILE = f"{CANONICAL}/StructureDefinition/network-responsibility"
# A plan in these states takes no new responsibilities (409 plan-open).
CLOSED_PLAN = frozenset({"completed", "revoked", "entered-in-error"})
PARTIES = ("Organization", "PractitionerRole")
PARAMS = ("owner", "service", "description", "due", "requester")


def assign_responsibility(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/{id}/$assign-responsibility` (POST)."""
    params = common.Params.of(req, allowed=PARAMS)
    owner = str(params.ref("owner", required=True, types=PARTIES))
    service = params.coding("service", required=True) or {}
    if service.get("system") != SERVICE_KIND:
        raise invalid(f"service must be a code of {SERVICE_KIND}", common.where("service"))
    due = str(params.date("due", required=True))
    description = params.str("description")
    plan = common.read_visible(svc, req, "CarePlan", str(req.id))
    _check_writer(svc, req, plan)
    if plan.get("status") in CLOSED_PLAN:
        raise common.conflict("plan-open", "the plan is no longer open", "CarePlan.status")
    requester = _requester(svc, req, params.ref("requester", types=PARTIES))
    _exists(svc, req, owner, "owner")
    request, task = _resources(req, plan, owner, requester, service, due, description)
    activity = {"reference": {"reference": f"ServiceRequest/{request['id']}"}}
    updated = {**plan, "activity": [*(plan.get("activity") or []), activity]}
    entries = [
        common.put(request),
        common.put(task),
        common.put(updated, if_match=common.version_of(plan)),
    ]
    results = common.apply(svc, req, entries)
    return common.ok(
        common.parameters(
            common.part("service-request", resource=common.body_of(results[0])),
            common.part("task", resource=common.body_of(results[1])),
        )
    )


def _check_writer(svc: Services, req: FhirRequest, plan: dict[str, Any]) -> None:
    """403 plan-full-writer unless the caller holds the plan for writing (writes.py rule 5)."""
    if req.caller is None:
        return  # no caller: in-process tools, auth off
    caller = Caller(req.caller.organization, req.caller.acting_role)
    with svc.repo.reader() as session:
        allowed = full_writer(caller, plan, req.gate.context(session))
    if not allowed:
        raise common.refuse(
            "plan-full-writer",
            "only a holder of the plan (or a custodian of its client) assigns responsibilities",
            "CarePlan",
            req,
            f"CarePlan/{plan.get('id')}",
        )


def _requester(svc: Services, req: FhirRequest, given: str | None) -> str:
    """The requester: as given, else the acting PractitionerRole, else the calling organisation;
    it must be the caller's own (403 own-name, as writes.py rule 2a)."""
    org = common.caller_org(req)
    chosen = given or common.acting_role(req) or org
    if chosen is None:
        raise invalid("requester is required when no organisation calls", common.where("requester"))
    if org is None or chosen == org:
        return chosen
    role = _exists(svc, req, chosen, "requester") if chosen.startswith("PractitionerRole/") else {}
    if (role.get("organization") or {}).get("reference") != org:
        raise common.refuse(
            "own-name",
            "the requester must be the calling organisation or one of its roles",
            common.where("requester"),
            req,
        )
    return chosen


def _exists(svc: Services, req: FhirRequest, reference: str, name: str) -> dict[str, Any]:
    """The Organization/PractitionerRole `reference` names (the shared directory); 400 naming
    the parameter when it is not known."""
    try:
        return common.read_ref(svc, req, reference)
    except FhirError as err:
        if err.category not in (Category.NOT_FOUND, Category.GONE):
            raise
        raise invalid(
            f"{name} is not a known {reference.split('/')[0]}", common.where(name)
        ) from None


def _resources(
    req: FhirRequest,
    plan: dict[str, Any],
    owner: str,
    requester: str,
    service: dict[str, str],
    due: str,
    description: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ServiceRequest (responsibility-request) and Task (network-responsibility)."""
    now, today = common.now(req), common.today(req)
    based_on = [{"reference": f"CarePlan/{plan['id']}"}]
    period = {"start": today, "end": due} if today[: len(due)] <= due else {"end": due}
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": common.new_id(),
        "meta": {"profile": [REQUEST_PROFILE]},
        "basedOn": based_on,
        "status": "active",
        "intent": "order",
        "code": {"coding": [service], **({"text": description} if description else {})},
        "subject": plan.get("subject"),
        "occurrencePeriod": period,
        "authoredOn": now,
        "requester": {"reference": requester},
        "performer": [{"reference": owner}],
    }
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": common.new_id(),
        "meta": {"profile": [TASK_PROFILE]},
        "basedOn": based_on,
        "status": "requested",
        "businessStatus": {"coding": [SENT]},
        "intent": "order",
        "code": {"coding": [{"system": FULFILL[0], "code": FULFILL[1]}]},
        **({"description": description} if description else {}),
        "focus": {"reference": f"ServiceRequest/{request['id']}"},
        "for": plan.get("subject"),
        "authoredOn": now,
        "lastModified": now,
        "requester": {"reference": requester},
        "owner": {"reference": owner},
        "restriction": {"period": {"end": due}},
    }
    return request, task


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        name="assign-responsibility",
        handler=assign_responsibility,
        resource_types=("CarePlan",),
        instance=True,
        title="Assign a network responsibility (vastuu verkostolle)",
        description=(
            "Records who in the client's network does what by when: a ServiceRequest based on "
            "the plan, a Task (code fulfill, status requested) to the owner, and a new plan "
            "activity, in one transaction. Only a holder of the plan (or a custodian of its "
            "client) assigns (rule plan-full-writer)."
        ),
        parameters=(
            Param("owner", "Reference", min=1, documentation="Organization or PractitionerRole"),
            Param("service", "Coding", min=1, documentation="a code of service-kind"),
            Param("description", "string", documentation="what is to be done"),
            Param("due", "date", min=1, documentation="by when (Task.restriction.period.end)"),
            Param(
                "requester",
                "Reference",
                documentation="the caller's own role or organisation (default: the acting "
                "PractitionerRole, else the calling organisation)",
            ),
            Param("service-request", "ServiceRequest", use="out", min=1),
            Param("task", "Task", use="out", min=1),
        ),
    ),
)
