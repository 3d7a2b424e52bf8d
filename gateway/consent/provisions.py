"""One Consent's provision tree against one access: permit, deny, or nothing.

R4 consent.html#Consent.provision, IHE PCF ("Privacy Consent on FHIR", permit/deny with
exceptions). How we read the tree:

- A nested provision without `type` flips its parent's type; with `type` it keeps its own. A root
  without `type` is a deny (fail closed).
- A nested provision inherits each condition it does not state (actor, period, purpose, class,
  action, data) from its parent and replaces those it states. So Mikko's nested "deny employment
  services" holds within the parent's period and purpose although its actor is not a parent actor.
- A permit applies only where it names the caller as recipient (actor role IRCP); a deny
  without actor applies to everyone (a client-level prohibition).
- Children are exceptions: where any child (recursively) applies, the children decide (deny wins
  among them); otherwise the provision itself decides if it applies.
- Conditions are three-valued. A condition we cannot evaluate (an unreadable period, an actor that
  is not an IRCP Organization/PractitionerRole, `securityLabel`, `code`, `dataPeriod`, `data` with
  a meaning other than `instance`) counts as met for a deny and unmet for a permit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.consent import conditions as cond
from gateway.consent.conditions import Access, Tri

CONDITIONS = ("actor", "period", "purpose", "class", "action", "data")
UNSUPPORTED = ("securityLabel", "code", "dataPeriod")


@dataclass(frozen=True)
class Scope:
    """The conditions in force at one provision: its own where stated, else its parent's."""

    values: Mapping[str, Any]
    unsupported: bool = False


@dataclass(frozen=True)
class Outcome:
    type: str  # "permit" | "deny"
    everyone: bool  # the deciding rule names no actor (a client-level prohibition if a deny)


def evaluate(root: Any, access: Access, extra_unknown: bool = False) -> Outcome | None:
    """What this Consent's provision tree says about `access`; None when no rule applies."""
    if not isinstance(root, Mapping):
        return None
    rtype = root.get("type") if root.get("type") in ("permit", "deny") else "deny"
    return _node(root, rtype, Scope({}, extra_unknown), access)


def _node(prov: Mapping[str, Any], ptype: str, parent: Scope, access: Access) -> Outcome | None:
    scope = _scope(prov, parent)
    children = [c for c in prov.get("provision") or [] if isinstance(c, Mapping)]
    found = [_node(c, _child_type(c, ptype), scope, access) for c in children]
    decided = [o for o in found if o is not None]
    if decided:
        denies = [o for o in decided if o.type == "deny"]
        return denies[0] if denies else decided[0]
    return Outcome(ptype, "actor" not in scope.values) if _applies(ptype, scope, access) else None


def _child_type(child: Mapping[str, Any], parent_type: str) -> str:
    own = child.get("type")
    if own in ("permit", "deny"):
        return str(own)
    return "deny" if parent_type == "permit" else "permit"


def _scope(prov: Mapping[str, Any], parent: Scope) -> Scope:
    values = dict(parent.values)
    values.update({name: prov[name] for name in CONDITIONS if prov.get(name) is not None})
    unsupported = parent.unsupported or any(prov.get(name) for name in UNSUPPORTED)
    return replace(parent, values=values, unsupported=unsupported)


def _applies(ptype: str, scope: Scope, access: Access) -> bool:
    if ptype == "permit" and "actor" not in scope.values:
        return False  # a permit must name its recipient (IRCP); there is no "share with anyone"
    results: list[Tri] = [cond.CHECKS[name](scope.values[name], access) for name in scope.values]
    if scope.unsupported:
        results.append(None)
    if ptype == "permit":
        return all(r is True for r in results)
    return all(r is not False for r in results)
