"""Overlapping services (päällekkäisyydet): the same kind of service from several organisations
at the same time, or the same responsibility given twice to one organisation.

Pure: `overlaps()` reads no storage and changes nothing; `$overlaps` (overlaps.py) and the
client-plan view call it on what the caller may see, so it never finds what the gate hid. What
counts as an open responsibility, and its period: open_responsibilities.py.

Findings, one per pair of open responsibilities of the same service kind:
- same-service-several-organisations: different organisations, periods overlapping (inclusive);
  `period` is the time both run;
- duplicate-responsibility: the same organisation, whatever the periods; `period` is the time
  both run, or, when they do not meet, from the first start to the last end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.coordination.open_responsibilities import (
    SERVICE_KIND,
    OpenResponsibility,
    open_responsibilities,
)

__all__ = ["DUPLICATE", "SERVICE_KIND", "SEVERAL_ORGANISATIONS", "Overlap", "overlaps"]

SEVERAL_ORGANISATIONS = "same-service-several-organisations"
DUPLICATE = "duplicate-responsibility"
Resource = Mapping[str, Any]


@dataclass(frozen=True)
class Overlap:
    """One finding: `kind` (SEVERAL_ORGANISATIONS or DUPLICATE), the service-kind Coding, the
    period as ISO dates (`end` None = still running), the ServiceRequest and Task references and
    the organisations ("Organization/x") involved."""

    kind: str
    service: Mapping[str, str]
    start: str | None
    end: str | None
    items: tuple[str, ...]
    organizations: tuple[str, ...]


def overlaps(
    service_requests: Iterable[Resource],
    tasks: Iterable[Resource] = (),
    organization_of: Mapping[str, str] | None = None,
) -> list[Overlap]:
    """The overlaps among these ServiceRequests and the Tasks that fulfil them (Task.focus),
    sorted by service code, kind and items. `organization_of` maps "PractitionerRole/x" to
    "Organization/y" for owners and performers that are roles (unknown roles count as
    themselves). Resources of other types, and Tasks of no given ServiceRequest, are ignored."""
    units = open_responsibilities(list(service_requests), list(tasks), organization_of or {})
    found: list[Overlap] = []
    for i, a in enumerate(units):
        for b in units[i + 1 :]:
            finding = _compare(a, b) if a.code == b.code else None
            if finding is not None:
                found.append(finding)
    return sorted(found, key=lambda o: (o.service.get("code", ""), o.kind, o.items))


def _compare(a: OpenResponsibility, b: OpenResponsibility) -> Overlap | None:
    meet = _meets(a, b)
    if a.organization == b.organization:
        kind = DUPLICATE
        start, end = (_latest(a.start, b.start), _earliest(a.end, b.end)) if meet else _span(a, b)
    elif meet:
        kind, start, end = SEVERAL_ORGANISATIONS, _latest(a.start, b.start), _earliest(a.end, b.end)
    else:
        return None
    items = tuple(dict.fromkeys((*a.items, *b.items)))
    orgs = tuple(dict.fromkeys((a.organization, b.organization)))
    return Overlap(kind, a.coding, _iso(start), _iso(end), items, orgs)


def _meets(a: OpenResponsibility, b: OpenResponsibility) -> bool:
    return (a.start is None or b.end is None or a.start <= b.end) and (
        b.start is None or a.end is None or b.start <= a.end
    )


def _span(a: OpenResponsibility, b: OpenResponsibility) -> tuple[date | None, date | None]:
    start = None if a.start is None or b.start is None else min(a.start, b.start)
    end = None if a.end is None or b.end is None else max(a.end, b.end)
    return start, end


def _latest(x: date | None, y: date | None) -> date | None:
    return y if x is None else x if y is None else max(x, y)


def _earliest(x: date | None, y: date | None) -> date | None:
    return y if x is None else x if y is None else min(x, y)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
