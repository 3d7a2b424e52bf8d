"""The embedded default store: one SQLite file in WAL mode with synchronous=FULL.

Each thread keeps its own connection; writers take `BEGIN IMMEDIATE`, so writes are serialised
across threads and processes, and readers see a consistent snapshot without blocking writers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.storage.base import Indexer
from gateway.storage.migrations import MIGRATIONS
from gateway.storage.sql import SQLITE, SqlSession


class SqliteRepository:
    dialect = "sqlite"

    def __init__(self, path: str | Path, indexer: Indexer) -> None:
        self.path = str(path)
        self.indexer = indexer
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.migrate()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=60
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, begin: str) -> Iterator[SqlSession]:
        conn = self._conn()
        conn.execute(begin)
        try:
            yield SqlSession(conn, SQLITE, self.indexer)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def reader(self) -> Iterator[SqlSession]:
        return self._tx("BEGIN")

    def writer(self) -> Iterator[SqlSession]:
        return self._tx("BEGIN IMMEDIATE")

    def migrate(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for number, statements in enumerate(MIGRATIONS["sqlite"], start=1):
                if number in done:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (number,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
