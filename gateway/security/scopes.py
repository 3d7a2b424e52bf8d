"""SMART system scopes (`system/CarePlan.rs`, `system/*.cruds`, v1 `system/Task.read`) and what
each FHIR interaction needs, as tables: a scope grants a set of permission letters on one
resource type (or all), and every route and bundle entry needs one letter on one type.

Letters follow SMART v2 (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
c create; r read, vread, instance history; u update, patch; d delete; s search, type and system
history. This module must never grant by default: a route or entry it does not know needs a
permission nobody has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.fhir_api.context import RESOURCE_TYPES

LETTERS = "cruds"
# SMART v1 suffixes, read as the v2 letters they stand for.
V1_SUFFIXES = {"read": "rs", "write": "cud", "*": "cruds"}
ALL_TYPES = "*"
# Anything outside this grammar (user/ and patient/ contexts, `?param=` granular scopes) is
# refused at the token endpoint rather than half-understood.
_SCOPE = re.compile(r"system/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<perm>[a-z]{1,5}|read|write|\*)")
_V2_PERM = re.compile(r"c?r?u?d?s?")

# (HTTP method, route path under /fhir) -> the letter needed on the route's type ("*" types for
# system-level routes); None = public (the CapabilityStatement); "bundle" = per entry.
CONFORMANCE_TYPES = (
    "StructureDefinition",
    "CodeSystem",
    "ValueSet",
    "Questionnaire",
    "OperationDefinition",
)
ROUTE_PERMISSIONS: dict[tuple[str, str], str | None] = {
    ("GET", "/metadata"): None,
    ("POST", ""): "bundle",
    ("GET", ""): "s",
    ("GET", "/_history"): "s",
    ("GET", "/{rtype}"): "s",
    ("POST", "/{rtype}/_search"): "s",
    ("POST", "/{rtype}"): "c",
    ("PUT", "/{rtype}"): "u",
    ("DELETE", "/{rtype}"): "d",
    ("GET", "/{rtype}/_history"): "s",
    ("GET", "/{rtype}/{rid}"): "r",
    ("PUT", "/{rtype}/{rid}"): "u",
    ("PATCH", "/{rtype}/{rid}"): "u",
    ("DELETE", "/{rtype}/{rid}"): "d",
    ("GET", "/{rtype}/{rid}/_history"): "r",
    ("GET", "/{rtype}/{rid}/_history/{vid}"): "r",
    # `$`-operations: each declares its need (fhir_api/operations.py Operation.needs).
    ("GET", "/${op}"): "operation",
    ("POST", "/${op}"): "operation",
    ("GET", "/{rtype}/${op}"): "operation",
    ("POST", "/{rtype}/${op}"): "operation",
    ("GET", "/{rtype}/{rid}/${op}"): "operation",
    ("POST", "/{rtype}/{rid}/${op}"): "operation",
    # Conformance resources (fhir_api/conformance.py), public as /metadata is.
    **{("GET", f"/{t}"): None for t in CONFORMANCE_TYPES},
    **{("GET", f"/{t}/{{rid}}"): None for t in CONFORMANCE_TYPES},
}
# Bundle.entry.request.method -> letter; a GET entry is a read with an id, a search without.
ENTRY_PERMISSIONS = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}
ENTRY_GET = {True: "r", False: "s"}  # keyed by "the entry names an id"


class ScopeError(ValueError):
    """A scope string outside the supported grammar."""


@dataclass(frozen=True)
class Scope:
    resource_type: str  # a served type or "*"
    letters: frozenset[str]

    def covers(self, resource_type: str, letter: str) -> bool:
        return self.resource_type in (ALL_TYPES, resource_type) and letter in self.letters


def parse_scope(text: str) -> Scope:
    m = _SCOPE.fullmatch(text)
    if m is None:
        raise ScopeError(f"'{text[:80]}' is not a supported scope (system/Type.cruds)")
    rtype, perm = m["type"], m["perm"]
    if rtype != ALL_TYPES and rtype not in RESOURCE_TYPES:
        raise ScopeError(f"'{text[:80]}' names a resource type not served here")
    letters = V1_SUFFIXES.get(perm)
    if letters is None:
        if not _V2_PERM.fullmatch(perm):
            raise ScopeError(f"'{text[:80]}': permissions are a subset of 'cruds', in order")
        letters = perm
    return Scope(rtype, frozenset(letters))


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """A space-separated scope parameter (RFC 6749 section 3.3)."""
    return tuple(parse_scope(part) for part in text.split())


def permits(scopes: tuple[Scope, ...], resource_type: str, letter: str) -> bool:
    """Whether any scope grants `letter` on `resource_type` ("*" = every type)."""
    if resource_type == ALL_TYPES:
        return any(s.resource_type == ALL_TYPES and letter in s.letters for s in scopes)
    return any(s.covers(resource_type, letter) for s in scopes)


def within(requested: Scope, registered: tuple[Scope, ...]) -> bool:
    """Whether every permission `requested` grants is granted by the registration."""
    return all(permits(registered, requested.resource_type, x) for x in requested.letters)
