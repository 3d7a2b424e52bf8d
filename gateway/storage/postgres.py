"""The production store: PostgreSQL through psycopg 3 with a bounded connection pool.

Writers serialise per resource with transaction-scoped advisory locks (so concurrent updates and
conditional creates cannot both win); readers run in ordinary READ COMMITTED transactions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.errors import Category, FhirError
from gateway.storage.base import Indexer, StoredVersion
from gateway.storage.migrations import apply_pending
from gateway.storage.sql import POSTGRES, Prepared, SqlSession

_RETRYABLE = (
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.LockNotAvailable,
    PoolTimeout,
)


class PostgresRepository:
    dialect = "postgres"

    def __init__(self, url: str, indexer: Indexer, pool_size: int = 16) -> None:
        self.url = url
        self.indexer = indexer
        # psycopg prepares a statement after its 5th use, and PostgreSQL then may switch to a
        # generic plan made from the statistics of that moment. On a young or fast-growing
        # database those say "empty": the generic plan scans, and keeps scanning as the tables
        # grow (measured: HL7 v2 intake on a new database fell from ~115 to ~20 msgs/s over
        # 1,300 messages). Custom plans are made for each execution's values and fit the data.
        options = "-c plan_cache_mode=force_custom_plan"
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=True,
            kwargs={"autocommit": False, "options": options},
        )
        self.migrate()

    @contextmanager
    def _tx(self, read_only: bool, consistent: bool = True) -> Iterator[SqlSession]:
        try:
            with self.pool.connection() as conn:
                # Set before BEGIN so psycopg sends one `BEGIN ISOLATION LEVEL … READ ONLY`
                # instead of an extra SET TRANSACTION round trip; a one-statement read needs
                # no transaction at all.
                conn.autocommit = not consistent
                conn.read_only = read_only
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ if read_only else None
                if not consistent:
                    yield SqlSession(conn, POSTGRES, self.indexer)
                    return
                with conn.transaction():
                    yield SqlSession(conn, POSTGRES, self.indexer)
        except _RETRYABLE:
            # Two writers took advisory locks in opposite orders (PostgreSQL aborted one), or
            # no connection came free in time: the caller may retry; it is not a server fault.
            raise FhirError(Category.BUSY, "the database is busy; retry the request") from None

    def reader(self, consistent: bool = True) -> Iterator[SqlSession]:
        return self._tx(True, consistent)

    @contextmanager
    def writer(self, sync: bool = True) -> Iterator[SqlSession]:
        with self._tx(False) as session:
            if not sync:  # the commit does not wait for the WAL flush (see insert_new)
                session.execute("SET LOCAL synchronous_commit = off")
            yield session

    def insert_new(
        self,
        prepared: Prepared,
        companions: Sequence[Prepared] = (),
        sync: bool = True,
        hook: Callable[[SqlSession], None] | None = None,
    ) -> StoredVersion:
        """A create outside any transaction: one atomic statement in autocommit mode; with
        companions (its AuditEvent) one transaction for all of them. `sync=False` (read
        AuditEvents): synchronous_commit off for this transaction, so the commit does not wait
        for the WAL flush; it survives the gateway process dying, not a database server crash."""
        if not companions and sync and hook is None:
            with self._tx(False, consistent=False) as session:
                return session.insert_new(prepared)
        with self.writer(sync=sync) as session:
            stored = session.insert_new(prepared)
            for companion in companions:
                session.insert_new(companion)
            if hook is not None:
                hook(session)
            return stored

    def migrate(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            # One migrator at a time when several gateway processes start together.
            conn.execute("SELECT pg_advisory_xact_lock(7283910)")
            apply_pending("postgres", conn.execute)

    def close(self) -> None:
        self.pool.close()


def reset_database(url: str) -> None:
    """Drop every table of ours (tests and `plan-gateway serve --reset`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
