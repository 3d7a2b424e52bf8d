"""Schema migrations, numbered and applied in order; each dialect gets its own DDL text.

Never edit a migration that has shipped: add a new one. `schema_migrations` records what ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


CREATE_LEDGER = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
DONE = "SELECT version FROM schema_migrations"
RECORD = "INSERT INTO schema_migrations (version) VALUES (?)"


def apply_pending(dialect: str, execute: Callable[..., Any]) -> None:
    """Run every migration of `dialect` not yet recorded, inside the caller's transaction
    (which also holds whatever lock keeps two starting processes from migrating at once)."""
    execute(CREATE_LEDGER)
    done = {row[0] for row in execute(DONE).fetchall()}
    for number, statements in enumerate(MIGRATIONS[dialect], start=1):
        if number in done:
            continue
        for statement in statements:
            execute(statement)
        execute(RECORD if dialect == "sqlite" else RECORD.replace("?", "%s"), (number,))


# 2: client-assertion jti values seen (gateway/security/replay.py), shared by every process;
# a row lives until its assertion expires.
_AUTH_JTI = [
    "CREATE TABLE auth_jti (jti TEXT PRIMARY KEY, exp_us BIGINT NOT NULL)",
    "CREATE INDEX auth_jti_exp ON auth_jti (exp_us)",
]

# 3: HL7 v2 intake (issue 5). `hl7v2_messages`: every message applied, per sender and MSH-10,
# with the ACK it got; written in the same transaction as the message's writes, so a repeat is
# answered with the stored ACK and changes nothing (gateway/intake/hl7v2.py). `hl7v2_outbox`:
# messages we send back (RRI^I12) to a record system's MLLP endpoint, enqueued in the same
# transaction as the change they report and relayed with retries (gateway/intake/return_path.py).
_HL7V2 = [
    """CREATE TABLE hl7v2_messages (
        sender TEXT NOT NULL, control_id TEXT NOT NULL, event TEXT NOT NULL, ack TEXT NOT NULL,
        received_us BIGINT NOT NULL, PRIMARY KEY (sender, control_id))""",
    """CREATE TABLE hl7v2_outbox (
        id TEXT PRIMARY KEY, destination TEXT NOT NULL, message TEXT NOT NULL,
        created_us BIGINT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_us BIGINT NOT NULL,
        sent_us BIGINT, last_error TEXT)""",
    "CREATE INDEX hl7v2_outbox_due ON hl7v2_outbox (sent_us, next_us)",
]

# 4: the SHA-256 of each applied message (segment ends normalised), so a different message that
# reuses an MSH-10 is refused instead of answered with the earlier message's ACK. Rows logged
# before this migration have NULL: unknown, treated as the same message.
_HL7V2_DIGEST = ["ALTER TABLE hl7v2_messages ADD COLUMN digest TEXT"]


def _delivery(serial: str) -> list[str]:
    """5: partner delivery (issue 6, gateway/delivery/). `subscriptions`: the delivery state of
    each stored Subscription resource (its parsed spec, server-owned status, the last event
    number given, the heartbeat clock), kept in step by the write hook in the same transaction.
    `outbox`: everything we push, in one table: subscription notifications (channel rest-hook,
    stream = subscription id, seq = event number, 0 for a handshake) and HL7 v2 messages (channel
    mllp, stream = the record system's endpoint), written in the transaction of the change they
    report. `pos` orders a stream: a subscription's rows are numbered under its row lock, so pos
    order is commit order. The HL7 v2 outbox of migration 3 moves in here."""
    return [
        """CREATE TABLE subscriptions (
            id TEXT PRIMARY KEY, organization TEXT NOT NULL, topic TEXT NOT NULL,
            resource_type TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,
            events BIGINT NOT NULL DEFAULT 0, last_sent_us BIGINT, error TEXT)""",
        "CREATE INDEX subscriptions_type ON subscriptions (resource_type)",
        f"""CREATE TABLE outbox (
            pos {serial}, id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL, stream TEXT NOT NULL,
            seq BIGINT NOT NULL, kind TEXT NOT NULL, focus TEXT, payload TEXT NOT NULL,
            destination TEXT NOT NULL, created_us BIGINT NOT NULL, since_us BIGINT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, next_us BIGINT NOT NULL, sent_us BIGINT,
            dead_us BIGINT, last_error TEXT)""",
        # What is still to send, in order per stream (partial: sent rows never slow a claim).
        "CREATE INDEX outbox_pending ON outbox (stream, pos) "
        "WHERE sent_us IS NULL AND dead_us IS NULL",
        "CREATE INDEX outbox_seq ON outbox (stream, seq)",  # $events, the listing
        "CREATE INDEX outbox_sent ON outbox (sent_us)",  # pruning delivered rows
        # Parked RRIs (next_us far away) become dead letters (dead since they were made: when they
        # were parked is not known); the rest keep their schedule.
        """INSERT INTO outbox (id, channel, stream, seq, kind, focus, payload, destination,
            created_us, since_us, attempts, next_us, sent_us, dead_us, last_error)
            SELECT id, 'mllp', destination, 0, 'message', NULL, message, destination,
            created_us, created_us, attempts, next_us, sent_us,
            CASE WHEN sent_us IS NULL AND next_us >= 4611686018427387904 THEN created_us END,
            last_error FROM hl7v2_outbox ORDER BY created_us, id""",
        "DROP TABLE hl7v2_outbox",
        # `inbox`: the notification events this gateway applied as a partner of an upstream
        # (gateway/delivery/inbox.py), each in the transaction of its writes, so a repeat (the
        # same number, or the same event id) is answered and changes nothing.
        """CREATE TABLE inbox (
            upstream TEXT NOT NULL, subscription TEXT NOT NULL, event_number BIGINT NOT NULL,
            event_id TEXT, received_us BIGINT NOT NULL,
            PRIMARY KEY (upstream, subscription, event_number))""",
        "CREATE UNIQUE INDEX inbox_event ON inbox (upstream, event_id)",
    ]


MIGRATIONS: dict[str, list[list[str]]] = {
    "sqlite": [
        _v1("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT", ""),
        _AUTH_JTI,
        _HL7V2,
        _HL7V2_DIGEST,
        _delivery("INTEGER PRIMARY KEY AUTOINCREMENT"),
    ],
    # PostgreSQL keeps the served bytes (body) and a JSONB copy for in-database queries.
    "postgres": [
        _v1("BYTEA", "BIGSERIAL PRIMARY KEY", ", content JSONB"),
        _AUTH_JTI,
        _HL7V2,
        _HL7V2_DIGEST,
        _delivery("BIGSERIAL PRIMARY KEY"),
    ],
}
