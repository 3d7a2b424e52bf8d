"""The audit writer of one gateway process: read AuditEvents stored in batches by one thread,
while each request waits (asynchronously) for the commit that holds its events.

Why a thread of its own rather than every request committing its own events (recorder.py's
`record_reads`, still used in-process): an answer must not leave before its AuditEvent is
committed, so every read carries a write. Committed from the request threads, 32 threads queue
on the writer lock and contend for the GIL, and an audited read cost about 1.3 ms of CPU (about
8x a read). Committed here, the event loop goes on serving while one thread stores everything
queued since its last commit in one transaction (about 150 us of CPU per event at 32 per batch,
measured in-process), and wakes each waiting request with the outcome of the commit that held
its events. A failed commit fails every request of its batch with 503 (nothing disclosed).

Durability is recorder.py's: committed before the answer (a kill -9 of the gateway keeps the
event); the disk is waited for only with `sync` (Settings.audit_reads_fsync).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.audit.recorder import prepare
from gateway.errors import Category, FhirError
from gateway.storage.base import Repository

log = logging.getLogger("gateway.audit")
MAX_BATCH = 512  # events per commit: bounds one transaction's size and lock time


@dataclass
class _Waiting:
    events: Sequence[dict[str, Any]]
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


class AuditWriter:
    def __init__(self, repo: Repository, sync: bool = False) -> None:
        self.repo = repo
        self.sync = sync
        self._queue: list[_Waiting] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def store(self, events: Sequence[dict[str, Any]]) -> None:
        """Return once `events` are committed; FhirError (503) if they could not be."""
        if not events:
            return
        loop = asyncio.get_running_loop()
        waiting = _Waiting(events, loop.create_future(), loop)
        with self._wake:
            self._queue.append(waiting)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
            self._wake.notify()
        await waiting.future

    def close(self) -> None:
        """Store what is queued, then stop the thread (a later `store` starts a new one: an app
        may be started again over the same services, as the tests do)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._wake:
            self._closed, self._thread = False, None

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue:
                    return  # closed and drained
                batch, taken = [], 0
                while self._queue and taken < MAX_BATCH:
                    item = self._queue.pop(0)
                    batch.append(item)
                    taken += len(item.events)
            self._commit(batch)

    def _commit(self, batch: list[_Waiting]) -> None:
        error: BaseException | None = None
        try:
            prepared = [prepare(e, self.repo.indexer) for w in batch for e in w.events]
            self.repo.insert_new(prepared[0], prepared[1:], sync=self.sync)
        except Exception:  # never let one failure kill the writer; the requests get a 503
            log.exception("storing %d AuditEvents failed", sum(len(w.events) for w in batch))
            error = FhirError(
                Category.BUSY, "the access could not be recorded; nothing was disclosed"
            )
        for w in batch:
            w.loop.call_soon_threadsafe(_settle, w.future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (client gone) meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
