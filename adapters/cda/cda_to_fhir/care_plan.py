"""The sections that are the CarePlan's own fields: needs (description), follow-up (status,
created, review date, lasting solution) and participation (peer-support offer, notes).
"""

from __future__ import annotations

from typing import Any

from adapters.cda import details, nodes
from adapters.cda.cda_to_fhir import parties
from adapters.cda.cda_to_fhir.common import statements, words
from adapters.cda.cda_to_fhir.context import Doc, ref

Element = nodes.Element


def needs(doc: Doc, section: Element, plan: dict[str, Any], where: str) -> None:
    lines = [w for _, st in statements(section) if (w := words(doc, st))]
    if not lines and (narrative := nodes.text(nodes.first(section, "text"))):
        lines = [narrative.strip()]
    if lines:
        plan["description"] = "\n".join(filter(None, [plan.get("description"), *lines]))


def follow_up(doc: Doc, section: Element, plan: dict[str, Any], where: str) -> None:
    for _, st in statements(section):
        details.read(doc.s, st, "follow-up", plan)


def participation(doc: Doc, section: Element, plan: dict[str, Any], where: str) -> None:
    peer, comment = doc.s.entry_template("peer-support"), doc.s.entry_template("comment")
    for i, st in statements(section):
        templates = nodes.template_ids(st)
        if peer in templates:
            details.read(doc.s, st, "peer-support", plan)
            offer = _peer_support_offer(plan)
            if offer is None:  # no detail observations (the client's answer): nothing to map
                doc.unrecognised.append(f"entry {where}/entry[{i}]")
                continue
            who = parties.assigned(doc, nodes.first(st, "performer/assignedEntity"), f"{where}/{i}")
            if who:
                offer.setdefault("extension", []).append(
                    {"url": "offeredBy", "valueReference": ref(who)}
                )
        elif comment in templates and (text := nodes.text(nodes.first(st, "text"))):
            plan.setdefault("note", []).append({"text": text})
        else:
            doc.unrecognised.append(f"entry {where}/entry[{i}]")


def _peer_support_offer(plan: dict[str, Any]) -> dict[str, Any] | None:
    """The CarePlan's peer-support offer extension, if the entry's details made one."""
    return next(
        (
            e
            for e in plan.get("extension") or []
            if isinstance(e, dict) and str(e.get("url", "")).endswith("/peer-support-offer")
        ),
        None,
    )
