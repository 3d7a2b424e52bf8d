"""FHIR `$`-operations (http://hl7.org/fhir/R4/operations.html): how an operation is declared,
found for a request, and described (CapabilityStatement entries, OperationDefinition resources).

The workflows themselves live in gateway/coordination/; this module knows none of them. It never
runs an operation the request's level (system, type, instance) or method does not allow: an
operation that changes state answers POST only (http.html#operations: GET only when
affectsState is false).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.errors import Category, FhirError

if TYPE_CHECKING:
    from gateway.fhir_api.context import FhirRequest, FhirResponse, Services

from fhir_profiles import CANONICAL

Handler = Callable[["Services", "FhirRequest"], "FhirResponse"]


@dataclass(frozen=True)
class Param:
    """One OperationDefinition.parameter (in or out)."""

    name: str
    type: str  # FHIR type name: boolean, string, date, dateTime, Coding, Reference, Parameters…
    use: str = "in"
    min: int = 0
    max: str = "1"
    documentation: str = ""


@dataclass(frozen=True)
class Operation:
    """A `$name` operation at the system level, on types, or on their instances."""

    name: str
    handler: Handler
    resource_types: tuple[str, ...] = ()  # () with system=True: [base]/$name only
    instance: bool = False  # [base]/Type/id/$name (else [base]/Type/$name)
    system: bool = False
    # Also [base]/Type/$name when `instance` is set (None: type level exactly when not instance).
    type_level: bool | None = None
    affects_state: bool = True
    title: str = ""
    description: str = ""
    parameters: tuple[Param, ...] = field(default_factory=tuple)
    # Media types the operation may answer with besides FHIR (e.g. text/html for a rendering).
    produces: tuple[str, ...] = ()
    # Media types of a body the operation reads itself from `FhirRequest.raw_body` (e.g. a CDA
    # document as application/xml): such a body is not parsed as a FHIR resource.
    consumes: tuple[str, ...] = ()
    # The SMART scope the caller needs, as (resource type, letter); None: `scope_letter` on the
    # target type (system level: on every type, "*").
    scope: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"{CANONICAL}/OperationDefinition/{self.name}"

    @property
    def on_type(self) -> bool:
        return bool(self.resource_types) and (
            not self.instance if self.type_level is None else self.type_level
        )

    def needs(self, resource_type: str | None, instance: bool) -> tuple[str, str]:
        """The (type, letter) SMART scope a request for this operation needs."""
        if self.scope is not None:
            return self.scope
        reads, writes = ("r", "u") if instance else ("s", "c")
        return (resource_type or "*", writes if self.affects_state else reads)


class Registry:
    """Operations by name; a name is declared once."""

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self._by_name: dict[str, Operation] = {}
        for op in operations:
            if op.name in self._by_name:
                raise ValueError(f"operation ${op.name} is declared twice")
            self._by_name[op.name] = op

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def find(self, name: str, resource_type: str | None, instance: bool, method: str) -> Operation:
        """The operation a request names, or the error a FHIR server gives for it."""
        op = self._by_name.get(name)
        where = _level(resource_type, instance)
        if op is None or not _serves(op, resource_type, instance):
            raise FhirError(Category.NOT_FOUND, f"operation ${name[:60]} is not known {where}")
        if method not in ("GET", "POST", "HEAD"):
            raise FhirError(Category.METHOD_NOT_ALLOWED, f"${name} is invoked with GET or POST")
        if method != "POST" and op.affects_state:
            raise FhirError(
                Category.METHOD_NOT_ALLOWED, f"${name} changes data: invoke it with POST"
            )
        return op

    def for_type(self, resource_type: str) -> list[Operation]:
        return [op for op in self if resource_type in op.resource_types]

    def system_level(self) -> list[Operation]:
        return [op for op in self if op.system]


def _serves(op: Operation, resource_type: str | None, instance: bool) -> bool:
    if resource_type is None:
        return op.system
    if resource_type not in op.resource_types:
        return False
    return op.instance if instance else op.on_type


def _level(resource_type: str | None, instance: bool) -> str:
    if resource_type is None:
        return "at the system level"
    return f"on {resource_type} instances" if instance else f"on the {resource_type} type"


def capability_entry(op: Operation) -> dict[str, Any]:
    """A CapabilityStatement.rest(.resource).operation entry."""
    entry: dict[str, Any] = {"name": op.name, "definition": op.url}
    if op.description:
        entry["documentation"] = op.description
    return entry


def definition(op: Operation) -> dict[str, Any]:
    """The OperationDefinition resource of an operation (served at OperationDefinition/name)."""
    out: dict[str, Any] = {
        "resourceType": "OperationDefinition",
        "id": op.name,
        "url": op.url,
        "name": "".join(p.capitalize() for p in op.name.split("-")),
        "title": op.title or op.name,
        "status": "active",
        "kind": "operation",
        "description": op.description or op.title or op.name,
        "affectsState": op.affects_state,
        "code": op.name,
        "system": op.system,
        "type": op.on_type,
        "instance": op.instance,
    }
    if op.resource_types:
        out["resource"] = list(op.resource_types)
    out["parameter"] = [_parameter(p) for p in op.parameters]
    return out


def _parameter(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "use": p.use, "min": p.min, "max": p.max}
    if p.documentation:
        out["documentation"] = p.documentation
    if p.type != "Parameters":  # a nested part group has parts, not a type
        out["type"] = p.type
    return out


def definitions(registry: Registry) -> Mapping[str, dict[str, Any]]:
    return {op.name: definition(op) for op in registry}
