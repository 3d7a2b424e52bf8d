"""Native Python forms of the hot invariants of our profiles (cn-1, cn-2, hetu-1, sote-1,
terhikki-1, ho-1, cf-1, cf-2), run instead of fhirpathpy on every write of a common type.

Why: no Python FHIRPath engine is fast enough (fhirpathpy costs ≈2 ms for cn-1 alone on each
CareTeam write, most of profile validation), yet the FHIRPath expression in the FSH stays the
definition. So the table is keyed by (invariant key, exact expression text): when the compiled
StructureDefinition says anything else, there is no native form and fhirpathpy evaluates it,
rather than a stale native version. A predicate takes the value fhirpathpy would (the element
the constraint sits on) and answers what `truthy()` makes of fhirpathpy's result, with its
semantics (empty `=` operands, `implies` with an empty left side, `all()` of nothing is true,
`matches` as `re.search` with DOTALL, `substring` and `toInteger` as fhirpathpy does them);
tests/gateway/validation/test_profile_native.py holds them equal to fhirpathpy. A shape a
predicate does not model (primitive extensions `_x`, wrong JSON types) is left to fhirpathpy.
Reads the instance only; never logs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fhir_profiles import CANONICAL

Invariant = Callable[[Any, dict[str, Any]], list[Any]]  # as profile_rules compiles them
Predicate = Callable[[Any], bool]

CS = f"{CANONICAL}/CodeSystem/"
COORDINATOR = f"{CS}coordinator-role"
HETU = "urn:oid:1.2.246.21"
SOTE = "urn:oid:1.2.246.537.6.202.2008"
TERHIKKI = "urn:oid:1.2.246.537.26"
HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


class Unmodelled(Exception):
    """The instance has a shape the predicate does not model: fhirpathpy decides."""


def _regex(pattern: str) -> Callable[[str], bool]:
    """FHIRPath `matches` as fhirpathpy runs it (re.search, DOTALL: `$` also before a final
    newline); our expressions anchor their patterns."""
    search = re.compile(pattern, re.DOTALL).search
    return lambda text: search(text) is not None


def _get(node: dict[str, Any], name: str) -> Any:
    """`node[name]` (absent: None); an `_name` sibling (primitive extensions, which fhirpathpy
    merges into the element) is unmodelled."""
    if f"_{name}" in node:
        raise Unmodelled(name)
    return node.get(name)


def _items(node: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A repeating complex element (absent or null: none)."""
    value = _get(node, name)
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise Unmodelled(name)


def _one(node: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A single complex element (absent or null: None)."""
    value = _get(node, name)
    if value is None or isinstance(value, dict):
        return value
    raise Unmodelled(name)


def _text(node: dict[str, Any], name: str) -> str | None:
    """A string primitive (absent or null: None)."""
    value = _get(node, name)
    if value is None or isinstance(value, str):
        return value
    raise Unmodelled(name)


def _root(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Unmodelled("context")
    return value


def _is_coordinator(participant: dict[str, Any]) -> bool:
    """role.coding.where(system = coordinator-role and code = 'asiakasvastaava').exists()"""
    return any(
        _text(c, "system") == COORDINATOR and _text(c, "code") == "asiakasvastaava"
        for role in _items(participant, "role")
        for c in _items(role, "coding")
    )


def cn_1(value: Any) -> bool:
    """A missing status is an empty left side of `implies`: the right side then decides."""
    team = _root(value)
    status = _text(team, "status")
    if status is not None and status != "active":
        return True
    open_coordinators = 0
    for p in _items(team, "participant"):
        ended = _text(_one(p, "period") or {}, "end") is not None
        open_coordinators += _is_coordinator(p) and not ended
    return open_coordinators == 1


_PRACTITIONER_ROLE_REF = _regex(
    "^(.*/)?PractitionerRole/[A-Za-z0-9.-]+(/_history/[A-Za-z0-9.-]+)?$"
)


def _member_is_role(participant: dict[str, Any]) -> bool:
    member = _one(participant, "member") or {}
    ref, type_ = _text(member, "reference"), _text(member, "type")
    if ref is not None and (_PRACTITIONER_ROLE_REF(ref) or ref.startswith("urn:uuid:")):
        return True
    return type_ == "PractitionerRole"  # an empty `or` operand is not true: only this decides


def cn_2(value: Any) -> bool:
    team = _root(value)
    coordinators = [p for p in _items(team, "participant") if _is_coordinator(p)]
    return all(_member_is_role(p) for p in coordinators)


def _values(resource: Any, system: str) -> list[str | None]:
    """identifier.where(system = `system`).value, one entry per identifier (None: no value)."""
    idents = _items(_root(resource), "identifier")
    return [_text(i, "value") for i in idents if _text(i, "system") == system]


_HETU_FORMAT = _regex("^[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]$")


def _hetu_ok(value: str | None) -> bool:
    """value.matches(format) and check character = digits 0-5 and 7-9 as an integer mod 31
    (index 10: the format admits a final newline after it, as fhirpathpy's `$` does)."""
    if value is None or not _HETU_FORMAT(value):
        return False
    return HETU_CHECK[int(value[0:6] + value[7:10]) % 31] == value[10]


def hetu_1(value: Any) -> bool:
    return all(_hetu_ok(v) for v in _values(value, HETU))


_SOTE_OID = _regex("^[0-2]([.](0|[1-9][0-9]*))+$")


def sote_1(value: Any) -> bool:
    values = _values(value, SOTE)
    return bool(values) and all(v is not None and _SOTE_OID(v) for v in values)


_ELEVEN_DIGITS = _regex("^[0-9]{11}$")


def terhikki_1(value: Any) -> bool:
    return all(v is not None and _ELEVEN_DIGITS(v) for v in _values(value, TERHIKKI))


def ho_1(value: Any) -> bool:
    task = _root(value)
    status = _text(task, "status")
    if status is not None and status != "rejected":
        return True
    return _one(task, "statusReason") is not None


def _answers(response: Any, link_id: str) -> list[dict[str, Any]]:
    """item.where(linkId = `link_id`).answer (top-level items only, as the expression says)."""
    items = _items(_root(response), "item")
    return [a for i in items if _text(i, "linkId") == link_id for a in _items(i, "answer")]


def cf_1(value: Any) -> bool:
    stage = f"{CS}feedback-stage"
    codings = [_one(a, "valueCoding") for a in _answers(value, "stage")]
    return sum(c is not None and _text(c, "system") == stage for c in codings) == 1


def cf_2(value: Any) -> bool:
    return all(_text(a, "valueString") is not None for a in _answers(value, "feedback"))


_CN_ROLE = (
    "role.coding.where(system = 'https://fhir-plan-gateway.example/CodeSystem/coordinator-role'"
    " and code = 'asiakasvastaava').exists()"
)
NATIVE: dict[tuple[str, str], Predicate] = {
    ("cn-1", f"status = 'active' implies participant.where({_CN_ROLE} and period.end.empty())"
     ".count() = 1"): cn_1,
    ("cn-2", f"participant.where({_CN_ROLE}).all(member.reference.matches("
     "'^(.*/)?PractitionerRole/[A-Za-z0-9.-]+(/_history/[A-Za-z0-9.-]+)?$') or "
     "member.reference.startsWith('urn:uuid:') or member.type = 'PractitionerRole')"): cn_2,
    ("hetu-1", "identifier.where(system = 'urn:oid:1.2.246.21').all(value.matches("
     "'^[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]$') and '0123456789ABCDEFHJKLMNPRSTUVWXY'"
     ".substring((value.substring(0, 6) + value.substring(7, 3)).toInteger() mod 31, 1) = "
     "value.substring(10, 1))"): hetu_1,
    ("sote-1", "identifier.where(system = 'urn:oid:1.2.246.537.6.202.2008').exists() and "
     "identifier.where(system = 'urn:oid:1.2.246.537.6.202.2008').all(value.matches("
     "'^[0-2]([.](0|[1-9][0-9]*))+$'))"): sote_1,
    ("terhikki-1", "identifier.where(system = 'urn:oid:1.2.246.537.26').all(value.matches("
     "'^[0-9]{11}$'))"): terhikki_1,
    ("ho-1", "status = 'rejected' implies statusReason.exists()"): ho_1,
    ("cf-1", "item.where(linkId = 'stage').answer.valueCoding.where(system = "
     "'https://fhir-plan-gateway.example/CodeSystem/feedback-stage').count() = 1"): cf_1,
    ("cf-2", "item.where(linkId = 'feedback').answer.all(valueString.exists())"): cf_2,
}  # fmt: skip


def native_predicate(key: str, expression: str) -> Predicate | None:
    """The native form of exactly this invariant text, or None (fhirpathpy evaluates it)."""
    return NATIVE.get((key, expression))


def with_native(key: str, expression: str, fhirpath: Invariant) -> Invariant:
    """`fhirpath` (the compiled expression), or the native predicate in its place when there is
    one for this exact text; the predicate hands shapes it does not model back to `fhirpath`."""
    predicate = native_predicate(key, expression)
    if predicate is None:
        return fhirpath

    def evaluate(value: Any, env: dict[str, Any]) -> list[Any]:
        try:
            return [predicate(value)]
        except Unmodelled:
            return fhirpath(value, env)

    return evaluate
