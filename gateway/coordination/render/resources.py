"""The FHIR resources one client plan is rendered from, and small readers over them.

`PlanResources` holds only what the caller was allowed to see (client_plan.py gathers it through
the disclosure gate; tests build it from sample bundles). Nothing here fetches or decides
visibility; a missing resource is simply not rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from gateway.consent.vocabulary import CANONICAL

CODE_SYSTEM = f"{CANONICAL}/CodeSystem/"
EXTENSION = f"{CANONICAL}/StructureDefinition/"
DIRECTORY_TYPES = ("Organization", "Practitioner", "PractitionerRole")

Resource = dict[str, Any]


@dataclass
class PlanResources:
    plan: Resource
    patient: Resource | None = None
    care_teams: list[Resource] = field(default_factory=list)
    goals: list[Resource] = field(default_factory=list)
    requests: list[Resource] = field(default_factory=list)  # ServiceRequests based on the plan
    tasks: list[Resource] = field(default_factory=list)  # Tasks based on the plan
    directory: dict[str, Resource] = field(default_factory=dict)  # "Type/id" -> resource

    def get(self, ref: Any) -> Resource | None:
        """The gathered resource a Reference (or "Type/id") points at, if it was visible."""
        key = ref.get("reference") if isinstance(ref, Mapping) else ref
        if not isinstance(key, str):
            return None
        return self.by_ref().get(key)

    def by_ref(self) -> dict[str, Resource]:
        out = dict(self.directory)
        for r in self.all():
            out[ref_of(r)] = r
        return out

    def all(self) -> list[Resource]:
        head = [self.plan, *([self.patient] if self.patient else [])]
        return [*head, *self.care_teams, *self.goals, *self.requests, *self.tasks]

    def refs(self) -> list[str]:
        """What the rendered plan discloses, as "Type/id": the plan's resources and the directory
        entries they name (a PractitionerRole with its Practitioner and Organization)."""
        named = references(self.all())
        roles = [self.directory[r] for r in sorted(named) if r.startswith("PractitionerRole/")]
        named |= references(roles)
        shown = {ref_of(r) for r in self.all()} | (named & set(self.directory))
        return sorted(shown)


def ref_of(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def references(value: Any) -> set[str]:
    """Every literal "Type/id" reference anywhere inside `value`."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        ref = value.get("reference")
        if isinstance(ref, str) and ref.count("/") == 1:
            found.add(ref)
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def points_to(refs: Any, target: str) -> bool:
    """Whether a Reference or a list of References names `target` ("Type/id")."""
    items = refs if isinstance(refs, list) else [refs]
    return any(isinstance(r, Mapping) and r.get("reference") == target for r in items)


def from_bundle_resources(resources: Iterable[Resource], plan_id: str) -> PlanResources:
    """Pick one plan's resources out of a flat list (sample bundles, tests)."""
    pool = list(resources)
    target = f"CarePlan/{plan_id}"
    plan = next(r for r in pool if ref_of(r) == target)
    by_ref = {ref_of(r): r for r in pool}
    teams = [by_ref[t["reference"]] for t in plan.get("careTeam") or [] if t["reference"] in by_ref]
    goals = [by_ref[g["reference"]] for g in plan.get("goal") or [] if g["reference"] in by_ref]
    subject = (plan.get("subject") or {}).get("reference")
    return PlanResources(
        plan=plan,
        patient=by_ref.get(subject) if isinstance(subject, str) else None,
        care_teams=teams,
        goals=goals,
        requests=[r for r in pool if is_based_on(r, "ServiceRequest", target)],
        tasks=[r for r in pool if is_based_on(r, "Task", target)],
        directory={ref_of(r): r for r in pool if r.get("resourceType") in DIRECTORY_TYPES},
    )


def is_based_on(resource: Mapping[str, Any], rtype: str, target: str) -> bool:
    return resource.get("resourceType") == rtype and points_to(resource.get("basedOn"), target)


def extension(resource: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """Our extension `name` (its StructureDefinition id) on a resource or element."""
    for ext in resource.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == EXTENSION + name:
            return ext
    return None


def sub_extension(ext: Mapping[str, Any], url: str) -> Mapping[str, Any]:
    for part in ext.get("extension") or []:
        if isinstance(part, Mapping) and part.get("url") == url:
            return part
    return {}


def day(value: Any) -> date | None:
    """The calendar date of a FHIR date or dateTime (its local date as written)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def human_name(resource: Mapping[str, Any] | None) -> str:
    """ "Given Family" of a Patient or Practitioner's first name (its text when given)."""
    for name in (resource or {}).get("name") or []:
        if not isinstance(name, Mapping):
            continue
        if isinstance(name.get("text"), str):
            return str(name["text"])
        parts = [*(name.get("given") or []), name.get("family") or ""]
        return " ".join(p for p in parts if isinstance(p, str) and p).strip()
    return ""
