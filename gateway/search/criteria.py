"""Compile one search criterion into a portable SQL subquery selecting the matching `res_id`s.

Every subquery reads an index table (or `resources` for _id/_lastUpdated) by its lookup index, so
the main query drives from the selective criterion: `res_id IN (SELECT res_id FROM sp_… WHERE
res_type = ? AND param = ? AND …)`. Chains (`subject:Patient.name=x`) and reverse chains
(`_has:Task:focus:status=x`) nest the same subqueries. Comma-separated values are OR'd; repeated
parameters become separate criteria (AND). Never puts request text into SQL: values and parameter
codes are bound as `?` arguments; only table names from a fixed map appear in the SQL text.

A chain or `_has` level reads other resources than the ones searched: for a caller who may not
see everything, `Ctx.restrict` replaces that inner id subquery by the ids the caller may see
(search/visibility.py), so a probe answers as if hidden resources did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.errors import invalid
from gateway.search import chains, predicates
from gateway.search.registry import (
    RESOURCE_COLUMNS,
    SUPPORTED_MODIFIERS,
    SearchParam,
    params_for,
)

Sql = tuple[str, list]
TABLE = {
    "token": "sp_token",
    "string": "sp_string",
    "reference": "sp_reference",
    "date": "sp_date",
    "number": "sp_number",
    "quantity": "sp_quantity",
    "uri": "sp_uri",
}


# OR'd values of one criterion (`a,b,c`): each is one more level of SQL expression depth.
MAX_VALUES = 100


@dataclass(frozen=True)
class Ctx:
    base: str  # our own absolute service base, to recognise our own absolute references
    # (type, inner id subquery) -> SQL for the ids of it the caller may see, used by every chain
    # and `_has` level; None when the caller may see everything (trusted: plain subqueries).
    restrict: Callable[[str, Sql], Sql] | None = field(default=None, compare=False)

    def visible(self, rtype: str, inner: Sql) -> Sql:
        return inner if self.restrict is None else self.restrict(rtype, inner)


def param(rtype: str, code: str, where: str) -> SearchParam:
    sp = params_for(rtype).get(code)
    if sp is None:
        raise invalid(f"'{code[:60]}' is not a search parameter of {rtype}", where)
    return sp


def index_ids(table: str, rtype: str, param: str, cond: str, args: list) -> Sql:
    sql = f"SELECT res_id FROM {table} WHERE res_type = ? AND param = ?"
    return (f"{sql} AND ({cond})" if cond else sql), [rtype, param, *args]


def _live(rtype: str, cond: str, args: list) -> Sql:
    return f"SELECT res_id FROM resources WHERE res_type = ? AND deleted = 0 AND {cond}", [
        rtype,
        *args,
    ]


def any_of(parts: list[Sql]) -> Sql:
    return " OR ".join(f"({s})" for s, _ in parts), [a for _, args in parts for a in args]


def _value_sql(sp: SearchParam, modifier: str | None, value: str, ctx: Ctx, where: str) -> Sql:
    if sp.type == "token":
        return predicates.token(value, modifier)
    if sp.type == "string":
        return predicates.string(value, modifier)
    if sp.type == "uri":
        return predicates.uri(value, modifier)
    if sp.type == "reference":
        return predicates.reference(value, modifier, ctx.base, where)
    if sp.type == "date":
        return predicates.date(value, where)
    if sp.type == "number":
        return predicates.number(value, where)
    return predicates.quantity(value, where)


def _check_modifier(sp: SearchParam, rtype: str, modifier: str | None, where: str) -> None:
    if modifier is None:
        return
    allowed = SUPPORTED_MODIFIERS.get(sp.type, ())
    is_type = sp.type == "reference" and modifier in (sp.targets or (modifier,))
    if modifier not in allowed and not is_type:
        raise invalid(f"modifier ':{modifier[:40]}' is not supported on {where}", where)


def _resource_column(rtype: str, code: str, values: list[str], where: str) -> Sql:
    if code == "_id":
        marks = ", ".join("?" for _ in values)
        return _live(rtype, f"res_id IN ({marks})", values)
    cond, args = any_of([predicates.date(v, where, "lu_us", "lu_us") for v in values])
    return _live(rtype, f"({cond})", args)


def ids_sql(rtype: str, name: str, value: str, ctx: Ctx) -> Sql:
    """SQL selecting the ids of live `rtype` resources matching `name=value`."""
    if name.startswith("_has:"):
        return chains.has(rtype, name, value, ctx)
    head, _, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    sp = param(rtype, code, name)
    if rest:
        return chains.chain(rtype, sp, modifier or None, rest, value, ctx)
    _check_modifier(sp, rtype, modifier or None, name)
    if modifier and code in RESOURCE_COLUMNS:
        raise invalid(f"{code} takes no modifier", name)
    if modifier == "missing":
        if value not in ("true", "false"):
            raise invalid(":missing takes true or false", name)
        present = index_ids(TABLE.get(sp.type, "sp_token"), rtype, code, "", [])
        op = "NOT IN" if value == "true" else "IN"
        return _live(rtype, f"res_id {op} ({present[0]})", present[1])
    values = [v for v in _split(value) if v != ""]
    if not values:
        raise invalid(f"{name} needs a value", name)
    if len(values) > MAX_VALUES:
        raise invalid(f"{name} takes at most {MAX_VALUES} comma-separated values", name)
    if code in ("_id", "_lastUpdated"):
        return _resource_column(rtype, code, values, name)
    return _index_match(rtype, sp, modifier or None, values, ctx, name)


def _index_match(
    rtype: str, sp: SearchParam, modifier: str | None, values: list[str], ctx: Ctx, where: str
) -> Sql:
    if modifier == "text":
        parts = [predicates.string(v, None) for v in values]
        return index_ids("sp_string", rtype, sp.code + ":text", *any_of(parts))
    if modifier == "identifier":
        parts = [predicates.token(v, None) for v in values]
        return index_ids("sp_token", rtype, sp.code + ":identifier", *any_of(parts))
    value_mod = None if modifier == "not" else modifier
    parts = [_value_sql(sp, value_mod, v, ctx, where) for v in values]
    matching = index_ids(TABLE[sp.type], rtype, sp.code, *any_of(parts))
    if modifier == "not":  # resources with no matching value, including those without any
        return _live(rtype, f"res_id NOT IN ({matching[0]})", matching[1])
    return matching


def _split(value: str) -> list[str]:
    """Comma-separated OR values; `\\,` is a literal comma (search.html#escaping)."""
    parts, cur, i = [], "", 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in ",|$\\":
            cur += value[i + 1] if value[i + 1] == "," else value[i : i + 2]
            i += 2
            continue
        if value[i] == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += value[i]
        i += 1
    return [*parts, cur]
