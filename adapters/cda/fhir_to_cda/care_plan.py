"""The CarePlan's own fields -> the needs, follow-up and participation sections."""

from __future__ import annotations

from typing import Any

from adapters.cda import details, nodes
from adapters.cda.fhir_to_cda.common import entry_code, head, new_entry, performer
from adapters.cda.fhir_to_cda.parties import Index
from adapters.cda.mapping import Structure
from adapters.cda.parse import child

Element = nodes.Element


def needs(s: Structure, idx: Index, section: Element, plan: dict[str, Any]) -> list[str]:
    lines = [line for line in (plan.get("description") or "").split("\n") if line.strip()]
    for line in lines:
        act = head(
            s, new_entry(section), "act", "need", {"classCode": "ACT", "moodCode": "EVN"}, None
        )
        entry_code(s, act, "need")
        child(act, "text", text=line)
    return lines


def follow_up(s: Structure, idx: Index, section: Element, plan: dict[str, Any]) -> list[str]:
    act = head(
        s, new_entry(section), "act", "follow-up", {"classCode": "ACT", "moodCode": "EVN"}, None
    )
    entry_code(s, act, "follow-up")
    details.write(s, act, "follow-up", plan)
    review = next(
        (
            e.get("valueDate")
            for e in plan.get("extension", ())
            if e["url"].endswith("/review-date")
        ),
        None,
    )
    return [f"Palaamme tähän (review date): {review}"] if review else []


def participation(s: Structure, idx: Index, section: Element, plan: dict[str, Any]) -> list[str]:
    lines = []
    offer = next(
        (e for e in plan.get("extension", ()) if e["url"].endswith("/peer-support-offer")), None
    )
    if offer:
        act = head(
            s,
            new_entry(section),
            "act",
            "peer-support",
            {"classCode": "ACT", "moodCode": "EVN"},
            None,
        )
        entry_code(s, act, "peer-support")
        by = next(
            (
                e.get("valueReference")
                for e in offer.get("extension", ())
                if e["url"] == "offeredBy"
            ),
            None,
        )
        performer(s, idx, act, by)
        details.write(s, act, "peer-support", plan)
        lines.append("Vertaistukea tarjottu (peer support offered)")
    for note in plan.get("note", ()):
        if note.get("text"):
            act = head(
                s,
                new_entry(section),
                "act",
                "comment",
                {"classCode": "ACT", "moodCode": "EVN"},
                None,
            )
            entry_code(s, act, "comment")
            child(act, "text", text=note["text"])
            lines.append(note["text"])
    return lines
