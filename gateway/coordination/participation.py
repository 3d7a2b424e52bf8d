"""Client participation (seed 000 "the house of client participation", seed 001): the client's
goal in their own words, the actors the client chose, feedback at each stage, and the
peer-support / experience-expert offer with the client's answer.

`participation_summary` is pure and shared (the client-readable plan, the final summary); the
`$peer-support` operation records the offer on the plan. Nothing here writes anything but the
plan's peer-support-offer extension, and nothing here decides visibility: callers pass only
resources that went through the disclosure gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.consent.decisions import client_custodians
from gateway.consent.vocabulary import CANONICAL
from gateway.consent.writes import write_holders
from gateway.coordination import common
from gateway.coordination.common import Params
from gateway.coordination.network import coordinators_at, instant, member
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

Resource = Mapping[str, Any]

CLIENT_OWN_WORDS = f"{CANONICAL}/StructureDefinition/client-own-words"
CHOSEN_BY_CLIENT = f"{CANONICAL}/StructureDefinition/chosen-by-client"
PEER_SUPPORT_OFFER = f"{CANONICAL}/StructureDefinition/peer-support-offer"
PEER_SUPPORT_ANSWER = f"{CANONICAL}/CodeSystem/peer-support-answer"
FEEDBACK_STAGE = f"{CANONICAL}/CodeSystem/feedback-stage"
STAGE_FEEDBACK = f"{CANONICAL}/Questionnaire/stage-feedback"
CLIENT_FEEDBACK_PROFILE = f"{CANONICAL}/StructureDefinition/client-feedback"
# Who may act on a plan (the rules operations name in a 403): its holders, or its network.
PLAN_HOLDER = "plan-holder"
PLAN_NETWORK = "plan-network"
# Plan statuses in which the peer-support offer may still be recorded.
OPEN_PLAN = ("draft", "active", "on-hold")

# peer-support-answer: code -> (Finnish display, English designation).
PEER_SUPPORT_ANSWERS: dict[str, tuple[str, str]] = {
    "tarjottu": ("Tarjottu", "Offered"),
    "hyvaksytty": ("Hyväksytty", "Accepted"),
    "ei-nyt": ("Ei nyt", "Not now"),
    "kieltaytyi": ("Kieltäytyi", "Declined"),
}
# feedback-stage: code -> (Finnish display, English designation).
FEEDBACK_STAGES: dict[str, tuple[str, str]] = {
    "suunnitelma": ("Suunnitelma sovittu", "Plan agreed"),
    "verkostoneuvottelu": ("Verkostoneuvottelu", "Network meeting"),
    "vaihto": ("Asiakasvastaavan vaihto", "Handover"),
    "seuranta": ("Seuranta", "Follow-up"),
    "loppuyhteenveto": ("Loppuyhteenveto", "Final summary"),
}


def _extension(resource: Resource, url: str) -> Mapping[str, Any] | None:
    for ext in resource.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == url:
            return ext
    return None


def ref_of(value: Any) -> str | None:
    """The literal reference text of a Reference, or None."""
    ref = value.get("reference") if isinstance(value, Mapping) else None
    return ref if isinstance(ref, str) else None


def _code(concept: Any) -> str | None:
    """The first code of a CodeableConcept, or None."""
    if not isinstance(concept, Mapping):
        return None
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
            return str(coding["code"])
    return None


def own_words(goal: Resource, client: str | None) -> bool:
    """Whether the goal's description is the client's own words: the client-own-words extension
    decides when present; otherwise a goal expressed by the client themself counts."""
    ext = _extension(goal, CLIENT_OWN_WORDS)
    if ext is not None and isinstance(ext.get("valueBoolean"), bool):
        return bool(ext["valueBoolean"])
    return client is not None and ref_of(goal.get("expressedBy")) == client


def goal_entry(goal: Resource, client: str | None) -> dict[str, Any]:
    """One goal as the summaries show it: text, own words, lifecycle and achievement."""
    return {
        "goal": f"Goal/{goal.get('id')}",
        "text": str((goal.get("description") or {}).get("text") or ""),
        "own_words": own_words(goal, client),
        "lifecycle": goal.get("lifecycleStatus"),
        "achievement": _code(goal.get("achievementStatus")),
    }


def chosen_actors(careteam: Resource | None) -> list[dict[str, Any]]:
    """The CareTeam participants the client chose (chosen-by-client true), current ones only."""
    out: list[dict[str, Any]] = []
    for p in (careteam or {}).get("participant") or []:
        ext = _extension(p, CHOSEN_BY_CLIENT)
        if ext is None or ext.get("valueBoolean") is not True:
            continue
        if (p.get("period") or {}).get("end"):
            continue
        member = p.get("member") or {}
        out.append(
            {
                "member": ref_of(member),
                "display": member.get("display"),
                "role": _code((p.get("role") or [None])[0]),
            }
        )
    return out


def feedback_entry(response: Resource) -> dict[str, Any]:
    """One stage-feedback QuestionnaireResponse: the stage code and the client's text."""
    answers: dict[str, Any] = {}
    for item in response.get("item") or []:
        for answer in (item.get("answer") or [])[:1]:
            answers[str(item.get("linkId"))] = answer
    stage = (answers.get("stage") or {}).get("valueCoding") or {}
    return {
        "response": f"QuestionnaireResponse/{response.get('id')}",
        "stage": stage.get("code"),
        "text": (answers.get("feedback") or {}).get("valueString"),
        "authored": response.get("authored"),
    }


def is_stage_feedback(response: Resource) -> bool:
    questionnaire = str(response.get("questionnaire") or "").split("|")[0]
    return questionnaire == STAGE_FEEDBACK


def peer_support(plan: Resource) -> dict[str, Any] | None:
    """The plan's peer-support offer and answer (the peer-support-offer extension), if any."""
    ext = _extension(plan, PEER_SUPPORT_OFFER)
    if ext is None:
        return None
    parts = {str(e.get("url")): e for e in ext.get("extension") or [] if isinstance(e, Mapping)}
    answer = (parts.get("answer") or {}).get("valueCoding") or {}
    return {
        "answer": answer.get("code"),
        "date": (parts.get("date") or {}).get("valueDateTime"),
        "offered_by": ref_of((parts.get("offeredBy") or {}).get("valueReference")),
    }


def participation_summary(
    plan: Resource,
    goals: Iterable[Resource],
    careteam: Resource | None,
    feedback: Iterable[Resource],
) -> dict[str, Any]:
    """What the client brought to their own process, as plain data (no FHIR shapes):

    - `client`: the plan's subject reference ("Patient/<id>") or None;
    - `goals`: per goal `{goal, text, own_words, lifecycle, achievement}` in the given order
      (`own_words`: see `own_words`; `achievement`: a goal-achievement code or None);
    - `own_goals`: the `goals` items written in the client's own words;
    - `chosen_actors`: `{member, display, role}` per current participant the client chose;
    - `feedback`: `{response, stage, text, authored}` per stage-feedback QuestionnaireResponse
      (others are ignored), oldest first;
    - `peer_support`: `{answer, date, offered_by}` or None (the plan's current offer).
    """
    client = ref_of(plan.get("subject"))
    goal_items = [goal_entry(g, client) for g in goals]
    responses = [feedback_entry(r) for r in feedback if is_stage_feedback(r)]
    responses.sort(key=lambda f: str(f["authored"] or ""))
    return {
        "client": client,
        "goals": goal_items,
        "own_goals": [g for g in goal_items if g["own_words"]],
        "chosen_actors": chosen_actors(careteam),
        "feedback": responses,
        "peer_support": peer_support(plan),
    }


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


def with_extension(resource: Resource, extension: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `resource` whose extension of that url is `extension` (replacing any)."""
    out = dict(resource)
    kept = [e for e in resource.get("extension") or [] if e.get("url") != extension.get("url")]
    out["extension"] = [*kept, dict(extension)]
    return out


# -- who takes part in the plan -------------------------------------------------------------------
def coordinator_of(careteam: Resource, on: str) -> str | None:
    """The CareTeam's coordinator (asiakasvastaava) at the start of `on` (a FHIR date or
    dateTime), as network.py reads coordinator periods."""
    found = coordinators_at(careteam, instant(on))
    return member(found[-1]) if found else None


def plan_standing(svc: Services, req: FhirRequest, plan: Resource) -> str | None:
    """The caller's standing on a plan it may see: PLAN_HOLDER (a full writer, as in
    consent/writes.py rule 5: it holds the plan, or is a custodian of every client of it),
    PLAN_NETWORK (an organisation named in CarePlan.contributor, itself or by one of its
    PractitionerRoles), or None. Decided with the gate's own consent context."""
    if req.caller is None:
        return PLAN_HOLDER  # no caller: in-process tools, auth off
    org = req.caller.organization
    with svc.repo.reader() as session:
        ctx = req.gate.context(session)
        if org in write_holders(plan, ctx):
            return PLAN_HOLDER
        clients = ctx.clients(plan)
        if clients and all(org in client_custodians(c) for c in clients):
            return PLAN_HOLDER
        for contributor in plan.get("contributor") or []:
            # A contributor counts as the organisation that would hold a plan it authored.
            if org in ctx.holders({"resourceType": "CarePlan", "author": contributor}):
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


# -- $peer-support ---------------------------------------------------------------------------------
def check_answer(coding: Mapping[str, Any]) -> dict[str, Any]:
    """The answer Coding with its Finnish display; 400 unless it is a peer-support-answer."""
    code = str(coding.get("code"))
    if coding.get("system") != PEER_SUPPORT_ANSWER or code not in PEER_SUPPORT_ANSWERS:
        raise invalid(f"answer must be a code of {PEER_SUPPORT_ANSWER}", common.where("answer"))
    return {"system": PEER_SUPPORT_ANSWER, "code": code, "display": PEER_SUPPORT_ANSWERS[code][0]}


def record_peer_support(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/{id}/$peer-support`: the offer and the client's answer, on the plan (the
    earlier offer is replaced; the plan's versions keep it), with a Provenance."""
    params = Params.of(req, allowed=("answer", "date", "offered-by"))
    answer = check_answer(params.coding("answer", required=True) or {})
    when = params.date("date") or common.now(req)
    offered = params.ref("offered-by", types=("PractitionerRole",))
    plan = common.read_visible(svc, req, "CarePlan", str(req.id))
    check_standing(svc, req, plan, PLAN_NETWORK, "record the peer-support offer")
    if plan.get("status") not in OPEN_PLAN:
        raise common.conflict("plan-open", "the plan is no longer open", "CarePlan.status")
    if offered is not None:
        _known_role(svc, req, offered)
    ext = peer_support_extension(answer, when, {"reference": offered} if offered else None)
    updated = with_extension(plan, ext)
    entries = [
        common.put(updated, common.version_of(plan)),
        common.provenance_entry(req, [common.next_version(plan)], UPDATE),
    ]
    results = common.apply(svc, req, entries, authority=PLAN_NETWORK)
    return common.ok(common.body_of(results[0]))


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


UPDATE = {"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "UPDATE"}

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
