"""The R4 core element tables (fhir_profiles/core/, built by fhir_profiles/build/definitions.py),
compiled once into per-type plans that the rule walker and the XML converter use.

Loaded once per process; this module must never read the core package or call fhirpathpy.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

from fhir_profiles import load

# What a plan entry checks beyond its JSON shape.
NONE, CODE, CODING, CONCEPT, REFERENCE, RESOURCE, XHTML = range(7)
_CODED = {"code": CODE, "Coding": CODING, "CodeableConcept": CONCEPT}
# JSON shape of a primitive (http://hl7.org/fhir/R4/json.html#primitive); 0 = not a primitive.
COMPLEX, BOOLEAN, INTEGER, DECIMAL, STRING = range(5)
_PRIMITIVE_KIND = {
    "boolean": BOOLEAN,
    "integer": INTEGER,
    "positiveInt": INTEGER,
    "unsignedInt": INTEGER,
    "decimal": DECIMAL,
}
# The `_name` twin of a primitive holds only these (an Element: id + extension).
ELEMENT = "Element"


class Spec(NamedTuple):
    """One element of a type as the rule walker sees it."""

    many: bool
    kind: int  # COMPLEX or a primitive's JSON shape
    check: int
    allowed: frozenset[Any] | None  # codes, (system, code) pairs, or target types (None = any)
    child: str | None  # type key to descend into
    binding: str | None = None  # ValueSet url, for messages


class Row(NamedTuple):
    """One element of a type as the XML converter sees it (in definition order)."""

    name: str
    type: str
    many: bool
    attr: bool


@cache
def layout() -> dict[str, list[Row]]:
    """Type key (type name or backbone path such as `CarePlan.activity`) -> ordered elements."""
    raw = load("core/elements.json")["layout"]
    return {
        key: [
            Row(r["name"], r["type"], r.get("many", False), r.get("xmlAttr", False)) for r in rows
        ]
        for key, rows in raw.items()
    }


@cache
def resource_types() -> frozenset[str]:
    return frozenset(load("core/elements.json")["resources"])


@cache
def primitive_types() -> frozenset[str]:
    return frozenset(load("core/elements.json")["primitives"])


def _spec(row: dict[str, Any], valuesets: dict[str, Any], primitives: frozenset[str]) -> Spec:
    many, type_ = row.get("many", False), row["type"]
    if type_ in primitives:
        kind = _PRIMITIVE_KIND.get(type_, STRING)
        if row.get("binding") in valuesets:
            allowed = frozenset(code for _, code in valuesets[row["binding"]])
            return Spec(many, kind, CODE, allowed, None, row["binding"])
        return Spec(many, kind, XHTML if type_ == "xhtml" else NONE, None, None)
    if row.get("binding") in valuesets:
        check = _CODED[type_]
        allowed = frozenset((system, code) for system, code in valuesets[row["binding"]])
        return Spec(many, COMPLEX, check, allowed, type_, row["binding"])
    if type_ == "Reference":
        targets = frozenset(row["targets"]) if row.get("targets") else None
        return Spec(many, COMPLEX, REFERENCE, targets, type_)
    if type_ == "Resource":
        return Spec(many, COMPLEX, RESOURCE, None, None)
    return Spec(many, COMPLEX, NONE, None, type_)


@cache
def plans() -> dict[str, dict[str, Spec]]:
    """Type key -> {JSON property name -> Spec} for every element, `_name` twins included."""
    raw = load("core/elements.json")["layout"]
    valuesets = load("core/bindings.json")["valueSets"]
    primitives = primitive_types()
    out: dict[str, dict[str, Spec]] = {}
    for key, rows in raw.items():
        plan: dict[str, Spec] = {}
        for row in rows:
            spec = _spec(row, valuesets, primitives)
            plan[row["name"]] = spec
            if spec.kind != COMPLEX and not row.get("xmlAttr"):
                plan["_" + row["name"]] = Spec(spec.many, COMPLEX, NONE, None, ELEMENT)
        out[key] = plan
    out[ELEMENT] = {
        "id": Spec(False, STRING, NONE, None, None),
        "extension": Spec(True, COMPLEX, NONE, None, "Extension"),
    }
    return out
