"""The searchset Bundle: the ONE place where search result keys become disclosed entries.

`disclose_page` hands the stored versions of a page's match and include keys to the request's
disclosure gate (`Gate.disclose`) and turns only what it shows into Bundle entries, with the
shown bytes (stored, or the masked copy) embedded as `orjson.Fragment`; hidden ones are left out
silently (the gate records their denials, and those of the `withheld` snapshot entries the
search dropped for this page), and the page's one query AuditEvent names every client it
discloses. No other code
may turn keys into entries, and nothing here may serve a body the gate did not hand back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from gateway.fhir_api import elements as reduce

if TYPE_CHECKING:
    from gateway.consent.enforcement import Gate, Shown
    from gateway.storage.base import Session

Key = tuple[str, str]
_CHUNK = 500  # keys per storage read of withheld versions


@dataclass
class Page:
    matches: list[Key]
    includes: list[Key]
    total: int | None
    links: list[dict[str, str]] = field(default_factory=list)
    outcome: dict[str, Any] | None = None  # issues reported in lenient mode
    # Snapshot entries the gate hid since the snapshot was made: never shown, only recorded.
    withheld: list[Key] = field(default_factory=list)
    # What the page answers, for its query AuditEvent: `CarePlan` and the request parameters.
    path: str = ""
    params: list[tuple[str, str]] = field(default_factory=list)


def _resource(body: bytes, elements: list[str], summary: str | None) -> Any:
    if elements:
        return reduce.subset(body, elements)
    if summary:
        out = reduce.summary(body, summary)
        return orjson.Fragment(out) if isinstance(out, bytes) else out
    return orjson.Fragment(body)


def disclose_page(
    session: Session,
    gate: Gate,
    base: str,
    page: Page,
    elements: list[str] | None = None,
    summary: str | None = None,
) -> dict[str, Any]:
    """The searchset Bundle for one page, as far as `gate` lets the caller see it. A match the
    gate hides at this point also drops the total (it no longer counts what is shown)."""
    entries: list[dict[str, Any]] = []
    shown: list[Shown] = []
    total = page.total
    if summary != "count":  # `count`: the total only
        versions = session.current_many(page.matches)
        for s in gate.disclose(session, versions):
            if s is None:
                total = None
                continue
            shown.append(s)
            entries.append(_entry(base, s, _resource(s.body, elements or [], summary), "match"))
        for s in gate.disclose(session, session.current_many(page.includes)):
            if s is not None:
                shown.append(s)
                entries.append(_entry(base, s, orjson.Fragment(s.body), "include"))
    for start in range(0, len(page.withheld), _CHUNK):  # the gate records each one's denial
        gate.disclose(session, session.current_many(page.withheld[start : start + _CHUNK]))
    gate.note_query(page.path, page.params, shown)
    if page.outcome is not None:
        entries.append({"resource": page.outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = page.links
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(base: str, shown: Shown, resource: Any, mode: str) -> dict[str, Any]:
    sv = shown.version
    return {
        "fullUrl": f"{base}/{sv.resource_type}/{sv.id}",
        "resource": resource,
        "search": {"mode": mode},
    }
