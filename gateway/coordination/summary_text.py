"""The narratives of the final summary (loppuyhteenveto): one XHTML list per section, Finnish
first and English beside it, built from what the caller sees of the plan.

Pure: no storage, no clock. The words for our codes come from the compiled CodeSystems
(`fhir_profiles.display`); only words that are no code display of ours live here. All text is
escaped; a section the reader may not see in full says only that it is withheld.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import fhir_profiles
from gateway.consent.vocabulary import CANONICAL
from gateway.coordination.participation_summary import (
    FEEDBACK_STAGE,
    PEER_SUPPORT_ANSWER,
    ref_of,
)
from gateway.coordination.summary_words import NOT_FULFILLED, TASK_WORDS, WORDS

Resource = Mapping[str, Any]

XHTML = "http://www.w3.org/1999/xhtml"
SOLUTION_SYSTEM = f"{CANONICAL}/CodeSystem/lasting-solution"
SECTION_SYSTEM = f"{CANONICAL}/CodeSystem/summary-section"


def code_words(system: str, code: str) -> tuple[str, str] | None:
    """(Finnish display, English) of one of our codes; None when the CodeSystem lacks it."""
    fi = fhir_profiles.display(system, code, "fi")
    en = fhir_profiles.display(system, code, "en")
    return (fi, en) if fi and en else None


def word(code: Any, words: Mapping[str, tuple[str, str]] = WORDS) -> str:
    """`fi (en)` for a status code; the code itself when it has no words here."""
    fi, en = words.get(str(code)) or WORDS.get(str(code), (str(code), str(code)))
    return f"{fi} ({en})"


def _escape(text: str) -> str:
    return html.escape(text, quote=False)  # element content: quotes need no escaping


def narrative(fi: str, en: str, lines: Sequence[str]) -> dict[str, str]:
    """Generated XHTML narrative: a heading and one list item per line, all text escaped."""
    items = "".join(f"<li>{_escape(line)}</li>" for line in lines)
    body = f"<ul>{items}</ul>" if lines else "<p>Ei tietoja (nothing recorded).</p>"
    head = f"<p><b>{_escape(fi)}</b> ({_escape(en)})</p>"
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{head}{body}</div>'}


def withheld(fi: str, en: str) -> dict[str, str]:
    """The narrative of a section whose entries the reader may not all see: no content."""
    line = "Osion tiedot eivät ole näytettävissä (this section is not shown in full to you)."
    return narrative(fi, en, [line])


def _display(concept: Any) -> str:
    if not isinstance(concept, Mapping):
        return ""
    codings = [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    display = next((c.get("display") for c in codings if c.get("display")), None)
    return str(display or concept.get("text") or "")  # our displays are the Finnish names


def goal_lines(goals: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per goal (participation_summary's `goals`): its text, whose words, how far it got."""
    out = []
    for g in goals:
        words = " (asiakkaan omin sanoin / in the client's own words)" if g["own_words"] else ""
        reached = f"{word(g['achievement'])}, " if g["achievement"] else ""
        out.append(f"“{g['text']}”{words}: {reached}tila {word(g['lifecycle'])}")
    return out


def _period(period: Any) -> str:
    period = period if isinstance(period, Mapping) else {}
    start, end = str(period.get("start") or "")[:10], str(period.get("end") or "")[:10]
    return f"{start}\u2013{end}" if start or end else ""


def service_lines(requests: Sequence[Resource]) -> list[str]:
    """Per ServiceRequest: the service, who gave it, when, and its status."""
    out = []
    for r in requests:
        performers = ", ".join(str(p.get("display") or ref_of(p)) for p in r.get("performer") or [])
        when = _period(r.get("occurrencePeriod"))
        parts = [p for p in (performers, when) if p]
        out.append(f"{_display(r.get('code'))}: {', '.join(parts)}; {word(r.get('status'))}")
    return out


def fulfilment(status: Any) -> str:
    """Whether a responsibility was fulfilled: toteutui / ei toteutunut / kesken."""
    if status == "completed":
        return "toteutui (fulfilled)"
    if status in NOT_FULFILLED:
        return "ei toteutunut (not fulfilled)"
    return "kesken (still open)"


def _responsibility_line(task: Resource) -> str:
    owner = task.get("owner") or {}
    due = ((task.get("restriction") or {}).get("period") or {}).get("end")
    what = task.get("description") or _display(task.get("code"))
    by = owner.get("display") or ref_of(owner) or ""
    due_text = f", määräaika (due) {str(due)[:10]}" if due else ""
    status = f"{fulfilment(task.get('status'))}, tila {word(task.get('status'), TASK_WORDS)}"
    return f"{what}: {by}{due_text}; {status}"


def responsibility_lines(tasks: Sequence[Resource]) -> list[str]:
    """Per responsibility Task: what, whose, due when, fulfilled or not, and its status."""
    return [_responsibility_line(t) for t in tasks]


def solution_lines(code: str, note: str | None) -> list[str]:
    fi, en = code_words(SOLUTION_SYSTEM, code) or (code, code)
    return [f"{fi} ({en})", *([note] if note else [])]


def _feedback_line(feedback: Mapping[str, Any]) -> str:
    stage = str(feedback["stage"])
    fi, en = code_words(FEEDBACK_STAGE, stage) or (stage, stage)
    when = str(feedback["authored"] or "")[:10]
    return f"{fi} ({en}) {when}: “{feedback['text'] or ''}”".replace("  ", " ")


def _peer_support_line(offer: Mapping[str, Any]) -> str:
    fi, en = code_words(PEER_SUPPORT_ANSWER, str(offer["answer"])) or ("?", "?")
    when = str(offer["date"] or "")[:10]
    return f"Vertaistuki ja kokemusasiantuntija (peer support): {fi} ({en}) {when}"


def feedback_lines(summary: Mapping[str, Any]) -> list[str]:
    """The client's stage feedback, oldest first, then the peer-support offer and answer."""
    out = [_feedback_line(f) for f in summary["feedback"]]
    if summary["peer_support"]:
        out.append(_peer_support_line(summary["peer_support"]))
    return out
