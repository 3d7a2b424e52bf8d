"""The main search statement: live resources of one type, AND of criteria, ordered, limited.

Runs unchanged on SQLite and PostgreSQL (`?` placeholders, no dialect-specific functions). The
default order is oldest-first (`lu_us`, then id) so pages are deterministic; `_sort` keys are
correlated MIN/MAX subqueries over the owner index, with missing values last. This module reads
only; it must never write.
"""

from __future__ import annotations

from gateway.errors import invalid
from gateway.search.criteria import TABLE, Ctx, ids_sql
from gateway.search.query import Query
from gateway.search.registry import params_for
from gateway.storage.base import Session

Sql = tuple[str, list]
# Chains over references to many types fan out (Communication?based-on.based-on… binds about a
# thousand values for one search value): a search binding more than this is refused before it
# reaches the database, which would either fail (SQLite's variable limit) or plan for seconds.
MAX_BOUND_VALUES = 5000
_SORT_COLUMN = {
    "token": ("code", "code"),
    "string": ("norm", "norm"),
    "reference": ("target_id", "target_id"),
    "date": ("lo", "hi"),
    "number": ("value", "value"),
    "quantity": ("value", "value"),
    "uri": ("value", "value"),
}


def where(q: Query, ctx: Ctx) -> Sql:
    """`WHERE …` over `resources r` for the query's criteria."""
    clauses, args = ["r.res_type = ?", "r.deleted = 0"], [q.resource_type]
    for c in q.criteria:
        sql, a = ids_sql(q.resource_type, c.name, c.value, ctx)
        clauses.append(f"r.res_id IN ({sql})")
        args.extend(a)
        if len(args) > MAX_BOUND_VALUES:
            raise invalid(
                "the search is too complex; use fewer values or shorter chains",
                c.name[:60],
                code="too-costly",
            )
    return "WHERE " + " AND ".join(clauses), args


def _sort_expr(rtype: str, code: str, desc: bool) -> Sql:
    if code == "_id":
        return "r.res_id", []
    if code == "_lastUpdated":
        return "r.lu_us", []
    sp = params_for(rtype)[code]
    asc_col, desc_col = _SORT_COLUMN.get(sp.type, ("code", "code"))
    fn, col = ("MAX", desc_col) if desc else ("MIN", asc_col)
    table = TABLE.get(sp.type, "sp_token")
    return (
        f"(SELECT {fn}(s.{col}) FROM {table} s WHERE s.res_type = r.res_type "
        "AND s.res_id = r.res_id AND s.param = ?)",
        [code],
    )


def ordered_ids(session: Session, q: Query, ctx: Ctx, limit: int) -> list[str]:
    """Ids of the matching resources in result order, at most `limit`."""
    clause, args = where(q, ctx)
    if not q.sort:
        # `+r.lu_us` keeps SQLite from walking the lu index in order instead of driving
        # from the selective criterion (checked with EXPLAIN QUERY PLAN).
        sql = f"SELECT r.res_id FROM resources r {clause} ORDER BY +r.lu_us, r.res_id LIMIT ?"
        return [row[0] for row in session.query(sql, [*args, limit])]
    cols, sort_args, order = [], [], []
    for n, (code, desc) in enumerate(q.sort):
        expr, a = _sort_expr(q.resource_type, code, desc)
        cols.append(f"{expr} AS s{n}")
        sort_args.extend(a)
        direction = "DESC" if desc else "ASC"
        order.append(f"(CASE WHEN s{n} IS NULL THEN 1 ELSE 0 END), s{n} {direction}")
    sql = (
        f"SELECT res_id FROM (SELECT r.res_id, r.lu_us, {', '.join(cols)} "
        f"FROM resources r {clause}) q ORDER BY {', '.join(order)}, lu_us, res_id LIMIT ?"
    )
    return [row[0] for row in session.query(sql, [*sort_args, *args, limit])]


def count(session: Session, q: Query, ctx: Ctx) -> int:
    clause, args = where(q, ctx)
    return int(session.query(f"SELECT COUNT(*) FROM resources r {clause}", args)[0][0])
