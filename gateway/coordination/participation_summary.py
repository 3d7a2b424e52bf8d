"""What the client brought to their own process (seed 000 "the house of client participation",
seed 001): the goal in their own words, the actors they chose, their stage feedback and the
peer-support offer with their answer, read from resources as plain data.

Pure and shared (the client-readable plan, the final summary, `$peer-support`): it reads no
storage and decides no visibility; callers pass only resources that went through the gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.consent.vocabulary import CANONICAL

Resource = Mapping[str, Any]

CLIENT_OWN_WORDS = f"{CANONICAL}/StructureDefinition/client-own-words"
CHOSEN_BY_CLIENT = f"{CANONICAL}/StructureDefinition/chosen-by-client"
PEER_SUPPORT_OFFER = f"{CANONICAL}/StructureDefinition/peer-support-offer"
PEER_SUPPORT_ANSWER = f"{CANONICAL}/CodeSystem/peer-support-answer"
FEEDBACK_STAGE = f"{CANONICAL}/CodeSystem/feedback-stage"
STAGE_FEEDBACK = f"{CANONICAL}/Questionnaire/stage-feedback"
CLIENT_FEEDBACK_PROFILE = f"{CANONICAL}/StructureDefinition/client-feedback"


def ref_of(value: Any) -> str | None:
    """The literal reference text of a Reference, or None."""
    ref = value.get("reference") if isinstance(value, Mapping) else None
    return ref if isinstance(ref, str) else None


def extension_of(resource: Resource, url: str) -> Mapping[str, Any] | None:
    """The resource's first extension of that url, or None."""
    for ext in resource.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == url:
            return ext
    return None


def with_extension(resource: Resource, extension: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `resource` whose extension of that url is `extension` (replacing any)."""
    out = dict(resource)
    kept = [e for e in resource.get("extension") or [] if e.get("url") != extension.get("url")]
    out["extension"] = [*kept, dict(extension)]
    return out


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
    ext = extension_of(goal, CLIENT_OWN_WORDS)
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


def _chosen_now(participant: Resource) -> bool:
    ext = extension_of(participant, CHOSEN_BY_CLIENT)
    chosen = ext is not None and ext.get("valueBoolean") is True
    return chosen and not (participant.get("period") or {}).get("end")


def chosen_actors(careteam: Resource | None) -> list[dict[str, Any]]:
    """The CareTeam participants the client chose (chosen-by-client true), current ones only."""
    out: list[dict[str, Any]] = []
    for p in filter(_chosen_now, (careteam or {}).get("participant") or []):
        member = p.get("member") or {}
        role = _code((p.get("role") or [None])[0])
        out.append({"member": ref_of(member), "display": member.get("display"), "role": role})
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
    ext = extension_of(plan, PEER_SUPPORT_OFFER)
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
