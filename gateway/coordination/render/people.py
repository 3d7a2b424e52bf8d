"""Who is who in the client's network, in words: professionals, organisations, how to reach
them, and the coordinator (the CareTeam participant with the role asiakasvastaava).

Reads only the gathered `PlanResources`; a reference to something not gathered (hidden or
missing) falls back to the reference's own display text, never to its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from gateway.coordination.render import texts
from gateway.coordination.render.codes import concept_display, has_code
from gateway.coordination.render.model import Contact, Coordinator, Person
from gateway.coordination.render.resources import CODE_SYSTEM, PlanResources, day, human_name

COORDINATOR_ROLES = f"{CODE_SYSTEM}coordinator-role"
PROFESSIONAL_ROLES = f"{CODE_SYSTEM}professional-role"
COORDINATOR, CLIENT = "asiakasvastaava", "asiakas"


def organization_name(res: PlanResources, ref: Any) -> str:
    org = res.get(ref)
    if org and isinstance(org.get("name"), str):
        return str(org["name"])
    return _display(ref)


def _display(ref: Any) -> str:
    return str(ref.get("display") or "") if isinstance(ref, Mapping) else ""


def contacts(lang: str, *holders: Mapping[str, Any] | None) -> tuple[Contact, ...]:
    """The telecom of each holder in turn (PractitionerRole first, then its Organization)."""
    out: list[Contact] = []
    for holder in holders:
        for point in (holder or {}).get("telecom") or []:
            if isinstance(point, Mapping) and isinstance(point.get("value"), str):
                out.append(_contact(lang, str(point.get("system") or ""), point["value"]))
    return tuple(dict.fromkeys(out))


def _contact(lang: str, system: str, value: str) -> Contact:
    if system == "phone":
        return Contact(texts.text(lang, "phone"), value, "tel:" + "".join(value.split()))
    if system == "email":
        return Contact(texts.text(lang, "email"), value, "mailto:" + value)
    if system == "url" and value.startswith("https://"):
        return Contact(texts.text(lang, "url"), value, value)
    return Contact(texts.text(lang, "other"), value)


def role_words(role: Mapping[str, Any], lang: str) -> str:
    for concept in role.get("code") or []:
        words = concept_display(concept, lang, PROFESSIONAL_ROLES) or concept_display(concept, lang)
        if words:
            return words
    return ""


def person(res: PlanResources, ref: Any, lang: str) -> Person:
    """A PractitionerRole, Practitioner or Organization reference as a Person."""
    target = res.get(ref)
    if target is None:
        return Person(name=_display(ref))
    kind = target.get("resourceType")
    if kind == "Organization":
        return Person(name=str(target.get("name") or ""), contacts=contacts(lang, target))
    if kind == "Practitioner":
        return Person(name=human_name(target), contacts=contacts(lang, target))
    org = res.get(target.get("organization"))
    return Person(
        name=human_name(res.get(target.get("practitioner"))) or _display(ref),
        role=role_words(target, lang),
        organization=organization_name(res, target.get("organization")),
        contacts=contacts(lang, target, org),
    )


def person_line(p: Person) -> str:
    """ "Satu Malli, työkykykoordinaattori" (the organisation is the node's title)."""
    role = p.role[:1].lower() + p.role[1:] if p.role else ""
    return ", ".join(x for x in (p.name, role) if x)


def is_current(participant: Mapping[str, Any], today: date) -> bool:
    period = participant.get("period") or {}
    end = day(period.get("end"))
    return end is None or end >= today


def participants(res: PlanResources, today: date) -> list[Mapping[str, Any]]:
    return [
        p
        for team in res.care_teams
        for p in team.get("participant") or []
        if isinstance(p, Mapping) and is_current(p, today)
    ]


def is_coordinator(participant: Mapping[str, Any]) -> bool:
    return any(has_code(r, COORDINATOR_ROLES, COORDINATOR) for r in participant.get("role") or [])


def is_client(participant: Mapping[str, Any]) -> bool:
    member = (participant.get("member") or {}).get("reference") or ""
    return str(member).startswith("Patient/") or any(
        has_code(r, COORDINATOR_ROLES, CLIENT) for r in participant.get("role") or []
    )


def coordinator(res: PlanResources, lang: str, today: date) -> Coordinator | None:
    """The current coordinator: the latest-started asiakasvastaava participant still in office."""
    current = [p for p in participants(res, today) if is_coordinator(p)]
    if not current:
        return None
    chosen = max(current, key=lambda p: str((p.get("period") or {}).get("start") or ""))
    since = day((chosen.get("period") or {}).get("start"))
    return Coordinator(person(res, chosen.get("member"), lang), texts.format_date(lang, since))
