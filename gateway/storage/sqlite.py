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

from gateway.errors import Category, FhirError
from gateway.storage.base import Indexer
from gateway.storage.migrations import MIGRATIONS
from gateway.storage.sql import SQLITE, SqlSession


def _is_busy(e: BaseException) -> bool:
    """The database stayed locked past the busy timeout: a retryable 503, not a 500."""
    code = getattr(e, "sqlite_errorcode", 0) if isinstance(e, sqlite3.OperationalError) else 0
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _busy() -> FhirError:
    return FhirError(Category.BUSY, "the database is busy; retry the request")


class SqliteRepository:
    dialect = "sqlite"

    def __init__(self, path: str | Path, indexer: Indexer, busy_timeout_s: float = 60.0) -> None:
        self.path = str(path)
        self.indexer = indexer
        self.busy_timeout_s = busy_timeout_s
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
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout_s,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, begin: str) -> Iterator[SqlSession]:
        conn = self._conn()
        try:
            conn.execute(begin)
        except sqlite3.OperationalError as e:
            if _is_busy(e):
                raise _busy() from None
            raise
        try:
            yield SqlSession(conn, SQLITE, self.indexer)
            conn.execute("COMMIT")
        except BaseException as e:
            # Also after a failed COMMIT: an open transaction would poison this thread's
            # connection for every later request.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_busy(e):
                raise _busy() from None
            raise

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
