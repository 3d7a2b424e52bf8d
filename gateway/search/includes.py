"""_include and _revinclude (http://hl7.org/fhir/R4/search.html#include): which other resources
to return with a page of matches, as (type, id) keys, read from the reference index.

`Source:param[:Target]` and `*` are supported, with `:iterate` applied to newly included
resources up to a fixed depth. This module only finds keys; it must never read or render
resource bodies (that happens at the one disclosure point in bundle.py). With a `visible` filter
(an untrusted caller), each iteration's new keys pass it before they are included or followed:
a hidden resource is never returned and `:iterate` never reads references out of it
(microsoft/fhir-server PR #5683).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import invalid
from gateway.search.predicates import like_escape
from gateway.search.registry import params_for, served
from gateway.storage.base import Session

Key = tuple[str, str]
MAX_ITERATIONS = 4  # bounds :iterate over cyclic graphs (CarePlan.partOf, Organization.partOf)


@dataclass(frozen=True)
class Spec:
    source: str
    param: str | None  # None for `*`
    target: str | None
    iterate: bool


def parse_spec(value: str, iterate: bool, where: str) -> Spec:
    parts = value.split(":")
    if parts == ["*"]:
        return Spec("*", None, None, iterate)
    if len(parts) not in (2, 3) or not served(parts[0]):
        raise invalid(f"{where} takes Type:parameter[:targetType] or *", where)
    source, param = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if param != "*":
        sp = params_for(source).get(param)
        if sp is None or sp.type != "reference":
            raise invalid(f"'{param[:60]}' is not a reference parameter of {source}", where)
    return Spec(source, None if param == "*" else param, target, iterate)


def _in(ids: list[str]) -> str:
    return ", ".join("?" for _ in ids)


# Only references to this server are followed (relative, or absolute under our base).
_LOCAL = " AND (url = '' OR url LIKE ? ESCAPE '\\')"


def _forward(session: Session, spec: Spec, rtype: str, ids: list[str], local: str) -> set[Key]:
    if spec.source not in ("*", rtype) or not ids:
        return set()
    # Empty target ids (external references) are dropped below, not in SQL: a range condition
    # on target_id would tempt the planner into the (type, param, target) index, which scans
    # every reference of the parameter, instead of the owner index for this page of ids.
    sql = (
        "SELECT target_type, target_id FROM sp_reference "
        f"WHERE res_type = ? AND res_id IN ({_in(ids)}){_LOCAL}"
    )
    args: list = [rtype, *ids, local]
    if spec.param:
        sql, args = sql + " AND param = ?", [*args, spec.param]
    if spec.target:
        sql, args = sql + " AND target_type = ?", [*args, spec.target]
    return {(t, i) for t, i in session.query(sql, args) if i}


def _reverse(session: Session, spec: Spec, rtype: str, ids: list[str], local: str) -> set[Key]:
    if not ids or (spec.target and spec.target != rtype):
        return set()
    sql = (
        "SELECT res_type, res_id FROM sp_reference "
        f"WHERE target_type = ? AND target_id IN ({_in(ids)}){_LOCAL}"
    )
    args: list = [rtype, *ids, local]
    if spec.source != "*":
        sql, args = sql + " AND res_type = ?", [*args, spec.source]
    if spec.param:
        sql, args = sql + " AND param = ?", [*args, spec.param]
    return {(t, i) for t, i in session.query(sql, args)}


def included_keys(
    session: Session,
    base: str,
    matches: list[Key],
    includes: list[Spec],
    revincludes: list[Spec],
    visible: Callable[[list[Key]], list[Key]] | None = None,
) -> list[Key]:
    """Keys to include with `matches` (never the matches themselves), in a stable order.
    `visible(keys)`: the ones among `keys` the caller may see (None: all of them)."""
    local = like_escape(base) + "/%"
    seen: set[Key] = set(matches)
    found: list[Key] = []
    frontier, first = list(matches), True
    for _ in range(MAX_ITERATIONS):
        new: set[Key] = set()
        for rtype in {t for t, _ in frontier}:
            ids = [i for t, i in frontier if t == rtype]
            for spec in includes:
                if first or spec.iterate:
                    new |= _forward(session, spec, rtype, ids, local)
            for spec in revincludes:
                if first or spec.iterate:
                    new |= _reverse(session, spec, rtype, ids, local)
        fresh = sorted(k for k in new - seen if served(k[0]))
        seen.update(fresh)  # hidden ones too: decided once, never asked again
        if visible is not None and fresh:
            fresh = visible(fresh)
        if not fresh:
            break
        found.extend(fresh)
        frontier, first = fresh, False
    return found
