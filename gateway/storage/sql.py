"""The SQL implementation of the storage contract, shared by SQLite and PostgreSQL.

SQL is written once with `?` placeholders; a `Dialect` adapts placeholders, locking and the few
statements that differ. A write stores the new current version, appends it to history and
replaces the resource's search-index rows, all inside the caller's transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.storage.base import Indexer, IndexRows, StoredVersion, instant
from gateway.storage.migrations import INDEX_TABLES


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str  # "?" (sqlite3) or "%s" (psycopg)
    upsert_resource: str
    insert_resource: str  # a brand-new resource: a plain INSERT (an id clash fails, never merges)
    advisory_lock: str | None  # SQL taking one text key, or None where writers are global

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


_UPSERT = (
    "INSERT INTO resources (res_type, res_id, version, lu_us, deleted, body{cols}) "
    "VALUES (?, ?, ?, ?, ?, ?{vals}) ON CONFLICT (res_type, res_id) DO UPDATE SET "
    "version = excluded.version, lu_us = excluded.lu_us, deleted = excluded.deleted, "
    "body = excluded.body{sets}"
)

SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    upsert_resource=_UPSERT.format(cols="", vals="", sets=""),
    insert_resource=_UPSERT.format(cols="", vals="", sets="").split(" ON CONFLICT")[0],
    advisory_lock=None,  # BEGIN IMMEDIATE already serialises every writer
)
POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    upsert_resource=_UPSERT.format(
        cols=", content",
        vals=", CAST(convert_from(?, 'UTF8') AS jsonb)",
        sets=", content = excluded.content",
    ),
    insert_resource=_UPSERT.format(
        cols=", content", vals=", CAST(convert_from(?, 'UTF8') AS jsonb)", sets=""
    ).split(" ON CONFLICT")[0],
    advisory_lock="SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
)

_COLS = "res_type, res_id, version, lu_us, deleted, body"
_HCOLS = "res_type, res_id, version, lu_us, deleted, body, method"
_INSERT_INDEX = {
    table: "INSERT INTO {t} (res_type, res_id, param, {c}) VALUES (?, ?, ?, {p})".format(
        t=table,
        c=", ".join(col.split()[0] for col in cols.split(", ")),
        p=", ".join("?" for _ in cols.split(", ")),
    )
    for table, cols in INDEX_TABLES.items()
}


# PostgreSQL, a batch of new resources (`SqlSession.insert_many`): one INSERT per table whose
# parameters are arrays, one element per row, that the server unnests back into rows. The array
# types are the column types; version (1) and deleted (0) are constants, as in `insert_new`.
# unnest yields the elements in array order, so history.seq follows the batch's order. `%b`:
# the arrays go in binary format; psycopg's text format quotes and escapes every element in
# Python, which for 2,000 AuditEvents cost about as much as the per-row statements it replaces.
_PG_MANY_RESOURCES = (
    "INSERT INTO resources (res_type, res_id, version, lu_us, deleted, body, content) "
    "SELECT t, i, 1, lu, 0, b, CAST(convert_from(b, 'UTF8') AS jsonb) "
    "FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bytea[]) AS u(t, i, lu, b)"
)
_PG_MANY_HISTORY = (
    f"INSERT INTO history ({_HCOLS}) SELECT t, i, 1, lu, 0, b, m "
    "FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bytea[], %b::text[]) "
    "AS u(t, i, lu, b, m)"
)


def _array_of(column: str) -> str:
    """`lo BIGINT NOT NULL` -> `%b::bigint[]`: the array parameter carrying a column's values."""
    return "%b::" + column.split(" ", 1)[1].removesuffix(" NOT NULL").lower() + "[]"


_PG_MANY_INDEX = {
    table: "INSERT INTO {t} (res_type, res_id, param, {c}) SELECT * FROM unnest({a})".format(
        t=table,
        c=", ".join(col.split()[0] for col in cols.split(", ")),
        a=", ".join(["%b::text[]"] * 3 + [_array_of(col) for col in cols.split(", ")]),
    )
    for table, cols in INDEX_TABLES.items()
}


def _multi_row(table: str, rtype: str, rid: str, values: list[tuple]) -> tuple[str, list[Any]]:
    head, one = _INSERT_INDEX[table].split(" VALUES ")
    flat: list[Any] = []
    for v in values:
        flat.extend((rtype, rid, *v))
    return f"{head} VALUES {', '.join([one] * len(values))}", flat


def _pg_insert_new(prepared: Prepared) -> tuple[str, list[Any]]:
    """One statement writing resource, history and index rows of a new resource: a single
    round trip, and atomic on its own (so it needs no BEGIN/COMMIT outside a transaction)."""
    sv = prepared.version
    ctes = [
        "r AS (" + POSTGRES.insert_resource + ")",
        f"h AS (INSERT INTO history ({_HCOLS}) VALUES (?, ?, 1, ?, 0, ?, ?))",
    ]
    params: list[Any] = [sv.resource_type, sv.id, 1, sv.last_updated_us, 0, sv.body, sv.body]
    params += [sv.resource_type, sv.id, sv.last_updated_us, sv.body, sv.method]
    for table in INDEX_TABLES:
        values = getattr(prepared.rows, table.removeprefix("sp_"))
        if values:
            sql, flat = _multi_row(table, sv.resource_type, sv.id, values)
            ctes.append(f"i_{table} AS ({sql})")
            params += flat
    return "WITH " + ", ".join(ctes) + " SELECT 1", params


def _batch_index_rows(prepared: Sequence[Prepared]) -> Iterator[tuple[str, list[tuple]]]:
    """(index table, its rows) of a batch of new resources, each row led by its resource's
    type and id; tables with no rows left out (`insert_many` on either store)."""
    for table in INDEX_TABLES:
        name = table.removeprefix("sp_")
        rows = [
            (p.version.resource_type, p.version.id, *row)
            for p in prepared
            for row in getattr(p.rows, name)
        ]
        if rows:
            yield table, rows


def _now_us() -> int:
    return time.time_ns() // 1000


def _row(r: Sequence[Any], method: str = "PUT") -> StoredVersion:
    return StoredVersion(r[0], r[1], int(r[2]), int(r[3]), bool(r[4]), bytes(r[5]), method)


@dataclass(frozen=True)
class Prepared:
    """A new version made ready outside the write transaction (body and index rows built)."""

    version: StoredVersion
    rows: IndexRows


def prepare_new(
    resource_type: str, id: str, resource: dict[str, Any], indexer: Indexer, method: str = "POST"
) -> Prepared:
    """Version 1 of a resource whose id the server just assigned (so no earlier version can
    exist): everything but the INSERTs, so the writer holds its lock as briefly as possible."""
    lu_us = _now_us()
    stored = canonical(resource_type, id, 1, lu_us, resource)
    body = orjson.dumps(stored)
    sv = StoredVersion(resource_type, id, 1, lu_us, False, body, method)
    return Prepared(sv, indexer(stored))


def canonical(resource_type: str, id: str, version: int, lu_us: int, resource: dict) -> dict:
    """The stored shape: resourceType, id, meta (server-owned fields set) first, then the rest."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(lu_us)
    out: dict[str, Any] = {"resourceType": resource_type, "id": id, "meta": meta}
    for k, v in resource.items():
        if k not in out:
            out[k] = v
    return out


class SqlSession:
    """One open transaction on a DB-API connection."""

    def __init__(self, conn: Any, dialect: Dialect, indexer: Indexer) -> None:
        self.conn = conn
        self.d = dialect
        self.dialect = dialect.name
        self.indexer = indexer

    # -- reads ---------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        cur = self.conn.execute(self.d.sql(sql), tuple(params))
        return cur.fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(self.d.sql(sql), tuple(params))

    def one_of(
        self, column: str, values: Sequence[Any], sql_type: str
    ) -> list[tuple[str, list[Any]]]:
        """`column` is one of `values`, as (condition, parameters) parts to run one statement
        each. PostgreSQL: one part, `column = ANY(array)`, whatever the number of values: the
        same statement text every time, so psycopg's parsed-query cache and its prepared
        statements serve it (an IN list of varying length is parsed afresh in Python each
        time). SQLite: IN lists of at most 500 (it has no arrays)."""
        if not values:
            return []
        if self.dialect == "postgres":
            return [(f"{column} = ANY(CAST(? AS {sql_type}[]))", [list(values)])]
        return [
            (f"{column} IN ({', '.join('?' for _ in part)})", list(part))
            for part in (values[i : i + 500] for i in range(0, len(values), 500))
        ]

    def current(self, resource_type: str, id: str) -> StoredVersion | None:
        rows = self.query(
            f"SELECT {_COLS} FROM resources WHERE res_type = ? AND res_id = ?",
            (resource_type, id),
        )
        return _row(rows[0]) if rows else None

    def version(self, resource_type: str, id: str, version: int) -> StoredVersion | None:
        rows = self.query(
            f"SELECT {_HCOLS} FROM history WHERE res_type = ? AND res_id = ? AND version = ?",
            (resource_type, id, version),
        )
        return _row(rows[0], rows[0][6]) if rows else None

    def versions_many(
        self, keys: Sequence[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], StoredVersion]:
        found: dict[tuple[str, str, int], StoredVersion] = {}
        # A join from the keys, each one index lookup (SQLite scans the whole table for
        # `(a, b, c) IN (VALUES …)`). PostgreSQL: the keys as three arrays, one statement text
        # (parsed once by psycopg, then prepared); SQLite: a CTE of VALUES, 300 keys a time.
        cols = ", ".join(f"h.{c}" for c in _HCOLS.split(", "))
        join = (
            f" SELECT {cols} FROM k CROSS JOIN history h "
            "WHERE h.res_type = k.t AND h.res_id = k.i AND h.version = k.v"
        )
        if not keys:
            return found
        if self.dialect == "postgres":
            keyed = "WITH k (t, i, v) AS (SELECT * FROM unnest(CAST(? AS TEXT[]), "
            keyed += "CAST(? AS TEXT[]), CAST(? AS BIGINT[])))"
            parts = [(keyed + join, [list(c) for c in zip(*keys, strict=True)])]
        else:
            parts = []
            for start in range(0, len(keys), 300):  # three parameters each
                part = keys[start : start + 300]
                marks = ", ".join("(?, ?, CAST(? AS INTEGER))" for _ in part)
                parts.append(
                    (f"WITH k (t, i, v) AS (VALUES {marks})" + join, [x for k in part for x in k])
                )
        for sql, params in parts:
            for r in self.query(sql, params):
                found[(str(r[0]), str(r[1]), int(r[2]))] = _row(r, r[6])
        return found

    def current_many(self, keys: Sequence[tuple[str, str]]) -> list[StoredVersion]:
        found: dict[tuple[str, str], StoredVersion] = {}
        by_type: dict[str, list[str]] = {}
        for t, i in keys:
            by_type.setdefault(t, []).append(i)
        for t, ids in by_type.items():
            for where, params in self.one_of("res_id", ids, "TEXT"):
                for r in self.query(
                    f"SELECT {_COLS} FROM resources WHERE res_type = ? AND deleted = 0 AND {where}",
                    (t, *params),
                ):
                    found[(r[0], r[1])] = _row(r)
        return [found[k] for k in keys if k in found]

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        since_us: int | None,
        at_most_us: int | None,
        offset: int,
        count: int,
    ) -> tuple[list[StoredVersion], int]:
        where, params = [], []
        if resource_type is not None:
            where.append("res_type = ?")
            params.append(resource_type)
        if id is not None:
            where.append("res_id = ?")
            params.append(id)
        if since_us is not None:
            where.append("lu_us >= ?")
            params.append(since_us)
        if at_most_us is not None:
            where.append("lu_us <= ?")
            params.append(at_most_us)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        total = self.query(f"SELECT COUNT(*) FROM history {clause}", params)[0][0]
        rows = self.query(
            f"SELECT {_HCOLS} FROM history {clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
            (*params, count, offset),
        )
        return [_row(r, r[6]) for r in rows], int(total)

    # -- writes --------------------------------------------------------------------------
    def lock(self, key: str) -> None:
        if self.d.advisory_lock:
            self.execute(self.d.advisory_lock, (key,))

    def write(
        self, resource_type: str, id: str, resource: dict[str, Any], method: str
    ) -> StoredVersion:
        self.lock(f"{resource_type}/{id}")
        prev = self.current(resource_type, id)
        version = prev.version + 1 if prev else 1
        lu_us = max(_now_us(), prev.last_updated_us + 1 if prev else 0)
        stored = canonical(resource_type, id, version, lu_us, resource)
        body = orjson.dumps(stored)
        self._store(resource_type, id, version, lu_us, False, body, method)
        self._reindex(resource_type, id, self.indexer(stored), fresh=prev is None)
        return StoredVersion(resource_type, id, version, lu_us, False, body, method)

    def insert_new(self, prepared: Prepared) -> StoredVersion:
        """Store a `prepare_new` version; no lock or lookup: its server-assigned id is fresh."""
        sv = prepared.version
        if self.d.name == "postgres":
            self.execute(*_pg_insert_new(prepared))
            return sv
        self._store(
            sv.resource_type, sv.id, 1, sv.last_updated_us, False, sv.body, sv.method, new=True
        )
        self._reindex(sv.resource_type, sv.id, prepared.rows, fresh=True)
        return sv

    def insert_many(self, prepared: Sequence[Prepared]) -> None:
        """`insert_new` for several (a batch of AuditEvents): a few statements for the whole
        batch instead of one statement (PostgreSQL) or six (SQLite) per resource."""
        if len(prepared) < 2:
            for item in prepared:
                self.insert_new(item)
            return
        if self.d.name == "postgres":
            self._pg_insert_many(prepared)
            return
        # SQLite: one executemany per table (in-process: executemany is the fastest path).
        versions = [p.version for p in prepared]
        cur = self.conn.cursor()
        cur.executemany(
            self.d.insert_resource,
            [(v.resource_type, v.id, 1, v.last_updated_us, 0, v.body) for v in versions],
        )
        cur.executemany(
            f"INSERT INTO history ({_HCOLS}) VALUES (?, ?, 1, ?, 0, ?, ?)",
            [(v.resource_type, v.id, v.last_updated_us, v.body, v.method) for v in versions],
        )
        for table, rows in _batch_index_rows(prepared):
            cur.executemany(_INSERT_INDEX[table], rows)

    def _pg_insert_many(self, prepared: Sequence[Prepared]) -> None:
        """One INSERT per table, its values sent as one array per column (`_PG_MANY_*`): one
        round trip per table. An executemany, even pipelined, is one statement per row: a
        relay round writing 2,000 AuditEvents made 31,000 of them (~1.5 s of psycopg wait).
        The texts are constant, so psycopg prepares each once per connection."""
        from psycopg import DataError  # loaded already: this is a psycopg connection

        versions = [p.version for p in prepared]
        types = [v.resource_type for v in versions]
        ids = [v.id for v in versions]
        lus = [v.last_updated_us for v in versions]
        bodies = [v.body for v in versions]
        cur = self.conn.cursor()
        cur.execute(_PG_MANY_RESOURCES, (types, ids, lus, bodies))
        cur.execute(_PG_MANY_HISTORY, (types, ids, lus, bodies, [v.method for v in versions]))
        for table, rows in _batch_index_rows(prepared):
            try:
                cur.execute(_PG_MANY_INDEX[table], [list(c) for c in zip(*rows, strict=True)])
            except DataError as e:
                if e.sqlstate is not None:  # PostgreSQL refused the rows
                    raise
                # psycopg refused, before sending anything: it sends a list as an array of one
                # type, and a column mixed Python types (an int among a text column's str,
                # outside IndexRows' types). Row by row, as `insert_new` sends them, PostgreSQL
                # converts each value to the column's type.
                cur.executemany(self.d.sql(_INSERT_INDEX[table]), rows)

    def delete(self, resource_type: str, id: str) -> StoredVersion | None:
        self.lock(f"{resource_type}/{id}")
        prev = self.current(resource_type, id)
        if prev is None or prev.deleted:
            return None
        version, lu_us = prev.version + 1, max(_now_us(), prev.last_updated_us + 1)
        self._store(resource_type, id, version, lu_us, True, b"", "DELETE")
        self._reindex(resource_type, id, IndexRows())
        return StoredVersion(resource_type, id, version, lu_us, True, b"", "DELETE")

    def _store(
        self,
        rtype: str,
        rid: str,
        version: int,
        lu_us: int,
        deleted: bool,
        body: bytes,
        method: str,
        new: bool = False,
    ) -> None:
        params: tuple = (rtype, rid, version, lu_us, int(deleted), body)
        if self.d.name == "postgres":
            params = (*params, body if body else b"null")
        self.execute(self.d.insert_resource if new else self.d.upsert_resource, params)
        self.execute(
            f"INSERT INTO history ({_HCOLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rtype, rid, version, lu_us, int(deleted), body, method),
        )

    def _reindex(self, rtype: str, rid: str, rows: IndexRows, fresh: bool = False) -> None:
        cur = self.conn.cursor()
        for table in INDEX_TABLES:
            if not fresh:  # a brand-new resource has no rows to remove
                cur.execute(
                    self.d.sql(f"DELETE FROM {table} WHERE res_type = ? AND res_id = ?"),
                    (rtype, rid),
                )
            values = getattr(rows, table.removeprefix("sp_"))
            if not values:
                continue
            if self.d.name == "sqlite":  # in-process: executemany is the fastest path
                cur.executemany(_INSERT_INDEX[table], [(rtype, rid, *v) for v in values])
            else:  # one multi-row INSERT per table: one round trip instead of one per row
                sql, flat = _multi_row(table, rtype, rid, values)
                cur.execute(self.d.sql(sql), flat)
