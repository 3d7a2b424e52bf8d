"""The searchset Bundle: the ONE place where search result keys become disclosed entries.

`disclose_page` turns match keys and include keys into Bundle entries with stored bytes embedded
as `orjson.Fragment`. The consent disclosure gate (a later issue) goes into `disclose_page`, so it
filters matches, includes and the total together; no other code may turn keys into entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.fhir_api import elements as reduce
from gateway.storage.base import Session, StoredVersion

Key = tuple[str, str]


@dataclass
class Page:
    matches: list[Key]
    includes: list[Key]
    total: int | None
    links: list[dict[str, str]] = field(default_factory=list)
    outcome: dict[str, Any] | None = None  # issues reported in lenient mode


def _resource(sv: StoredVersion, elements: list[str], summary: str | None) -> Any:
    if elements:
        return reduce.subset(sv.body, elements)
    if summary:
        out = reduce.summary(sv.body, summary)
        return orjson.Fragment(out) if isinstance(out, bytes) else out
    return orjson.Fragment(sv.body)


def disclose_page(
    session: Session,
    base: str,
    page: Page,
    elements: list[str] | None = None,
    summary: str | None = None,
) -> dict[str, Any]:
    """The searchset Bundle for one page (consent gate: filter matches/includes/total here)."""
    entries: list[dict[str, Any]] = []
    if summary == "count":  # the total only
        page = Page([], [], page.total, page.links, page.outcome)
    for sv in session.current_many(page.matches):
        entries.append(_entry(base, sv, _resource(sv, elements or [], summary), "match"))
    for sv in session.current_many(page.includes):
        entries.append(_entry(base, sv, orjson.Fragment(sv.body), "include"))
    if page.outcome is not None:
        entries.append({"resource": page.outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = page.links
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(base: str, sv: StoredVersion, resource: Any, mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{sv.resource_type}/{sv.id}",
        "resource": resource,
        "search": {"mode": mode},
    }
