"""The open network responsibilities among ServiceRequests and Tasks, each with its service
kind, organisation and period in days: what overlap_finder.py pairs into findings.

A responsibility is a ServiceRequest whose code carries a service-kind coding, with the Tasks
whose focus it is. It is open unless its ServiceRequest is closed (CLOSED_REQUEST) or every
one of its Tasks is closed (CLOSED_TASK); each open Task counts as one responsibility (a
ServiceRequest without Tasks counts once). Its organisation: the Task's owner, else the
ServiceRequest's first performer (a PractitionerRole counts as its organisation when
`organization_of` knows it). Its period (days): from the ServiceRequest's occurrence start,
else the Task's restriction or execution start, else when it was authored; to the Task's due
date (restriction.period.end), else the occurrence end; no end = still running.

Pure: no storage, no clock; it never decides who may see what (callers pass gated resources).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.consent.records import reference_key
from gateway.consent.vocabulary import CANONICAL

SERVICE_KIND = f"{CANONICAL}/CodeSystem/service-kind"
CLOSED_REQUEST = frozenset({"completed", "revoked", "entered-in-error"})
CLOSED_TASK = frozenset({"completed", "cancelled", "rejected", "failed", "entered-in-error"})
_DAY = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
Resource = Mapping[str, Any]


@dataclass(frozen=True)
class OpenResponsibility:
    """One open responsibility: its service code and Coding, organisation, period (None: open
    ended) and the ServiceRequest (and Task) references."""

    code: str
    coding: Mapping[str, str]
    organization: str
    start: date | None
    end: date | None
    items: tuple[str, ...]


def open_responsibilities(
    requests: list[Resource], tasks: list[Resource], organization_of: Mapping[str, str]
) -> list[OpenResponsibility]:
    """The open responsibilities, ServiceRequests in id order, each once; other resource
    types, and Tasks of no given ServiceRequest, are ignored."""
    by_focus = _tasks_by_focus(tasks)
    seen: set[str] = set()
    units: list[OpenResponsibility] = []
    found = [r for r in requests if isinstance(r, Mapping)]
    for sr in sorted(found, key=lambda r: str(r.get("id"))):
        key = f"ServiceRequest/{sr.get('id')}"
        if key in seen or not _is_open(sr):
            continue
        seen.add(key)
        units += _of_request(sr, key, by_focus.get(key, []), organization_of)
    return units


def _is_open(sr: Resource) -> bool:
    """A ServiceRequest of a service kind that is not closed."""
    if sr.get("resourceType") != "ServiceRequest" or _service(sr) is None:
        return False
    return sr.get("status") not in CLOSED_REQUEST


def _tasks_by_focus(tasks: list[Resource]) -> dict[str, list[Resource]]:
    by_focus: dict[str, list[Resource]] = {}
    for task in tasks:
        if isinstance(task, Mapping) and task.get("resourceType") == "Task":
            by_focus.setdefault(ref(task.get("focus")) or "", []).append(task)
    return by_focus


def _of_request(
    sr: Resource, key: str, tasks: list[Resource], organization_of: Mapping[str, str]
) -> list[OpenResponsibility]:
    """The open responsibilities of an open ServiceRequest: one per open Task, or itself
    when no Task fulfils it."""
    coding = _service(sr) or {}
    fulfilling = sorted(tasks, key=lambda t: str(t.get("id")))
    running: list[Resource | None] = [t for t in fulfilling if t.get("status") not in CLOSED_TASK]
    units = [
        _unit(sr, key, coding, t, organization_of) for t in (running if fulfilling else [None])
    ]
    return [u for u in units if u is not None]


def _unit(
    sr: Resource,
    key: str,
    coding: Mapping[str, str],
    task: Resource | None,
    organization_of: Mapping[str, str],
) -> OpenResponsibility | None:
    task = task or {}
    performers = sr.get("performer")
    first = performers[0] if isinstance(performers, list) and performers else None
    who = ref(task.get("owner")) or ref(first)
    if who is None:
        return None
    occurrence = _dict(sr.get("occurrencePeriod"))
    restriction = _dict(_dict(task.get("restriction")).get("period"))
    starts = (
        occurrence.get("start"),
        sr.get("occurrenceDateTime"),
        restriction.get("start"),
        _dict(task.get("executionPeriod")).get("start"),
        task.get("authoredOn"),
        sr.get("authoredOn"),
    )
    ends = (restriction.get("end"), occurrence.get("end"), sr.get("occurrenceDateTime"))
    items = (key, f"Task/{task['id']}") if task.get("id") else (key,)
    return OpenResponsibility(
        str(coding["code"]),
        coding,
        organization_of.get(who, who),
        next((d for d in (_day(v) for v in starts) if d), None),
        next((d for d in (_day(v, last=True) for v in ends) if d), None),
        items,
    )


def _service(sr: Resource) -> Mapping[str, str] | None:
    codings = _dict(sr.get("code")).get("coding")
    for c in codings if isinstance(codings, list) else []:
        if isinstance(c, Mapping) and c.get("system") == SERVICE_KIND and c.get("code"):
            return {k: str(c[k]) for k in ("system", "code", "display") if c.get(k)}
    return None


def _day(value: Any, last: bool = False) -> date | None:
    """The day of a FHIR date/dateTime (as written, local to its offset); a partial date is its
    first day, or with `last` its last day; None for anything else."""
    found = _DAY.match(value) if isinstance(value, str) else None
    if found is None:
        return None
    year, month, day = found.groups()
    try:
        m = int(month) if month else (12 if last else 1)
        d = int(day) if day else (calendar.monthrange(int(year), m)[1] if last else 1)
        return date(int(year), m, d)
    except ValueError:
        return None


def ref(value: Any) -> str | None:
    """A literal relative reference as "Type/id" (consent/records.py reads it), or None."""
    key = reference_key(value)
    return f"{key[0]}/{key[1]}" if key else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
