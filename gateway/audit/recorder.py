"""Storing AuditEvents: in the caller's transaction for writes, durably before the response for
reads. The recorder stores what the builders made and nothing else; it never logs an event, and
it never drops one: a failure to record is raised, and the caller must then not respond with data.

Writes (create/update/patch/delete, transaction, consent decisions inside a write): `record`
stores the event with `session.write` in the caller's open writer session, so the change and its
AuditEvent commit or roll back together (DESIGN.md: "one database transaction = resources +
history + search index + audit + outbox rows").

Reads (read, vread, search and history pages, denials answered 404/403) have no writer session.
Issue 3 demands "after kill -9 of the server during 1,000 reads, audit events = successful
responses", so the order on every read path is:

    1. read in a reader session (the disclosure gate decides what is shown);
    2. build the events (one per page, one per deny);
    3. `record_reads(repo, events)`: returns only once the events are committed: in the SQLite
       WAL (synchronous=NORMAL for that commit: in the operating system's hands, so a kill -9
       of the gateway the next instant keeps them) or in PostgreSQL (synchronous_commit off
       for that transaction: the database server has them). Neither waits for the disk: a
       power cut (SQLite) or a database server crash (PostgreSQL) may lose the last moment's
       read events, as it loses the connection that would have carried the answer.
       `Settings.audit_reads_fsync` (PLAN_GATEWAY_AUDIT_READS_FSYNC=1) makes them wait for the
       fsync too, at about a tenth of the read throughput here (see README, figures). Writes
       and their events always wait for the disk;
    4. only then serialise and send the response. If 3 raises, answer 503 and send no data.

A kill -9 before 3 completes loses the event and the response together; after 3, the event
exists even if the bytes never reach the client. So every received response has its event, and
the only surplus events are those of requests in flight at the kill; the events carry the
request's X-Request-Id (BALP transaction entity) so a test can match them one to one.

In the server, reads do not call `record_reads`: the process's audit writer (writer.py) stores
their events in batches from one thread while each request awaits the commit holding its own,
with the same durability; `record_reads` remains for in-process callers.

Throughput: a read now includes one write commit, so commits are shared. The events go through
`repo.insert_new`, which on SQLite is group-committed (whichever waiting thread holds the writer
queue stores every queued insert in one transaction and one fsync, each in its own savepoint)
and on PostgreSQL is one autocommit statement (concurrent commits share WAL flushes; tune with
commit_delay). Several events of one request share one writer transaction. The body and index
rows are built before any lock is taken. An asynchronous audit queue flushed after responding
was rejected: a kill -9 would lose the queued events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.storage.base import Indexer, Repository, Session
from gateway.storage.ids import new_id
from gateway.storage.sql import Prepared, prepare_new

AUDIT_EVENT = "AuditEvent"


def _checked(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("resourceType") != AUDIT_EVENT:
        raise ValueError("the recorder stores AuditEvents only")
    return event


def record(session: Session, event: dict[str, Any]) -> None:
    """Store `event` (a fresh server id: nothing to look up or lock) in the caller's open writer
    session and transaction."""
    session.insert_new(prepare(event, session.indexer))


def record_all(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """Store `events` in the caller's open writer transaction, in one batch."""
    session.insert_many([prepare(e, session.indexer) for e in events])


def prepare(event: dict[str, Any], indexer: Indexer) -> Prepared:
    """The event as a new version ready to insert (server id: uuid4), built outside any lock;
    for a caller that stores a resource and its AuditEvent with one `insert_new`-style commit."""
    return prepare_new(AUDIT_EVENT, new_id(), _checked(event), indexer)


def record_reads(repo: Repository, events: Sequence[dict[str, Any]], sync: bool = False) -> None:
    """Store the events of a read-only interaction in a transaction of their own, group-committed
    with other requests' events, and return only once it is committed; the caller responds
    after this returns, never before (see above). `sync` also waits for the disk (fsync)."""
    prepared = [prepare(e, repo.indexer) for e in events]
    if prepared:
        repo.insert_new(prepared[0], prepared[1:], sync=sync)
