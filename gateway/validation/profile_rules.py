"""The rules one differential element states (cardinality, fixed[x], pattern[x], required
binding, type and Reference target restrictions, error-severity invariants), compiled once, and
the check of one instance value against them.

Messages name the rule and values from the profile only, never a value from the instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import orjson

from gateway.validation.profile_native import with_native
from gateway.validation.references import BadReference, referenced_type

log = logging.getLogger(__name__)

Codes = frozenset[tuple[str | None, str]]  # an expanded ValueSet: (system, code) pairs
Invariant = Callable[[Any, dict[str, Any]], list[Any]]


class Constraint(NamedTuple):
    key: str
    human: str
    evaluate: Invariant


class Rules(NamedTuple):
    """What one element of a profile says, beyond its place in the tree."""

    min: int | None = None
    max: str | None = None  # "*", "0", "1", ...; None = not constrained here
    fixed: Any = None
    pattern: Any = None
    binding: str | None = None  # ValueSet url of a required binding
    types: frozenset[str] = frozenset()  # allowed type codes, empty = no restriction
    targets: frozenset[str] | None = None  # allowed Reference target types, None = any
    profiles: tuple[str, ...] = ()  # type.profile (extension definitions)
    constraints: tuple[Constraint, ...] = ()


NO_RULES = Rules()


class Context(NamedTuple):
    """What a check may need beyond the value: the whole resource, its contained ids, and how
    to expand a ValueSet (None when it cannot be expanded: such a binding is not checked)."""

    resource: dict[str, Any]
    contained: dict[str, str]
    codes: Callable[[str], Codes | None]


@cache
def compiled_fhirpath(expression: str) -> Invariant:
    """fhirpathpy's compiled form of `expression` (parsed once per process)."""
    import fhirpathpy
    from fhirpathpy.models import models

    return fhirpathpy.compile(expression, model=models["r4"])


def _invariant(key: str, expression: str) -> Invariant:
    """fhirpathpy's form, or profile_native's for exactly this text (the hot invariants)."""
    return with_native(key, expression, compiled_fhirpath(expression))


def truthy(result: list[Any]) -> bool:
    """FHIRPath collection as a constraint outcome, as the HL7 validator reads it: a single
    boolean is itself, any other non-empty collection is true, empty is false."""
    if len(result) == 1 and isinstance(result[0], bool):
        return result[0]
    return bool(result)


def _choice(element: dict[str, Any], prefix: str) -> Any:
    for key, value in element.items():
        if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isupper():
            return value
    return None


def compile_rules(element: dict[str, Any], resource_type_of: Callable[[str], str | None]) -> Rules:
    """Rules of one differential element; `resource_type_of(profile url)` names the resource
    type a targetProfile stands for (None: unknown, any target allowed)."""
    types = element.get("type") or []
    targets: set[str] | None = set()
    for t in types:
        for url in t.get("targetProfile") or []:
            rtype = resource_type_of(url.split("|", 1)[0])
            if targets is not None:
                targets = None if rtype is None else targets | {rtype}
    binding = element.get("binding") or {}
    constraints = tuple(
        Constraint(c["key"], c.get("human", ""), _invariant(c["key"], c["expression"]))
        for c in element.get("constraint") or []
        if c.get("severity", "error") == "error" and c.get("expression")
    )
    return Rules(
        min=element.get("min"),
        max=element.get("max"),
        fixed=_choice(element, "fixed"),
        pattern=_choice(element, "pattern"),
        binding=(
            binding["valueSet"].split("|", 1)[0]
            if binding.get("strength") == "required" and binding.get("valueSet")
            else None
        ),
        types=frozenset(t["code"] for t in types if t.get("code")),
        targets=frozenset(targets) if targets else None,
        profiles=tuple(p for t in types for p in t.get("profile") or []),
        constraints=constraints,
    )


def contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern[x] matching (elementdefinition.html#ElementDefinition.pattern_x_): every
    property of the pattern is in the value; a pattern array item must match some value item."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and contains(value[k], v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(contains(i, p) for i in items) for p in pattern)
    return type(value) is type(pattern) and value == pattern


def show(value: Any) -> str:
    """A profile's value (never an instance value) for a message."""
    return orjson.dumps(value).decode()


def binding_ok(value: Any, codes: Codes) -> bool:
    """A code, Coding or CodeableConcept (at least one coding) drawn from `codes`."""
    if isinstance(value, str):
        return any(value == code for _, code in codes)
    if not isinstance(value, dict):
        return True  # not a coded type: nothing to check
    codings = value.get("coding") if "coding" in value or "text" in value else [value]
    return any(
        (c.get("system"), c.get("code")) in codes for c in codings or [] if isinstance(c, dict)
    )


def value_issues(rules: Rules, value: Any, ctx: Context) -> list[tuple[str, str]]:
    """(issue code, rule text) for each rule `value` breaks."""
    found: list[tuple[str, str]] = []
    if rules.fixed is not None and value != rules.fixed:
        found.append(("value", f"fixed value {show(rules.fixed)}"))
    if rules.pattern is not None and not contains(value, rules.pattern):
        found.append(("value", f"pattern {show(rules.pattern)}"))
    codes = ctx.codes(rules.binding) if rules.binding is not None else None
    if codes is not None and not binding_ok(value, codes):
        found.append(("code-invalid", f"binding (required) to {rules.binding}"))
    if rules.targets is not None and isinstance(value, dict):
        rtype = _target(value, ctx.contained)
        if rtype is not None and rtype not in rules.targets:
            allowed = "|".join(sorted(rules.targets))
            found.append(("value", f"type Reference({allowed}), not {rtype}"))
    for c in rules.constraints:
        if not _holds(c, value, ctx.resource):
            found.append(("invariant", f"invariant {c.key}: {c.human}"))
    return found


def choice_type_issue(rules: Rules, key: str, prefix: str) -> str | None:
    """The type rule a choice value breaks, e.g. `valueString` where only date is allowed."""
    suffix = key[len(prefix) :]
    if not rules.types or suffix[:1].lower() + suffix[1:] in rules.types or suffix in rules.types:
        return None
    return f"type: one of {', '.join(sorted(rules.types))}"


def _target(value: dict[str, Any], contained: dict[str, str]) -> str | None:
    ref = value.get("reference")
    if isinstance(ref, str):
        try:
            return referenced_type(ref, contained)
        except BadReference:
            return None  # rules.py has already named the malformed reference
    declared = value.get("type")
    return declared.rsplit("/", 1)[-1] if isinstance(declared, str) else None


def _holds(c: Constraint, value: Any, resource: dict[str, Any]) -> bool:
    try:
        return truthy(c.evaluate(value, {"resource": resource, "rootResource": resource}))
    except Exception as e:  # fhirpathpy raises many types; the instance is never logged
        log.warning("invariant %s could not be evaluated (%s)", c.key, type(e).__name__)
        return False
