"""Rules the fhir.resources models do not check, walked over a resource with the precompiled
plans of definitions.py (choice types, arrays, backbone elements, contained and nested resources):
required code bindings of the R4 core, allowed reference target types, and the strict R4 JSON
shape (no nulls or empty values, JSON booleans and numbers, R4 element names only).

Runs on every write, so it must stay a plain dict walk: never fhirpathpy, never a model, never a
value from the client's record in a message (messages name paths and rules only).
"""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import Issue
from gateway.validation.definitions import (
    BOOLEAN,
    CODE,
    CODING,
    COMPLEX,
    CONCEPT,
    DECIMAL,
    INTEGER,
    REFERENCE,
    RESOURCE,
    STRING,
    XHTML,
    Spec,
    plans,
    resource_types,
)
from gateway.validation.narrative import div_problem
from gateway.validation.references import BadReference, contained_index, referenced_type

_SHAPE = {
    STRING: "expects a non-empty JSON string",
    BOOLEAN: "expects JSON true or false",
    INTEGER: "expects a JSON integer",
    DECIMAL: "expects a JSON number",
}


# R4 datatypes.html#string: no characters below U+0020 but tab, CR and LF. NUL also cannot be
# stored (PostgreSQL jsonb) and the others cannot be written as XML.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class _Walk:
    """One pass over one resource, collecting issues."""

    __slots__ = ("contained", "issues", "plans", "types")

    def __init__(self, contained: dict[str, str]) -> None:
        self.plans = plans()
        self.types = resource_types()
        self.contained = contained
        self.issues: list[Issue] = []

    def node(self, plan: dict[str, Spec], node: dict[str, Any], path: str) -> None:
        if not node:
            self.fail(f"{path}: an object must not be empty", path, "structure")
        for name, value in node.items():
            spec = plan.get(name)
            if spec is None:
                if name != "resourceType":
                    where = f"{path}.{name[:40]}"
                    self.fail(f"{where}: not an element of FHIR R4", where, "structure")
            elif type(value) is list:
                self.array(spec, value, f"{path}.{name}")
            elif spec.kind != COMPLEX:
                self.primitive(spec, value, path, name)  # path built only on failure
            else:
                self.element(spec, value, f"{path}.{name}")

    def array(self, spec: Spec, value: list[Any], path: str) -> None:
        if not spec.many:
            self.fail(f"{path}: expects one value, not an array", path, "structure")
        elif not value:
            self.fail(f"{path}: an array must not be empty", path, "structure")
        else:
            # Nulls keep a primitive array aligned with its `_name` twin (json.html#primitive).
            nulls_ok = spec.kind != COMPLEX or spec.child == "Element"
            for i, item in enumerate(value):
                if spec.kind != COMPLEX:
                    if item is not None:
                        self.primitive(spec, item, path, f"[{i}]")
                elif item is not None or not nulls_ok:
                    self.element(spec, item, f"{path}[{i}]")

    def element(self, spec: Spec, value: Any, path: str) -> None:
        if type(value) is not dict:
            self.fail(f"{path}: expects a JSON object", path, "structure")
            return
        check = spec.check
        if check == REFERENCE:
            self.reference(spec, value, path)
        elif check == CODING:
            self.coding(spec, [value], path)
        elif check == CONCEPT:
            codings = value.get("coding")
            self.coding(spec, codings if isinstance(codings, list) else [], path)
        elif check == RESOURCE:
            self.resource(value, path)
            return
        if spec.child is not None:
            self.node(self.plans[spec.child], value, path)

    def primitive(self, spec: Spec, value: Any, parent: str, name: str) -> None:
        kind, t = spec.kind, type(value)
        if kind == STRING:
            ok = t is str and value != ""
        elif kind == BOOLEAN:
            ok = t is bool
        elif kind == INTEGER:
            ok = t is int
        else:
            ok = kind == DECIMAL and (t is int or t is float)
        if not ok:
            path = f"{parent}.{name}" if name[0] != "[" else parent + name
            self.fail(f"{path}: {_SHAPE[kind]}", path, "structure")
        elif kind == STRING and _CONTROL.search(value):
            path = f"{parent}.{name}" if name[0] != "[" else parent + name
            self.fail(f"{path}: a string must not contain control characters", path)
        elif spec.check == CODE and value not in spec.allowed:  # type: ignore[operator]
            path = f"{parent}.{name}" if name[0] != "[" else parent + name
            self.fail(f"{path}: the code is not in the required ValueSet {spec.binding}", path)
        elif spec.check == XHTML and (problem := div_problem(value)):
            path = f"{parent}.{name}"
            self.fail(f"{path}: {problem}", path)

    def resource(self, value: dict[str, Any], path: str) -> None:
        rtype = value.get("resourceType")
        if isinstance(rtype, str) and rtype in self.plans and rtype in self.types:
            self.node(self.plans[rtype], value, path)
        else:
            where = f"{path}.resourceType"
            self.fail(f"{where}: not a FHIR R4 resource type", where, "structure")

    def coding(self, spec: Spec, codings: list[Any], path: str) -> None:
        allowed = spec.allowed or frozenset()
        for c in codings:
            if not isinstance(c, dict):
                continue
            system, code = c.get("system"), c.get("code")
            if (system, code) in allowed or (system is None and any(code == a[1] for a in allowed)):
                return
        self.fail(f"{path}: needs a code from the required ValueSet {spec.binding}", path)

    def reference(self, spec: Spec, value: dict[str, Any], path: str) -> None:
        ref = value.get("reference")
        if isinstance(ref, str):
            try:
                rtype = referenced_type(ref, self.contained)
            except BadReference as e:
                self.fail(f"{path}: {e}", path)
                rtype = None
            if rtype is not None:
                self.target(spec, rtype, path)
        declared = value.get("type")
        if isinstance(declared, str):
            self.target(spec, declared.rsplit("/", 1)[-1], f"{path}.type")

    def target(self, spec: Spec, rtype: str, path: str) -> None:
        if rtype not in self.types:
            self.fail(f"{path}: the reference names no FHIR resource type", path)
        elif spec.allowed is not None and rtype not in spec.allowed:
            allowed = ", ".join(sorted(spec.allowed))
            self.fail(f"{path}: the reference must point to {allowed}, not {rtype}", path)

    def fail(self, message: str, path: str, code: str = "value") -> None:
        self.issues.append(Issue(message, (path,), code=code))


def rule_issues(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    """Binding and reference-target issues in `resource`, each with its FHIRPath-like path."""
    plan = plans().get(resource_type)
    if plan is None:
        return []
    walk = _Walk(contained_index(resource))
    walk.node(plan, resource, resource_type)
    return walk.issues
