"""Schema migrations, numbered and applied in order; each dialect gets its own DDL text.

Never edit a migration that has shipped: add a new one. `schema_migrations` records what ran.
"""

from __future__ import annotations

INDEX_TABLES = {
    # table: column definitions after (res_type, res_id, param)
    "sp_token": "system TEXT NOT NULL, code TEXT NOT NULL",
    "sp_string": "norm TEXT NOT NULL, exact TEXT NOT NULL",
    "sp_reference": "target_type TEXT NOT NULL, target_id TEXT NOT NULL, url TEXT NOT NULL",
    "sp_date": "lo BIGINT NOT NULL, hi BIGINT NOT NULL",
    "sp_number": "value DOUBLE PRECISION NOT NULL",
    "sp_quantity": "value DOUBLE PRECISION NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL",
    "sp_uri": "value TEXT NOT NULL",
}

INDEX_LOOKUPS = {
    "sp_token": "code, system",
    "sp_string": "norm",
    "sp_reference": "target_id, target_type",
    "sp_date": "lo, hi",
    "sp_number": "value",
    "sp_quantity": "value",
    "sp_uri": "value",
}


def _index_ddl() -> list[str]:
    ddl = []
    for table, cols in INDEX_TABLES.items():
        ddl.append(
            f"CREATE TABLE {table} (res_type TEXT NOT NULL, res_id TEXT NOT NULL, "
            f"param TEXT NOT NULL, {cols})"
        )
        # param in the owner index too: with it SQLite picks this index for _include lookups
        # (a page of ids) instead of scanning every row of the parameter.
        ddl.append(f"CREATE INDEX {table}_owner ON {table} (res_type, res_id, param)")
        ddl.append(
            f"CREATE INDEX {table}_lookup ON {table} (res_type, param, {INDEX_LOOKUPS[table]})"
        )
    ddl.append("CREATE INDEX sp_reference_target ON sp_reference (target_type, target_id, param)")
    return ddl


def _v1(blob: str, serial: str, extra_resource_cols: str) -> list[str]:
    return [
        f"""CREATE TABLE resources (
            res_type TEXT NOT NULL, res_id TEXT NOT NULL, version INTEGER NOT NULL,
            lu_us BIGINT NOT NULL, deleted SMALLINT NOT NULL, body {blob} NOT NULL
            {extra_resource_cols},
            PRIMARY KEY (res_type, res_id))""",
        "CREATE INDEX resources_lu ON resources (res_type, lu_us)",
        f"""CREATE TABLE history (
            seq {serial}, res_type TEXT NOT NULL, res_id TEXT NOT NULL,
            version INTEGER NOT NULL, lu_us BIGINT NOT NULL, deleted SMALLINT NOT NULL,
            method TEXT NOT NULL, body {blob} NOT NULL,
            UNIQUE (res_type, res_id, version))""",
        "CREATE INDEX history_type_lu ON history (res_type, lu_us)",
        "CREATE INDEX history_lu ON history (lu_us)",
        """CREATE TABLE search_snapshots (
            id TEXT PRIMARY KEY, created_us BIGINT NOT NULL, total INTEGER NOT NULL,
            keys TEXT NOT NULL, query TEXT NOT NULL)""",
        *_index_ddl(),
    ]


MIGRATIONS: dict[str, list[list[str]]] = {
    "sqlite": [_v1("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT", "")],
    # PostgreSQL keeps the served bytes (body) and a JSONB copy for in-database queries.
    "postgres": [_v1("BYTEA", "BIGSERIAL PRIMARY KEY", ", content JSONB")],
}
