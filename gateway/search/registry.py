"""The SearchParameters this gateway serves, loaded from the R4 core definitions in fhir_profiles.

One `SearchParam` per (resource type, code); Resource/DomainResource parameters are shared by all
types. This module only describes parameters; it must never touch the database or requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import fhir_profiles
from gateway.fhir_api.context import RESOURCE_TYPES


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str  # token | string | reference | date | number | quantity | uri | composite | special
    expression: str
    targets: tuple[str, ...]
    url: str
    description: str
    base: str  # the type it was declared on (a resource type, Resource or DomainResource)


# Parameters answered from the resources table itself, not from an index table.
RESOURCE_COLUMNS = ("_id", "_lastUpdated")

# Parameters of these types have no index table here; they are reported as unsupported.
UNSUPPORTED_TYPES = ("composite", "special")

# Common parameters we index (http://hl7.org/fhir/R4/search.html#all); _text, _content, _query,
# _filter and _source are declared by the core but not supported here.
COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security")

# Modifiers supported per parameter type (http://hl7.org/fhir/R4/search.html#modifiers).
SUPPORTED_MODIFIERS: dict[str, tuple[str, ...]] = {
    "token": ("missing", "not", "text"),
    "string": ("missing", "exact", "contains"),
    "reference": ("missing", "[type]", "identifier"),
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "uri": ("missing", "below", "above"),
}
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
NUMBER_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "ap")

# Search result parameters and features (for the CapabilityStatement).
RESULT_PARAMS = (
    "_include",
    "_revinclude",
    "_sort",
    "_count",
    "_elements",
    "_summary",
    "_total",
)
FEATURES = ("_has", "chaining", "_include:iterate", "_revinclude:iterate", "paging-snapshots")


# Types searchable by a subset of their R4 parameters only. AuditEvent: the gateway writes one
# per read, so its index rows are a cost on every read (26 rows per BALP event with all 18
# parameters, about half of an audited read's CPU); these are what an audit trail is searched by
# (BALP, a client's access log: who, about whom, when, what, how it ended).
ONLY: dict[str, frozenset[str]] = {
    "AuditEvent": frozenset(
        {"patient", "date", "agent", "entity", "type", "subtype", "action", "outcome"}
    ),
}


@cache
def _all() -> dict[str, dict[str, SearchParam]]:
    data = fhir_profiles.load("core/search-parameters.json")
    by_base: dict[str, dict[str, SearchParam]] = {}
    for p in data["params"]:
        sp = SearchParam(
            code=p["code"],
            type=p["type"],
            expression=p["expression"],
            targets=tuple(p["target"]),
            url=p["url"],
            description=p["description"],
            base=p["base"],
        )
        by_base.setdefault(p["base"], {})[sp.code] = sp
    return by_base


@cache
def params_for(resource_type: str) -> dict[str, SearchParam]:
    """Every supported parameter of a type, by code (common ones included)."""
    everything = _all()
    out = {c: p for c, p in everything.get("Resource", {}).items() if c in COMMON}
    only = ONLY.get(resource_type)
    for code, sp in everything.get(resource_type, {}).items():
        if sp.type not in UNSUPPORTED_TYPES and sp.expression and (only is None or code in only):
            out[code] = sp
    return out


@cache
def choices() -> dict[str, tuple[str, ...]]:
    """`Type.path` -> data types of each choice element (`Type.path[x]`)."""
    data = fhir_profiles.load("core/search-parameters.json")
    return {k: tuple(v) for k, v in data["choices"].items()}


def indexed(resource_type: str) -> list[SearchParam]:
    """The parameters whose values are extracted into index tables on write."""
    return [p for p in params_for(resource_type).values() if p.code not in RESOURCE_COLUMNS]


def served(resource_type: str) -> bool:
    """Whether the gateway stores and searches this resource type."""
    return resource_type in RESOURCE_TYPES
