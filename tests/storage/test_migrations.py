"""Schema migrations are idempotent; SQLite runs in WAL mode with synchronous=FULL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

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
    assert _migrations_done(url) == [1, 2, 3, 4]
