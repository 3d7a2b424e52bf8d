"""Overlapping services (päällekkäisyydet): the same kind of service from several organisations
at the same time, or the same responsibility given twice to one organisation.

`overlaps()` is pure (the operations and the client-plan view call it on what the caller may
see); `$overlaps` answers it as Parameters. It never reads anything around the gate and never
changes anything.

A responsibility is a ServiceRequest whose code carries a service-kind coding, with the Tasks
whose focus it is. It is open unless its ServiceRequest is closed (CLOSED_REQUEST) or every
one of its Tasks is closed (CLOSED_TASK); each open Task counts as one responsibility (a
ServiceRequest without Tasks counts once). Its organisation: the Task's owner, else the
ServiceRequest's first performer (a PractitionerRole counts as its organisation when
`organization_of` knows it). Its period (days): from the ServiceRequest's occurrence start,
else the Task's restriction or execution start, else when it was authored; to the Task's due
date (restriction.period.end), else the occurrence end; no end = still running.

Findings, one per pair of open responsibilities of the same service kind:
- same-service-several-organisations: different organisations, periods overlapping (inclusive);
  `period` is the time both run;
- duplicate-responsibility: the same organisation, whatever the periods; `period` is the time
  both run, or, when they do not meet, from the first start to the last end.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.consent.records import reference_key
from gateway.consent.vocabulary import CANONICAL
from gateway.coordination import common
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

SERVICE_KIND = f"{CANONICAL}/CodeSystem/service-kind"
SEVERAL_ORGANISATIONS = "same-service-several-organisations"
DUPLICATE = "duplicate-responsibility"
CLOSED_REQUEST = frozenset({"completed", "revoked", "entered-in-error"})
CLOSED_TASK = frozenset({"completed", "cancelled", "rejected", "failed", "entered-in-error"})
_DAY = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
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


@dataclass(frozen=True)
class _Open:
    """One open responsibility."""

    code: str
    coding: Mapping[str, str]
    organization: str
    start: date | None
    end: date | None
    items: tuple[str, ...]


def overlaps(
    service_requests: Iterable[Resource],
    tasks: Iterable[Resource] = (),
    organization_of: Mapping[str, str] | None = None,
) -> list[Overlap]:
    """The overlaps among these ServiceRequests and the Tasks that fulfil them (Task.focus),
    sorted by service code, kind and items. `organization_of` maps "PractitionerRole/x" to
    "Organization/y" for owners and performers that are roles (unknown roles count as
    themselves). Resources of other types, and Tasks of no given ServiceRequest, are ignored."""
    units = _open_units(list(service_requests), list(tasks), organization_of or {})
    found: list[Overlap] = []
    for i, a in enumerate(units):
        for b in units[i + 1 :]:
            if a.code == b.code:
                finding = _compare(a, b)
                if finding is not None:
                    found.append(finding)
    return sorted(found, key=lambda o: (o.service.get("code", ""), o.kind, o.items))


def _compare(a: _Open, b: _Open) -> Overlap | None:
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


def _open_units(
    requests: list[Resource], tasks: list[Resource], organization_of: Mapping[str, str]
) -> list[_Open]:
    by_focus: dict[str, list[Resource]] = {}
    for task in tasks:
        if isinstance(task, Mapping) and task.get("resourceType") == "Task":
            by_focus.setdefault(_ref(task.get("focus")) or "", []).append(task)
    seen: set[str] = set()
    units: list[_Open] = []
    requests = [r for r in requests if isinstance(r, Mapping)]
    for sr in sorted(requests, key=lambda r: str(r.get("id"))):
        if sr.get("resourceType") != "ServiceRequest":
            continue
        key = f"ServiceRequest/{sr.get('id')}"
        coding = _service(sr)
        if key in seen or coding is None or sr.get("status") in CLOSED_REQUEST:
            continue
        seen.add(key)
        fulfilling = sorted(by_focus.get(key, []), key=lambda t: str(t.get("id")))
        running: list[Resource | None] = [
            t for t in fulfilling if t.get("status") not in CLOSED_TASK
        ]
        for task in running if fulfilling else [None]:
            unit = _unit(sr, key, coding, task, organization_of)
            if unit is not None:
                units.append(unit)
    return units


def _unit(
    sr: Resource,
    key: str,
    coding: Mapping[str, str],
    task: Resource | None,
    organization_of: Mapping[str, str],
) -> _Open | None:
    task = task or {}
    performers = sr.get("performer")
    first = performers[0] if isinstance(performers, list) and performers else None
    who = _ref(task.get("owner")) or _ref(first)
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
    return _Open(
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


def _meets(a: _Open, b: _Open) -> bool:
    return (a.start is None or b.end is None or a.start <= b.end) and (
        b.start is None or a.end is None or b.start <= a.end
    )


def _span(a: _Open, b: _Open) -> tuple[date | None, date | None]:
    start = None if a.start is None or b.start is None else min(a.start, b.start)
    end = None if a.end is None or b.end is None else max(a.end, b.end)
    return start, end


def _latest(x: date | None, y: date | None) -> date | None:
    return y if x is None else x if y is None else max(x, y)


def _earliest(x: date | None, y: date | None) -> date | None:
    return y if x is None else x if y is None else min(x, y)


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


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _ref(value: Any) -> str | None:
    key = reference_key(value)
    return f"{key[0]}/{key[1]}" if key else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# -- the operations -----------------------------------------------------------------------------
def overlaps_operation(svc: Services, req: FhirRequest) -> FhirResponse:
    """`$overlaps` on a CarePlan instance, or on the type with `patient`."""
    return (client_overlaps if req.id is None else plan_overlaps)(svc, req)


def plan_overlaps(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/{id}/$overlaps`: the overlaps among the plan's responsibilities the caller may
    see (404 when the plan is hidden)."""
    common.Params.of(req, allowed=())
    plan = common.read_visible(svc, req, "CarePlan", str(req.id))
    return common.ok(answer(find(svc, req, [plan])))


def client_overlaps(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/$overlaps?patient=Patient/x`: across every plan of the client the caller may
    see."""
    patient = common.Params.of(req, allowed=("patient",)).ref(
        "patient", required=True, types=("Patient",)
    )
    plans = common.search_visible(svc, req, "CarePlan", [("subject", str(patient))])
    return common.ok(answer(find(svc, req, plans)))


def find(svc: Services, req: FhirRequest, plans: list[Resource]) -> list[Overlap]:
    """`overlaps()` over the ServiceRequests based on `plans` and the Tasks fulfilling them,
    each searched through the caller's gate (what it may not see is not considered)."""
    if not plans:
        return []
    based_on = ",".join(f"CarePlan/{p['id']}" for p in plans)
    requests = common.search_visible(svc, req, "ServiceRequest", [("based-on", based_on)])
    tasks: list[Resource] = []
    if requests:
        focus = ",".join(f"ServiceRequest/{r['id']}" for r in requests)
        tasks = common.search_visible(svc, req, "Task", [("focus", focus)])
    return overlaps(requests, tasks, _role_organisations(svc, req, [*requests, *tasks]))


def _role_organisations(
    svc: Services, req: FhirRequest, resources: list[Resource]
) -> dict[str, str]:
    """ "PractitionerRole/x" -> "Organization/y" for the roles named as owner or performer."""
    named = {
        ref[len("PractitionerRole/") :]
        for r in resources
        for value in (r.get("owner"), *(r.get("performer") or []))
        if (ref := _ref(value)) and ref.startswith("PractitionerRole/")
    }
    if not named:
        return {}
    roles = common.search_visible(svc, req, "PractitionerRole", [("_id", ",".join(sorted(named)))])
    return {
        f"PractitionerRole/{r['id']}": org
        for r in roles
        if (org := _ref(r.get("organization"))) is not None
    }


def answer(found: Iterable[Overlap]) -> dict[str, Any]:
    """The Parameters answer: one `overlap` part per finding (none: no parameter at all)."""
    out: dict[str, Any] = {"resourceType": "Parameters"}
    parts = [_part(o) for o in found]
    if parts:
        out["parameter"] = parts
    return out


def _part(o: Overlap) -> dict[str, Any]:
    period = {k: v for k, v in (("start", o.start), ("end", o.end)) if v}
    return common.part(
        "overlap",
        part=[
            common.part("kind", valueCode=o.kind),
            common.part("service", valueCoding=dict(o.service)),
            *([common.part("period", valuePeriod=period)] if period else []),
            *(common.part("item", valueReference={"reference": i}) for i in o.items),
            *(
                common.part("organization", valueReference={"reference": g})
                for g in o.organizations
            ),
        ],
    )


_OUT = (
    Param(
        "overlap",
        "Parameters",
        use="out",
        max="*",
        documentation=(
            "one finding: kind (same-service-several-organisations | duplicate-responsibility), "
            "service (Coding, service-kind), period (when both run), item (ServiceRequest and "
            "Task references), organization"
        ),
    ),
)
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        name="overlaps",
        handler=overlaps_operation,
        resource_types=("CarePlan",),
        instance=True,
        type_level=True,
        affects_state=False,
        title="Overlapping services (päällekkäisyydet)",
        description=(
            "Services of the same kind from several organisations in overlapping periods, and "
            "duplicate responsibilities, among the open responsibilities (ServiceRequest + Task) "
            "of the plan (CarePlan/{id}/$overlaps) or of every plan of the client "
            "(CarePlan/$overlaps?patient=Patient/x) that the caller may see."
        ),
        parameters=(
            Param("patient", "Reference", documentation="type level: the client (required)"),
            *_OUT,
        ),
    ),
)
