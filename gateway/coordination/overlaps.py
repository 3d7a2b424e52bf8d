"""`$overlaps` (päällekkäisyydet): `CarePlan/{id}/$overlaps` and `CarePlan/$overlaps?patient=`
answer the overlaps (overlap_finder.py) among the responsibilities the caller may see, as
Parameters.

Every resource it considers is searched through the caller's gate; it never reads anything
around the gate and never changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.coordination import common, visible
from gateway.coordination.open_responsibilities import ref
from gateway.coordination.overlap_finder import Overlap, overlaps
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

__all__ = ["OPERATIONS", "Overlap", "overlaps"]

Resource = Mapping[str, Any]


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
        found[len("PractitionerRole/") :]
        for r in resources
        for value in (r.get("owner"), *(r.get("performer") or []))
        if (found := ref(value)) and found.startswith("PractitionerRole/")
    }
    if not named:
        return {}
    roles = visible.by_ids(svc, req, "PractitionerRole", sorted(named)).values()
    return {
        f"PractitionerRole/{r['id']}": org
        for r in roles
        if (org := ref(r.get("organization"))) is not None
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
