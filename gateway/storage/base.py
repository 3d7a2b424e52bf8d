"""The storage contract: one Repository interface over SQLite (default) and PostgreSQL.

A `Session` is one database transaction. Writers get a serialised session in which resources,
their version history and their search index are written together; readers get a consistent
snapshot. Nothing here knows HTTP or FHIR REST semantics beyond versions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredVersion:
    """One version of a resource as stored: its canonical JSON bytes are served as they are."""

    resource_type: str
    id: str
    version: int
    last_updated_us: int
    deleted: bool
    body: bytes  # canonical JSON; b"" for a delete marker
    method: str = "PUT"  # POST, PUT, PATCH or DELETE: how this version came to be

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def last_updated(self) -> str:
        return instant(self.last_updated_us)

    @property
    def last_modified(self) -> str:
        return format_datetime(datetime.fromtimestamp(self.last_updated_us / 1e6, UTC), usegmt=True)

    @property
    def key(self) -> str:
        return f"{self.resource_type}/{self.id}"


def instant(us: int) -> str:
    """A FHIR instant (UTC, microseconds) for a count of microseconds since the epoch."""
    seconds, micro = divmod(int(us), 1_000_000)
    return f"{_second(seconds)}.{micro:06d}Z"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    # cached: a relay round's events and a page of search results share their seconds, and
    # strftime is most of what an instant costs
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class IndexRows:
    """Search-index rows of one resource, one list per index table (see migrations.py)."""

    token: list[tuple[str, str, str]] = field(default_factory=list)  # param, system, code
    string: list[tuple[str, str, str]] = field(default_factory=list)  # param, normalised, exact
    reference: list[tuple[str, str, str, str]] = field(default_factory=list)  # param, type, id, url
    date: list[tuple[str, int, int]] = field(default_factory=list)  # param, low_us, high_us
    number: list[tuple[str, float]] = field(default_factory=list)  # param, value
    quantity: list[tuple[str, float, str, str]] = field(default_factory=list)  # param, v, sys, code
    uri: list[tuple[str, str]] = field(default_factory=list)  # param, value


Indexer = Callable[[dict[str, Any]], IndexRows]


class Session(Protocol):
    """One transaction. Writers are serialised per resource (and per conditional-create key)."""

    dialect: str

    def current(self, resource_type: str, id: str) -> StoredVersion | None:
        """The newest version (possibly a delete marker), or None if never stored."""

    def version(self, resource_type: str, id: str, version: int) -> StoredVersion | None: ...

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        since_us: int | None,
        at_most_us: int | None,
        offset: int,
        count: int,
    ) -> tuple[list[StoredVersion], int]:
        """Versions newest first and the total count matching."""

    def current_many(self, keys: Sequence[tuple[str, str]]) -> list[StoredVersion]:
        """Current live versions of the given (type, id) keys, in the given order."""

    def versions_many(
        self, keys: Sequence[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], StoredVersion]:
        """`version` of many (type, id, version) keys, in one query (SQLite: 300 keys per
        query); absent ones are left out."""

    def lock(self, key: str) -> None:
        """Serialise writers on `key` until this transaction ends.

        A no-op where every writer is already serialised (SQLite's BEGIN IMMEDIATE).
        """

    def write(
        self, resource_type: str, id: str, resource: dict[str, Any], method: str
    ) -> StoredVersion:
        """Store a new version: assigns meta.versionId/lastUpdated, updates the search index."""

    def insert_new(self, prepared: Any) -> StoredVersion:
        """Store version 1 made by `sql.prepare_new` (server-assigned id: no lock, no lookup)."""

    def insert_many(self, prepared: Sequence[Any]) -> None:
        """`insert_new` for several at once (a batch of AuditEvents)."""

    def delete(self, resource_type: str, id: str) -> StoredVersion | None:
        """Store a delete marker if the resource is live; None if it was not."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a read query written with `?` placeholders (search, snapshots)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def one_of(
        self, column: str, values: Sequence[Any], sql_type: str
    ) -> list[tuple[str, list[Any]]]:
        """`column` is one of `values` (`sql_type`: BIGINT, TEXT): (condition, parameters)
        parts, one statement each; none for no values."""


class Repository(Protocol):
    dialect: str
    indexer: Indexer

    def reader(self, consistent: bool = True) -> AbstractContextManager[Session]:
        """A read-only snapshot; `consistent=False` for a single statement (no transaction)."""

    def writer(self, sync: bool = True) -> AbstractContextManager[Session]:
        """A read-write transaction. `sync=False`: its commit does not wait for the disk (as
        `insert_new`'s): it survives the gateway process dying, not a power cut or a database
        server crash. For bookkeeping whose loss only repeats work (the relay's outcomes)."""

    def insert_new(
        self,
        prepared: Any,
        companions: Sequence[Any] = (),
        sync: bool = True,
        hook: Callable[[Session], None] | None = None,
    ) -> StoredVersion:
        """Store a `sql.prepare_new` version as its own durable transaction (the plain create),
        with `companions` (its AuditEvent) in the same transaction. `sync=False`: committed so
        that it survives the gateway process dying, without waiting for the disk (fsync).
        `hook` runs in that transaction after the inserts (the write hooks: outbox rows); if it
        raises, nothing of this create is stored."""

    def close(self) -> None: ...


SessionFactory = Callable[[], Iterator[Session]]
