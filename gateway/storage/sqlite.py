"""The embedded default store: one SQLite file in WAL mode with synchronous=FULL.

Each thread keeps its own connection; writers take `BEGIN IMMEDIATE`, so writes are serialised
across threads and processes, and readers see a consistent snapshot without blocking writers.

Before `BEGIN IMMEDIATE`, writers queue on a thread lock and an flock on `<db>.writer-lock`:
SQLite's own busy handler polls with sleeps of up to 100 ms, which under load gave second-long
tail latencies; a blocking lock wakes the next writer as soon as the previous one commits.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

from gateway.errors import Category, FhirError
from gateway.storage.base import Indexer, StoredVersion
from gateway.storage.migrations import apply_pending
from gateway.storage.sql import SQLITE, Prepared, SqlSession


def _is_busy(e: BaseException) -> bool:
    """The database stayed locked past the busy timeout: a retryable 503, not a 500."""
    code = getattr(e, "sqlite_errorcode", 0) if isinstance(e, sqlite3.OperationalError) else 0
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _busy() -> FhirError:
    return FhirError(Category.BUSY, "the database is busy; retry the request")


class _PendingCreate:
    __slots__ = ("companions", "done", "error", "hook", "prepared", "sync")

    def __init__(
        self,
        prepared: Prepared,
        companions: Sequence[Prepared] = (),
        sync: bool = True,
        hook: Callable[[SqlSession], None] | None = None,
    ) -> None:
        self.prepared = prepared
        self.companions = companions  # stored with it or not at all (its AuditEvent)
        self.sync = sync  # fsync at COMMIT (else safe from a process crash, not a power cut)
        self.hook = hook  # runs after the inserts, in the same savepoint (write hooks)
        self.done = False
        self.error: BaseException | None = None


def _insert_isolated(session: SqlSession, item: _PendingCreate) -> None:
    session.execute("SAVEPOINT one_create")
    try:
        _insert(session, item)
    except Exception as e:  # a storage error, or the item's hook refusing: only this create
        session.execute("ROLLBACK TO one_create")
        item.error = e
    session.execute("RELEASE one_create")


def _insert(session: SqlSession, item: _PendingCreate) -> None:
    session.insert_many([item.prepared, *item.companions])
    if item.hook is not None:
        item.hook(session)


class SqliteRepository:
    dialect = "sqlite"

    def __init__(self, path: str | Path, indexer: Indexer, busy_timeout_s: float = 60.0) -> None:
        self.path = str(path)
        self.indexer = indexer
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_queue = threading.Lock()
        self._pending: list[_PendingCreate] = []
        self._pending_lock = threading.Lock()
        self._queue_fd: int | None = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._queue_fd = os.open(self.path + ".writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
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
            conn.execute("PRAGMA mmap_size=1073741824")
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

    def reader(self, consistent: bool = True) -> Iterator[SqlSession]:
        """A snapshot over several statements; `consistent=False` for one-statement reads,
        which need no transaction of their own."""
        if not consistent:
            return nullcontext(SqlSession(self._conn(), SQLITE, self.indexer))  # type: ignore[return-value]
        return self._tx("BEGIN")

    @contextmanager
    def writer(self, sync: bool = True) -> Iterator[SqlSession]:
        with self._write_queue:
            if self._queue_fd is not None:
                fcntl.flock(self._queue_fd, fcntl.LOCK_EX)
            try:
                try:
                    if not sync:  # committed to the WAL without an fsync (see insert_new)
                        self._conn().execute("PRAGMA synchronous=NORMAL")
                    with self._tx("BEGIN IMMEDIATE") as session:
                        yield session
                finally:
                    if not sync:
                        self._conn().execute("PRAGMA synchronous=FULL")
            finally:
                if self._queue_fd is not None:
                    fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    def insert_new(
        self,
        prepared: Prepared,
        companions: Sequence[Prepared] = (),
        sync: bool = True,
        hook: Callable[[SqlSession], None] | None = None,
    ) -> StoredVersion:
        """A create outside any transaction, group-committed: whichever waiting writer gets the
        queue first stores every create queued so far in one transaction, one fsync, each in
        its own savepoint so one failure fails only its own request (as PostgreSQL's group
        commit does for separate transactions). Returns once this create is durable.

        `sync=False` (read AuditEvents, see audit/recorder.py): committed to the WAL without an
        fsync (synchronous=NORMAL for that commit): it survives the gateway process dying the
        moment this returns, not a power cut. A group holding any `sync` item fsyncs."""
        mine = _PendingCreate(prepared, companions, sync, hook)
        with self._pending_lock:
            self._pending.append(mine)
        with self._write_queue:
            if not mine.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._commit_group(batch)
        if mine.error is not None:
            raise mine.error
        return prepared.version

    def _commit_group(self, batch: list[_PendingCreate]) -> None:
        relaxed = not any(item.sync for item in batch)
        try:
            if self._queue_fd is not None:
                fcntl.flock(self._queue_fd, fcntl.LOCK_EX)
            if relaxed:
                self._conn().execute("PRAGMA synchronous=NORMAL")
            try:
                with self._tx("BEGIN IMMEDIATE") as session:
                    if len(batch) == 1:  # alone in its group: its failure is the group's
                        _insert(session, batch[0])
                    else:
                        for item in batch:
                            _insert_isolated(session, item)
            finally:
                if relaxed:
                    self._conn().execute("PRAGMA synchronous=FULL")
                if self._queue_fd is not None:
                    fcntl.flock(self._queue_fd, fcntl.LOCK_UN)
        except BaseException as e:  # the COMMIT itself failed: nothing of the group is stored
            for item in batch:
                item.error = item.error or e
        for item in batch:
            item.done = True

    def migrate(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            apply_pending("sqlite", conn.execute)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        if self._queue_fd is not None:
            os.close(self._queue_fd)
            self._queue_fd = None
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
