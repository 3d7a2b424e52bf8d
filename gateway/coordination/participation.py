"""Client participation (seed 000 "the house of client participation", seed 001): the
`$peer-support` operation records the peer-support / experience-expert offer and the client's
answer on the plan. The client's goal, chosen actors and stage feedback are plain FHIR (REST);
participation_summary.py reads them all back.

Nothing here writes anything but the plan's peer-support-offer extension (and its Provenance),
and only through `common.apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.coordination import common
from gateway.coordination.common import Params
from gateway.coordination.participation_summary import (
    PEER_SUPPORT_ANSWER,
    PEER_SUPPORT_OFFER,
    with_extension,
)
from gateway.coordination.standing import PLAN_NETWORK, PlanAction, our_coding, target_plan
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

# Who may record the offer, and while the plan is open (draft, active, on-hold).
RECORD = PlanAction(
    PLAN_NETWORK,
    "record the peer-support offer",
    ("draft", "active", "on-hold"),
    "plan-open",
    "the plan is no longer open",
)


def peer_support_extension(
    answer: Mapping[str, Any], date: str, offered_by: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The complex peer-support-offer extension: answer, date and who offered it."""
    parts: list[dict[str, Any]] = [
        {"url": "answer", "valueCoding": dict(answer)},
        {"url": "date", "valueDateTime": date},
    ]
    if offered_by is not None:
        parts.append({"url": "offeredBy", "valueReference": dict(offered_by)})
    return {"url": PEER_SUPPORT_OFFER, "extension": parts}


def _known_role(svc: Services, req: FhirRequest, ref: str) -> None:
    """400 naming offered-by unless it is a PractitionerRole the caller sees (the directory)."""
    try:
        common.read_ref(svc, req, ref)
    except FhirError as err:
        if err.category not in (Category.NOT_FOUND, Category.GONE):
            raise
        raise invalid(
            "offered-by names no known PractitionerRole", common.where("offered-by")
        ) from None


def record_peer_support(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/{id}/$peer-support`: the offer and the client's answer, on the plan (the
    earlier offer is replaced; the plan's versions keep it), with a Provenance."""
    params = Params.of(req, allowed=("answer", "date", "offered-by"))
    answer = our_coding(params.coding("answer", required=True) or {}, PEER_SUPPORT_ANSWER, "answer")
    when = params.date("date") or common.now(req)
    offered = params.ref("offered-by", types=("PractitionerRole",))
    plan = target_plan(svc, req, RECORD)
    if offered is not None:
        _known_role(svc, req, offered)
    ext = peer_support_extension(answer, when, {"reference": offered} if offered else None)
    entries = [
        common.put(with_extension(plan, ext), common.version_of(plan)),
        common.provenance_entry(req, [common.next_version(plan)], common.UPDATE),
    ]
    results = common.apply(svc, req, entries, authority=PLAN_NETWORK)
    return common.ok(common.body_of(results[0]))


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "peer-support",
        record_peer_support,
        resource_types=("CarePlan",),
        instance=True,
        title="Record the peer-support offer (vertaistuki, kokemusasiantuntija)",
        description=(
            "Records the peer-support / experience-expert offer and the client's answer as the "
            "plan's peer-support-offer extension (replacing an earlier one; the plan's history "
            "keeps it). Who may: a holder or a network member (contributor) of the plan "
            "(rule plan-network); the plan must be draft, active or on-hold (rule plan-open)."
        ),
        parameters=(
            Param("answer", "Coding", min=1, documentation="peer-support-answer code"),
            Param("date", "dateTime", documentation="when offered/answered; default now"),
            Param("offered-by", "Reference", documentation="PractitionerRole who offered it"),
            Param("return", "CarePlan", use="out", min=1),
        ),
    ),
)
