"""Chained (`subject:Patient.name=x`, several levels) and reverse-chained
(`_has:Task:focus:status=x`, nested) search parameters (http://hl7.org/fhir/R4/search.html#chaining).

Both nest the id subqueries of criteria.py through the reference index; nothing here runs SQL
or binds request text into SQL other than as `?` arguments. Every inner level (the chained
target, the `_has` source) passes through `ctx.visible` first: an untrusted caller's chain must
never match through, nor a `_has` probe reveal, a resource the caller may not see (hapi-fhir
#6065). Nothing here may join over inner rows without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.errors import invalid
from gateway.search import criteria
from gateway.search.query import known
from gateway.search.registry import SearchParam
from gateway.search.registry import served as is_served

if TYPE_CHECKING:
    from gateway.search.criteria import Ctx

Sql = tuple[str, list]


def _targets(sp: SearchParam, type_modifier: str | None, where: str) -> list[str]:
    if sp.type != "reference":
        raise invalid(f"'{sp.code}' is not a reference parameter and cannot be chained", where)
    targets = [type_modifier] if type_modifier else list(sp.targets)
    served = [t for t in targets if is_served(t)]
    if not served:
        raise invalid(f"the chain {where} names no resource type served here", where)
    return served


def chain(rtype: str, sp: SearchParam, tmod: str | None, rest: str, value: str, ctx: Ctx) -> Sql:
    where = f"{sp.code}.{rest}"
    parts = []
    for target in _targets(sp, tmod, where):
        if not known(target, rest):
            continue  # the chained parameter may exist on another of the possible targets
        inner, args = ctx.visible(target, criteria.ids_sql(target, rest, value, ctx))
        parts.append((f"target_type = ? AND target_id IN ({inner})", [target, *args]))
    if not parts:
        raise invalid(f"no target of '{sp.code}' has a parameter named by {where}", where)
    return criteria.index_ids("sp_reference", rtype, sp.code, *criteria.any_of(parts))


def has(rtype: str, name: str, value: str, ctx: Ctx) -> Sql:
    """`_has:Source:refparam:inner=value`: rtype ids referenced by matching Source resources."""
    pieces = name.split(":", 3)
    if len(pieces) < 4 or not all(pieces[1:]):
        raise invalid("_has takes the form _has:Type:reference:parameter", name)
    _, source, ref_code, inner = pieces
    if not is_served(source):
        raise invalid(f"_has names '{source[:60]}', which is not served here", name)
    ref = criteria.param(source, ref_code, name)
    if ref.type != "reference":
        raise invalid(f"'{ref_code[:60]}' is not a reference parameter of {source}", name)
    inner_sql, inner_args = ctx.visible(source, criteria.ids_sql(source, inner, value, ctx))
    sql = (
        "SELECT target_id FROM sp_reference WHERE res_type = ? AND param = ? "
        f"AND target_type = ? AND res_id IN ({inner_sql})"
    )
    return sql, [source, ref_code, rtype, *inner_args]
