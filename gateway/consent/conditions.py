"""Each Consent.provision condition checked against one access, answering True, False or None.

None means "cannot be evaluated here" (provisions.py decides what that means for permit and
deny). R4 consent.html#Consent.provision.actor / .period / .purpose / .class / .action / .data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.consent.periods import Unreadable, bounds
from gateway.consent.records import Key, has_coding, reference_key
from gateway.consent.vocabulary import READ_ACTIONS, RECIPIENT_ROLE, RESOURCE_TYPES_SYSTEM, Coding

Tri = bool | None


@dataclass(frozen=True)
class Access:
    """One read: who (as reference keys they answer to), why, what, and when (microseconds)."""

    actors: frozenset[Key]  # ("Organization", org) and ("PractitionerRole", role) of the caller
    purpose: Coding | None
    resource: Key
    profiles: frozenset[str]
    now_us: int


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actor(value: Any, access: Access) -> Tri:
    unknown = False
    for item in _list(value):
        key = reference_key(item.get("reference")) if isinstance(item, dict) else None
        if not key or key[0] not in ("Organization", "PractitionerRole"):
            unknown = True
        elif not has_coding(item.get("role"), RECIPIENT_ROLE):
            unknown = True  # a custodian or source actor: not a recipient rule we evaluate
        elif key in access.actors:
            return True
    return None if unknown else False


def period(value: Any, access: Access) -> Tri:
    try:
        low, high = bounds(value)
    except Unreadable:
        return None
    return low <= access.now_us <= high


def purpose(value: Any, access: Access) -> Tri:
    if access.purpose is None:
        # The caller states none: unknown, so a purpose-bound permit does not apply and a
        # purpose-bound deny does (fail closed; X-Purpose-Of-Use states it per request).
        return None
    return any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) == access.purpose
        for c in _list(value)
    )


def resource_class(value: Any, access: Access) -> Tri:
    for c in _list(value):
        if not isinstance(c, dict):
            continue
        if c.get("system") in (None, RESOURCE_TYPES_SYSTEM) and c.get("code") == access.resource[0]:
            return True
        if c.get("code") in access.profiles:  # a profile canonical as the class
            return True
    return False


def action(value: Any, access: Access) -> Tri:
    return any(has_coding(concept, code) for concept in _list(value) for code in READ_ACTIONS)


def data(value: Any, access: Access) -> Tri:
    unknown = False
    for item in _list(value):
        if not isinstance(item, dict):
            unknown = True
            continue
        if reference_key(item.get("reference")) == access.resource:
            return True
        unknown = unknown or item.get("meaning") != "instance"
    return None if unknown else False


CHECKS: dict[str, Callable[[Any, Access], Tri]] = {
    "actor": actor,
    "period": period,
    "purpose": purpose,
    "class": resource_class,
    "action": action,
    "data": data,
}
