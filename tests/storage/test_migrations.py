"""Schema migrations are idempotent; SQLite runs in WAL mode with synchronous=FULL; migrations
that move data (4: the message digest, 5: the HL7 v2 outbox into the general outbox) keep it."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway.storage import open_repository
from gateway.storage.migrations import MIGRATIONS
from tests.conftest import BACKENDS
from tests.e2e.server import fresh_database
from tests.storage.factories import identifier_index, patient


def _migrations_done(url: str) -> list[int]:
    repo = open_repository(url, identifier_index)
    try:
        with repo.reader() as s:
            return [
                int(r[0]) for r in s.query("SELECT version FROM schema_migrations ORDER BY version")
            ]
    finally:
        repo.close()


def test_opening_twice_migrates_once_and_keeps_data(database_url: str) -> None:
    first = open_repository(database_url, identifier_index)
    with first.writer() as s:
        s.write("Patient", "m", patient("m"), "POST")
    # A second process starting against the same database while the first is running.
    second = open_repository(database_url, identifier_index)
    with second.reader() as s:
        stored = s.current("Patient", "m")
    second.close()
    first.close()
    assert stored is not None and stored.version == 1
    expected = list(range(1, len(MIGRATIONS[first.dialect]) + 1))
    assert _migrations_done(database_url) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_first_start_migrates_once(backend: str, tmp_path: Path, worker_id: str) -> None:
    url = fresh_database(backend, tmp_path, "migrate", worker_id)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_repository(url, identifier_index).close()
        except BaseException as e:  # collected and re-raised in the test thread
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert _migrations_done(url) == list(range(1, len(MIGRATIONS[backend]) + 1))


def test_sqlite_pragmas_are_in_force(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path}/p.db", identifier_index)
    try:
        for session in (repo.reader, repo.writer):
            with session() as s:
                assert s.query("PRAGMA journal_mode")[0][0] == "wal"
                assert s.query("PRAGMA synchronous")[0][0] == 2  # FULL
    finally:
        repo.close()
    # WAL is a property of the file: a plain connection sees it too.
    with sqlite3.connect(tmp_path / "p.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_bare_path_and_url_open_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "g.db"
    a = open_repository(f"sqlite:///{path}", identifier_index)
    with a.writer() as s:
        s.write("Patient", "same", patient(), "POST")
    a.close()
    b = open_repository(str(path), identifier_index)
    with b.reader() as s:
        assert s.current("Patient", "same") is not None
    b.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_4_adds_the_message_digest_and_keeps_logged_messages(
    backend: str, tmp_path: Path, worker_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at migration 3 (HL7 v2 messages logged without digest) is upgraded in place:
    the rows stay, their digest NULL (unknown; gateway/intake/hl7v2.py treats it as matching)."""
    url = fresh_database(backend, tmp_path, "migrate4", worker_id)
    full = MIGRATIONS[backend]
    assert full[3] == ["ALTER TABLE hl7v2_messages ADD COLUMN digest TEXT"]
    monkeypatch.setitem(MIGRATIONS, backend, full[:3])
    old = open_repository(url, identifier_index)
    with old.writer() as s:
        s.execute(
            "INSERT INTO hl7v2_messages (sender, control_id, event, ack, received_us) "
            "VALUES ('s', 'c1', 'ADT^A04', 'ACK', 1)"
        )
    old.close()
    monkeypatch.setitem(MIGRATIONS, backend, full)
    new = open_repository(url, identifier_index)
    try:
        with new.reader() as s:
            rows = s.query("SELECT control_id, ack, digest FROM hl7v2_messages")
    finally:
        new.close()
    assert [tuple(r) for r in rows] == [("c1", "ACK", None)]
    assert _migrations_done(url) == list(range(1, len(full) + 1))


PARKED = 2**62  # the next_us of a parked row in the HL7 v2 outbox (migration 3)
OLD_ROWS = [
    # id, destination, message, created_us, attempts, next_us, sent_us, last_error
    ("pending", "mllp://a:1", "MSH|1", 10, 2, 5_000, None, "nack-AR"),
    ("sent", "mllp://a:1", "MSH|2", 20, 1, 20, 30, None),
    ("parked", "mllp://b:2", "MSH|3", 30, 1, PARKED, None, "nack-AE"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_5_moves_the_hl7v2_outbox_into_the_general_outbox(
    backend: str, tmp_path: Path, worker_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at migration 4 with RRIs queued: each becomes an mllp row of the general
    outbox on its destination's stream, a pending one keeping its schedule, a sent one sent, a
    parked one a dead letter with its error; the old table is gone."""
    url = fresh_database(backend, tmp_path, "migrate5", worker_id)
    full = MIGRATIONS[backend]
    monkeypatch.setitem(MIGRATIONS, backend, full[:4])
    old = open_repository(url, identifier_index)
    with old.writer() as s:
        for row in OLD_ROWS:
            s.execute(
                "INSERT INTO hl7v2_outbox (id, destination, message, created_us, attempts, "
                "next_us, sent_us, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
    old.close()
    monkeypatch.setitem(MIGRATIONS, backend, full)
    new = open_repository(url, identifier_index)
    try:
        with new.reader() as s:
            found = s.query(f"SELECT {', '.join(OUTBOX)} FROM outbox ORDER BY pos")
            tables = _tables(s)
    finally:
        new.close()
    pending, sent, parked = (dict(zip(OUTBOX, r, strict=True)) for r in found)
    for row, (id, destination, message, created, attempts, *_) in zip(
        (pending, sent, parked), OLD_ROWS, strict=True
    ):
        assert row["id"] == id
        assert (row["channel"], row["kind"], row["seq"]) == ("mllp", "message", 0)
        assert row["focus"] is None
        assert row["stream"] == row["destination"] == destination
        assert (row["payload"], row["attempts"]) == (message, attempts)
        assert row["created_us"] == row["since_us"] == created  # the retry window as it was
    assert _outcome(pending) == (5_000, None, None, "nack-AR")  # due on its old schedule
    assert _outcome(sent) == (20, 30, None, None)
    next_us, sent_us, dead_us, error = _outcome(parked)
    assert (next_us, sent_us, error) == (PARKED, None, "nack-AE")
    assert dead_us is not None  # a dead letter (listed, re-sendable), its error kept
    assert "outbox" in tables and "hl7v2_outbox" not in tables
    assert _migrations_done(url) == list(range(1, len(full) + 1))


OUTBOX = (
    *("id", "channel", "stream", "seq", "kind", "focus", "payload", "destination"),
    *("created_us", "since_us", "attempts", "next_us", "sent_us", "dead_us", "last_error"),
)


def _outcome(row: dict[str, Any]) -> tuple:
    return row["next_us"], row["sent_us"], row["dead_us"], row["last_error"]


def _tables(session: Any) -> set[str]:
    if session.dialect == "sqlite":
        rows = session.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = session.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in rows}
