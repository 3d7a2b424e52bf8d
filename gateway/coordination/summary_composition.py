"""The final-summary Composition (profile final-summary, seed 002 loppuyhteenveto): its five
sections built from what the caller sees of the plan, and the plan closed with its lasting
solution.

Pure: no storage, no clock, no ids of its own (the caller passes them); it is given only what
the caller may see, so no section is written from anything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.consent.vocabulary import CANONICAL
from gateway.coordination.participation_summary import (
    participation_summary,
    ref_of,
    with_extension,
)
from gateway.coordination.summary_text import (
    SECTION_SYSTEM,
    code_words,
    feedback_lines,
    goal_lines,
    narrative,
    responsibility_lines,
    service_lines,
    solution_lines,
)

Resource = Mapping[str, Any]

LOINC = "http://loinc.org"
SUMMARY_TYPE = {"system": LOINC, "code": "34133-9", "display": "Summary of episode note"}
PROFILE = f"{CANONICAL}/StructureDefinition/final-summary"
LASTING_SOLUTION = f"{CANONICAL}/StructureDefinition/lasting-solution"
TITLE = "Loppuyhteenveto / Final summary"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"


@dataclass(frozen=True)
class PlanRecord:
    """What the summary is built from: the plan and what it names, as the caller sees them."""

    plan: Resource
    goals: Sequence[Resource]
    requests: Sequence[Resource]
    tasks: Sequence[Resource]
    careteam: Resource | None
    feedback: Sequence[Resource]


def _refs(resources: Iterable[Resource]) -> list[dict[str, str]]:
    return [{"reference": f"{r['resourceType']}/{r['id']}"} for r in resources]


def empty_reason(reason: str) -> dict[str, Any]:
    return {"coding": [{"system": EMPTY_REASON, "code": reason}]}


def section(
    code: str, lines: Sequence[str], entries: Sequence[dict[str, str]], none: bool = False
) -> dict[str, Any]:
    """One summary section: its code, title, generated narrative and entry references;
    `none`: nothing of the kind was recorded (emptyReason nilknown)."""
    fi, en = code_words(SECTION_SYSTEM, code) or (code, code)
    out: dict[str, Any] = {
        "title": f"{fi} / {en}",
        "code": {"coding": [{"system": SECTION_SYSTEM, "code": code, "display": fi}]},
        "text": narrative(fi, en, lines),
    }
    if entries:
        out["entry"] = list(entries)
    if none:
        out["emptyReason"] = empty_reason("nilknown")
    return out


def sections(
    record: PlanRecord, solution: Mapping[str, str], note: str | None
) -> list[dict[str, Any]]:
    """The five sections, in summary-section order, from what the caller sees of the plan."""
    summary = participation_summary(record.plan, record.goals, record.careteam, record.feedback)
    shown = {f["response"] for f in summary["feedback"]}
    feedback = [r for r in record.feedback if f"QuestionnaireResponse/{r['id']}" in shown]
    lines = feedback_lines(summary)
    return [
        section("tavoitteet", goal_lines(summary["goals"]), _refs(record.goals)),
        section("palvelut", service_lines(record.requests), _refs(record.requests)),
        section("vastuut", responsibility_lines(record.tasks), _refs(record.tasks)),
        # The plan carries the lasting solution too (closed_plan).
        section("ratkaisu", solution_lines(solution["code"], note), _refs([record.plan])),
        section("asiakkaan-palaute", lines, _refs(feedback), none=not lines),
    ]


def composition(
    record: PlanRecord,
    solution: Mapping[str, str],
    note: str | None,
    ids: tuple[str, str],
    when: str,
    author: str,
    custodian: str,
) -> dict[str, Any]:
    """The final-summary Composition (`ids`: its id and version-independent identifier)."""
    plan = record.plan
    event: dict[str, Any] = {"detail": [{"reference": f"CarePlan/{plan.get('id')}"}]}
    if plan.get("period"):
        event["period"] = plan["period"]
    return {
        "resourceType": "Composition",
        "id": ids[0],
        "meta": {"profile": [PROFILE]},
        "extension": [{"url": LASTING_SOLUTION, "valueCoding": dict(solution)}],
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{ids[1]}"},
        "status": "final",
        "type": {"coding": [SUMMARY_TYPE], "text": "Loppuyhteenveto (final summary)"},
        "subject": {"reference": ref_of(plan.get("subject")) or ""},
        "date": when,
        "author": [{"reference": author}],
        "title": TITLE,
        "custodian": {"reference": custodian},
        "event": [event],
        "section": sections(record, solution, note),
    }


def closed_plan(plan: Resource, solution: Mapping[str, str], when: str) -> dict[str, Any]:
    """The plan completed with its lasting solution (its period ended then, unless it was)."""
    out = with_extension(
        {k: v for k, v in plan.items() if k != "meta"},
        {"url": LASTING_SOLUTION, "valueCoding": dict(solution)},
    )
    out["status"] = "completed"
    period = dict(plan.get("period") or {})
    period.setdefault("end", when[:10])
    out["period"] = period
    return out
