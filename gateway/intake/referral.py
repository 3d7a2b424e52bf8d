"""REF^I12 from a record system -> a network responsibility in the client's plan: a ServiceRequest
and a Task to the referred-to organisation (the work-ability team or a partner), and a new
activity on the client's active plan, as `$assign-responsibility` records one.

Everything is read as the sender, through its disclosure gate (the client, the plan and the
organisation must be visible to it), and written under the generic write rules as the sender
(it is the requester; it adds the activity as a contributor of the plan). Ids come from the
sender and RF1-6, so a repeated referral changes nothing: when its Task exists, nothing is
written, whatever state the partner has moved it to. Never logs; errors name fields, not values.
"""

from __future__ import annotations

from typing import Any

from adapters.hl7v2.builders import referral as builder
from adapters.hl7v2.errors import Hl7Error
from gateway.consent.vocabulary import HETU_SYSTEM
from gateway.coordination import common
from gateway.fhir_api.context import ID_RE
from gateway.intake.inbound import Inbound, Writes

# The plan a referral joins: the client's active shared client plan.
PLAN_PARAMS = (("status", "active"),)
PLAN_CATEGORY = ("https://fhir-plan-gateway.example/CodeSystem/plan-category", "asiakassuunnitelma")


def handle(inbound: Inbound) -> Writes:
    """The writes of one REF^I12 (gateway/intake/inbound.Handler). Raises Hl7Error (AE naming
    the segment and field) or FhirError from the reads."""
    message, req = inbound.message, inbound.req
    referral = builder.read(message)
    sender = inbound.sender.organization
    sr_id, task_id = builder.ids_of(inbound.ids, sender, referral.referral_id)
    if _exists(inbound, "Task", task_id):
        return Writes([])  # the same referral again: already in the plan
    patient = _client(inbound, referral.hetu)
    plan = _plan(inbound, patient)
    owner = _organisation(inbound, referral.referred_to)
    request, task = builder.resources(
        referral,
        ids=inbound.ids,
        sender=sender,
        patient=f"Patient/{patient}",
        plan=f"CarePlan/{plan['id']}",
        owner=owner,
        now=common.now(req),
    )
    entries = [common.put(request), common.put(task)]
    activity = {"reference": {"reference": f"ServiceRequest/{sr_id}"}}
    if activity not in (plan.get("activity") or []):
        updated = {**plan, "activity": [*(plan.get("activity") or []), activity]}
        entries.append(common.put(updated, if_match=common.version_of(plan)))
    return Writes(entries)


def _exists(inbound: Inbound, resource_type: str, id: str) -> bool:
    """Whether the resource was ever stored (a deterministic id: no disclosure involved)."""
    with inbound.svc.repo.reader() as session:
        return session.current(resource_type, id) is not None


def _client(inbound: Inbound, hetu: str) -> str:
    """The id of the client PID-3 names, as the sender may see it; AE on PID-3 otherwise."""
    found = common.search_visible(
        inbound.svc, inbound.req, "Patient", [("identifier", f"{HETU_SYSTEM}|{hetu}")], limit=2
    )
    if len(found) != 1:  # none visible, or two clients with one HETU (not ours to choose)
        raise Hl7Error(
            "invalid-value",
            "PID-3 names no client the sender may see (rule: visible-client)",
            "PID",
            3,
            sequence=_position(inbound, "PID"),
        )
    return str(found[0]["id"])


def _plan(inbound: Inbound, patient: str) -> dict[str, Any]:
    """The client's active plan the sender may see: a shared client plan first, then the latest
    created (then the highest id, so the choice is the same every time); AE on PID-3 if none."""
    plans = common.search_visible(
        inbound.svc,
        inbound.req,
        "CarePlan",
        [("subject", f"Patient/{patient}"), *PLAN_PARAMS],
    )
    if not plans:
        raise Hl7Error(
            "invalid-value",
            "PID-3 names a client with no active plan the sender may see (rule: visible-plan)",
            "PID",
            3,
            sequence=_position(inbound, "PID"),
        )
    return max(plans, key=lambda p: (_is_client_plan(p), str(p.get("created", "")), p["id"]))


def _is_client_plan(plan: dict[str, Any]) -> bool:
    return any(
        (c.get("system"), c.get("code")) == PLAN_CATEGORY
        for cat in plan.get("category") or []
        for c in (cat.get("coding") or [])
        if isinstance(c, dict)
    )


def _organisation(inbound: Inbound, identifier: str) -> str:
    """`Organization/<id>` of the referred-to provider: PRD-7 is its SOTE OID (or its id in the
    gateway's directory); AE on PRD-7 when no such organisation is known."""
    system = builder.mapping()["organization-identifier-system"]
    found = common.search_visible(
        inbound.svc, inbound.req, "Organization", [("identifier", f"{system}|{identifier}")], 2
    )
    if len(found) == 1:
        return f"Organization/{found[0]['id']}"
    if not found and ID_RE.match(identifier):
        by_id = common.search_visible(
            inbound.svc, inbound.req, "Organization", [("_id", identifier)], limit=1
        )
        if by_id:
            return f"Organization/{by_id[0]['id']}"
    raise Hl7Error(
        "invalid-value",
        "PRD-7 of the referred-to provider (RT) names no single known organisation",
        "PRD",
        7,
        sequence=_rt_position(inbound),
    )


def _position(inbound: Inbound, name: str) -> int | None:
    for position, segment in enumerate(inbound.message.segments(), 1):
        if segment.name == name:
            return position
    return None


def _rt_position(inbound: Inbound) -> int | None:
    code = builder.mapping()["provider-roles"]["referred-to"]
    for position, segment in enumerate(inbound.message.segments(), 1):
        if segment.name == "PRD" and segment.get(1) == code:
            return position
    return None
