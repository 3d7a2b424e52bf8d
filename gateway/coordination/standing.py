"""What an operation on a client plan checks before it acts: the caller's standing on the plan,
a holder (a full writer, consent/writes.py rule 5) or a network member (named in
CarePlan.contributor); the plan's status; and a Coding parameter from one of our CodeSystems.

It decides with the gate's own consent context and never re-implements a write rule: the
holder test is `gateway.consent.writes.full_writer` itself. It writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fhir_profiles
from gateway.consent.context import ConsentContext
from gateway.consent.model import Caller
from gateway.consent.writes import full_writer
from gateway.coordination import common
from gateway.errors import invalid
from gateway.fhir_api.context import FhirRequest, Services

Resource = Mapping[str, Any]

# Who may act on a plan (the rules operations name in a 403): its holders, or its network.
PLAN_HOLDER = "plan-holder"
PLAN_NETWORK = "plan-network"


def _network_member(org: str, plan: Resource, ctx: ConsentContext) -> bool:
    """Whether `org` is named in CarePlan.contributor, itself or by one of its roles: a
    contributor counts as the organisation that would hold a plan it authored."""
    return any(
        org in ctx.holders({"resourceType": "CarePlan", "author": contributor})
        for contributor in plan.get("contributor") or []
    )


def plan_standing(svc: Services, req: FhirRequest, plan: Resource) -> str | None:
    """The caller's standing on a plan it may see: PLAN_HOLDER (a full writer: it holds the
    plan, or is a custodian of every client of it), PLAN_NETWORK (a network member), or None."""
    if req.caller is None:
        return PLAN_HOLDER  # no caller: in-process tools, auth off
    caller = Caller(req.caller.organization, req.caller.acting_role)
    with svc.repo.reader() as session:
        ctx = req.gate.context(session)
        if full_writer(caller, plan, ctx):
            return PLAN_HOLDER
        if _network_member(caller.organization, plan, ctx):
            return PLAN_NETWORK
    return None


def check_standing(svc: Services, req: FhirRequest, plan: Resource, rule: str, action: str) -> None:
    """403 naming `rule` unless the caller is a holder (PLAN_HOLDER), or, for PLAN_NETWORK,
    a holder or a network member of the plan."""
    standing = plan_standing(svc, req, plan)
    if standing == PLAN_HOLDER or (rule == PLAN_NETWORK and standing == PLAN_NETWORK):
        return
    who = "a holder" if rule == PLAN_HOLDER else "a holder or a network member"
    what = f"CarePlan/{plan.get('id')}"
    raise common.refuse(rule, f"only {who} of the plan may {action}", "CarePlan", req, what)


@dataclass(frozen=True)
class PlanAction:
    """An operation on the target plan: who may (`rule`, PLAN_HOLDER or PLAN_NETWORK), what it
    does (for the 403), and in which plan statuses (else 409 naming `status_rule`)."""

    rule: str
    action: str
    statuses: tuple[str, ...]
    status_rule: str
    status_message: str


def target_plan(svc: Services, req: FhirRequest, action: PlanAction) -> dict[str, Any]:
    """The plan `req` targets, as the caller sees it, if the caller may take `action` on it
    (404 hidden, 403 no standing, 409 status)."""
    plan = common.read_visible(svc, req, "CarePlan", str(req.id))
    check_standing(svc, req, plan, action.rule, action.action)
    if plan.get("status") not in action.statuses:
        raise common.conflict(action.status_rule, action.status_message, "CarePlan.status")
    return plan


def our_coding(coding: Mapping[str, Any], system: str, name: str) -> dict[str, str]:
    """The Coding of parameter `name` with its Finnish display from our CodeSystem `system`;
    400 naming the parameter for a code of any other system, or one the CodeSystem lacks."""
    code = str(coding.get("code"))
    display = fhir_profiles.display(system, code, "fi")
    if coding.get("system") != system or display is None:
        raise invalid(f"{name} must be a code of {system}", common.where(name))
    return {"system": system, "code": code, "display": display}
