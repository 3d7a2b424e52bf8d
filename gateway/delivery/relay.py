"""The relay: sends what the outbox holds, in order per stream, at least once.

One daemon thread per gateway process runs an asyncio loop. A round claims the due work
(outbox.claim: each stream's head, leased, and the rows after it), builds its messages through
the disclosure gate (notifications.disclose, as the subscriber, now; each focus version read and
decided once per round and subscriber, notifications.Shared), sends every stream at once
(rest-hook over HTTP with the partner client, HL7 v2 over MLLP, changes to an upstream's FHIR
API), then records every outcome in one transaction: sent (with its PrivacyDisclosure
AuditEvent), withheld (with its deny), retried after exponential backoff with jitter, or dead
after `Backoff.give_up` (72 h). Database work runs in worker threads, so a slow partner never
holds the loop up. Several gateway processes may each run a relay: claims never hand one row to
two of them at once, and every send ends before its lease does (`lease`, settings
delivery_lease_s), so a row whose lease ran out is never in flight twice.

A subscription's stream may carry several notifications (each up to its max-count events, at
most `burst`, fewer for a partner too slow to take them all in time) in one round, one after
another: the next only once the partner took the one before, and only while the round's
sending is young (`round_budget`), so one slow partner does not hold the others' next round
up. A failure stops the stream for the round; what it did not send is due again at once, in
order behind it. A round's outcomes are a few statements (one per kind of change), its
AuditEvents built before the write lock is taken: one PrivacyDisclosure per recipient
organisation, purpose and client and round (BALP: one patient each).

On PostgreSQL (`pipeline`), a round in the relay thread is a pipeline of steps (for at most
`drive` seconds): while one step's batches are sent, a worker thread claims and prepares the
next (each rest-hook stream's continuation, the rows after its batch in flight, plus whatever
else came due), and each step is recorded while the next is sent. The database work thus
overlaps the sending instead of alternating with it. A continuation goes only after its
stream's batch was delivered whole (else it is given back); steps are recorded in order, and
after a record fails no more steps start (what is leased comes due again, in order, when its
lease ends).

It also sends heartbeats to idle active subscriptions that asked for them, forgets rows
delivered longer ago than `keep` seconds, and turns off the subscriptions whose `end` has
passed (once a minute: from `end` on no event is queued for them). Nothing here logs content,
addresses or headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.hl7v2.client import DeliveryError, Reply
from adapters.hl7v2.client import send as mllp_send
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.parse import validate_outbound
from adapters.partner_fhir.client import PartnerClient, PushResult
from gateway.audit import builders
from gateway.audit.context import AuditContext
from gateway.audit.recorder import prepare as prepare_event
from gateway.consent.context import ConsentContext
from gateway.consent.enforcement import RepoLoader
from gateway.delivery import notifications, outbox, subscriptions
from gateway.delivery.events import subscriber
from gateway.delivery.outbox import Backoff, Batch, Row
from gateway.delivery.subscription_spec import SubscriptionSpec, check_endpoint, stored_spec
from gateway.errors import FhirError
from gateway.fhir_api.context import Services
from gateway.security.scopes import permits
from gateway.storage.base import Session

log = logging.getLogger(__name__)
DEFAULT_BASE = "http://localhost/fhir"
FHIR = "fhir"  # the channel of changes told back to an upstream (mirror.py, upstream_send.py)
UNSENT = "unsent"  # a send's result before it is tried
MllpSender = Callable[[str, str, float], Reply]
LEASE_SLACK = 0.5  # seconds: every send ends this long before its lease (clocks, the commit)
HEADS_EVERY = 0.25  # seconds: while continuing, how often a claim also looks for new heads


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class _Send:
    """One message made ready: what to send where, and what to record after."""

    rows: list[Row]  # the claimed rows it stands for (told, withheld, or failed together)
    url: str = ""
    body: bytes = b""
    headers: tuple[str, ...] = ()
    timeout: float = 10.0
    told: list[Row] = field(default_factory=list)  # the rows this message carries
    # (recipient, Patient id, versions told): disclosures, recorded once the push succeeded
    audit: list[tuple[AuditContext, str, list[str]]] = field(default_factory=list)
    denials: list[dict[str, Any]] = field(default_factory=list)  # withheld, stored when tried
    withheld: list[Row] = field(default_factory=list)
    error: str | None = None  # known before sending: the message fails with this
    dead: str | None = None  # known before sending: the rows are dead letters
    handshake: bool = False
    result: str | None = UNSENT  # None = delivered; else the error code


@dataclass
class _Stream:
    """One claimed stream's messages, to be sent in order."""

    batch: Batch
    sends: list[_Send] = field(default_factory=list)


@dataclass
class _Outcome:
    """What a round records, gathered before its transaction so that each kind of change is
    one statement (the rare dead and failed rows aside)."""

    sent: list[int] = field(default_factory=list)
    withheld: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)  # claimed, not tried: due again now
    streams: list[str] = field(default_factory=list)  # subscriptions that heard from us
    events: list[dict[str, Any]] = field(default_factory=list)  # AuditEvents (denials)
    # What each organisation was told of each client in this round, for each purpose: one
    # PrivacyDisclosure per (recipient, purpose, client) and round, not one per notification
    # or subscription (BALP: one patient each; the event names no subscription).
    disclosed: dict[tuple[str | None, tuple[str, ...], str], tuple[AuditContext, list[str]]] = (
        field(default_factory=dict)
    )

    def audit_events(self) -> list[dict[str, Any]]:
        exports = [
            builders.export(c, key[2], list(dict.fromkeys(what)))  # each version named once
            for key, (c, what) in self.disclosed.items()
        ]
        return self.events + exports

    dead: list[tuple[Row, str]] = field(default_factory=list)
    failed: list[tuple[Row, str]] = field(default_factory=list)
    statuses: list[tuple[str, str, str | None]] = field(default_factory=list)  # handshakes


class Relay:
    """`run_once()` is one round (tests call it); `start()` runs rounds in a daemon thread until
    `stop()`."""

    def __init__(
        self,
        svc: Services,
        *,
        interval: float = 0.25,
        backoff: Backoff | None = None,
        streams: int = 64,
        mllp_timeout: float = 10.0,
        mllp_sender: MllpSender = mllp_send,
        keep: float = 7 * 24 * 3600.0,
        client_factory: Callable[[], PartnerClient] = PartnerClient,
        lease: float | None = None,
        burst: int = 256,
        step_rows: int = 1024,
        step_total: int = 16_384,
        round_budget: float = 0.5,
        round_wait: float = 1.0,
        drive: float = 5.0,
        pipeline: bool | None = None,
    ) -> None:
        self.svc = svc
        self.interval, self.streams = interval, streams
        self.backoff = backoff or Backoff(cap=svc.settings.delivery_backoff_cap_s)
        self.mllp_timeout, self.mllp_sender = mllp_timeout, mllp_sender
        self.keep = keep
        self.client_factory = client_factory
        # seconds a claim holds its rows (settings.delivery_lease_s); every send ends before it
        self.lease = float(lease or getattr(svc.settings, "delivery_lease_s", 121.0))
        # per stream and round (or pipelined step): at most `burst` notifications and
        # `step_rows` rows (a notification's max-count events each), the next only while the
        # round has been sending for less than `round_budget` seconds (the first always goes).
        # Big steps pay: each step's audit (one AuditEvent per recipient, purpose and client)
        # and consent reading cost the same whether it carries 64 notifications or 256.
        self.burst, self.step_rows, self.round_budget = burst, step_rows, round_budget
        self.step_total = step_total  # rows of all streams a step claims, at most (memory)
        # a stream whose last step ran out of `round_budget` (or failed) before it sent all it
        # had: how many it sent then (a slow partner: the next claim takes twice that, at
        # least 4, not `burst`; nor is it continued while a step is in flight)
        self._pace: dict[str, int] = {}
        self.base = svc.settings.base_url or svc.settings.delivery_base or DEFAULT_BASE
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="relay-db")
        self._pruned = 0.0
        self.round_wait = round_wait
        # seconds a pipelined round goes on claiming continuations before it ends (then
        # heartbeats and housekeeping; the next round claims afresh)
        self.drive = drive
        # Pipelined rounds pay on PostgreSQL, whose work is round trips to another process that
        # overlap the sending; on SQLite the relay is bound by its own CPU (one GIL), and the
        # overlap only added work: measured 0.9x the pushes/s and 1.25x the CPU per push.
        self.pipeline = svc.repo.dialect == "postgres" if pipeline is None else pipeline
        self._heads_at = 0.0  # when the last claim looked for new stream heads (monotonic)
        self._looping = False  # in the relay thread's loop (else run_once: wait for all)
        self._late: set[asyncio.Future[None]] = set()
        self._tokens: Any = None  # upstream_send.TokenCache, made on the first upstream row

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._main, name="delivery-relay", daemon=True)
            self._thread.start()

    def stop(self, wait: float = 70.0) -> None:
        """Stop after the round in flight (a delivered message is recorded as sent rather than
        sent again by the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait)
            self._thread = None

    def _main(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        beat = 0.0
        self._looping = True
        async with self.client_factory() as client:
            while not self._stop.is_set():
                try:
                    busy = await self._round(client) > 0
                    if time.monotonic() - beat >= 1.0:
                        beat = time.monotonic()
                        await self.heartbeats(client)
                except Exception as exc:  # the database away: try again next round, never die
                    log.warning("delivery relay round failed (%s)", type(exc).__name__)
                    busy = False
                self._late = {t for t in self._late if not t.done()}
                if not busy:
                    await asyncio.sleep(self.interval)
            if self._late:  # stopping: what is in flight is recorded before the client closes
                await asyncio.wait(self._late)

    def run_once(self) -> int:
        """One round from outside the relay thread (tests, the CLI)."""

        async def once() -> int:
            async with self.client_factory() as client:
                return await self._round(client)

        return asyncio.run(once())

    async def _round(self, client: PartnerClient) -> int:
        """Claim, prepare, send, record, all streams together; returns how many streams were
        claimed. In the relay thread's loop on PostgreSQL (`pipeline`) a round is pipelined:
        while one step's batches are sent, the next step is claimed and prepared (the
        continuation of every rest-hook stream in flight, `outbox.claim(after=)`, and whatever
        else came due), and each step is recorded while the next one is sent, so the database
        work overlaps the sending. A continuation is sent only after its stream's batch was
        delivered whole (else it is released, recorded with that batch); steps are recorded in
        order, and after a failed record nothing more is (what it left leased comes due again,
        in order, when the leases end)."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()  # before the claim: the lease runs from no later than this
        if started - self._pruned > 60.0:
            self._pruned = started
            await loop.run_in_executor(self._pool, self._housekeeping, now_us())
        plans = await loop.run_in_executor(self._pool, self._claim_and_prepare, now_us(), {})
        claimed, chain = 0, None
        drive_end = started + self.drive
        while plans:
            claimed += len(plans)
            lease_end = started + self.lease - LEASE_SLACK
            budget_end = time.monotonic() + self.round_budget  # the step ends with its last send
            sending = {
                asyncio.ensure_future(self._send_stream(client, p, lease_end, budget_end)): p
                for p in plans
            }
            going = (
                self.pipeline
                and self._looping
                and not self._stop.is_set()
                and time.monotonic() < drive_end
                and not _failed(chain)  # a step could not be recorded: no more until it is
            )
            # (a stream too slow for its last step is not continued: it would not take this
            # one whole either, and its continuation would be claimed and prepared for nothing;
            # it comes due again as a head once this step is recorded)
            after = {
                p.batch.stream: p.batch.rows[-1].pos
                for p in plans
                if p.batch.channel == outbox.REST_HOOK
                and p.batch.rows
                and p.batch.stream not in self._pace
            }
            ahead = None
            if going:
                started = time.monotonic()  # the next step's lease runs from no later than this
                ahead = loop.run_in_executor(self._pool, self._claim_and_prepare, now_us(), after)
            # A slow partner (up to its timeout) must not hold the others up: what has finished
            # after `round_wait` is recorded now and the next step starts; each stream still
            # sending is recorded when it ends (its rows stay leased meanwhile, so no other
            # claim takes them). run_once (tests, the CLI) waits for all.
            wait = None if self._stop.is_set() or not self._looping else self.round_wait
            done, pending = await asyncio.wait(sending, timeout=wait)
            nexts: list[_Stream] = []
            if ahead is not None:
                try:
                    nexts = await ahead
                except Exception as exc:  # the database away: this step is still recorded
                    log.warning("delivery relay could not claim ahead (%s)", type(exc).__name__)
            whole = {sending[t].batch.stream for t in done if _delivered_whole(sending[t])}
            keep = [n.batch.stream in whole or n.batch.stream not in after for n in nexts]
            if self._stop.is_set() or _failed(chain):  # claimed meanwhile: given back, unsent
                keep = [False] * len(nexts)
            plans = [n for n, kept in zip(nexts, keep, strict=True) if kept]
            dropped = [n for n, kept in zip(nexts, keep, strict=True) if not kept]
            finished = [sending[t] for t in done]
            for task in pending:  # recorded when they end, behind the steps recorded before
                late = self._record_late(task, sending[task], chain)
                self._late.add(asyncio.ensure_future(late))
            if ahead is None and chain is None:  # not pipelining: record now, as one round
                await loop.run_in_executor(self._pool, self._record, finished, [])
                break
            chain = asyncio.ensure_future(self._record_after(chain, finished, dropped))
            self._late.add(chain)
            if ahead is None:
                break
        if chain is not None:
            await chain
        return claimed

    async def _record_after(
        self, before: asyncio.Future[bool] | None, plans: list[_Stream], dropped: list[_Stream]
    ) -> bool:
        """Record a step once the step before it is recorded; nothing if that failed."""
        if before is not None and not await before:
            return False
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._pool, self._record, plans, dropped)
        except Exception as exc:
            log.warning("delivery relay record failed (%s)", type(exc).__name__)
            return False
        return True

    async def _record_late(
        self, task: asyncio.Future[None], plan: _Stream, before: asyncio.Future[bool] | None = None
    ) -> None:
        """Record a stream that outlived its round (after the steps recorded before it, and
        not if one of them failed). Nobody awaits this task's result, so a failure is logged
        here (its rows stay leased and come due again, as after a crash)."""
        try:
            await task
        except Exception as exc:
            log.warning("delivery relay send failed (%s)", type(exc).__name__)
        if before is not None and not await before:
            return
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._pool, self._record, [plan], [])
        except Exception as exc:
            log.warning("delivery relay record failed (%s)", type(exc).__name__)

    # -- claiming and preparing (worker threads) --------------------------------------------
    def _claim_and_prepare(self, now: int, after: Mapping[str, int]) -> list[_Stream]:
        # Continuing streams in flight, new heads are looked for at most every HEADS_EVERY
        # seconds: that query is a pass over every pending row.
        heads = not after or time.monotonic() - self._heads_at >= HEADS_EVERY
        if heads:
            self._heads_at = time.monotonic()
        batches = outbox.claim(
            self.svc.repo,
            now,
            lease_us=int(self.lease * 1_000_000),
            streams=self.streams,
            batch_size=self._rows_per_stream,
            after=after,
            heads=heads,
            # SQLite: a lease lost in a power cut dies with every relay that held it. Not so a
            # PostgreSQL server's crash (the relays go on), so there leases are durable.
            sync=self.svc.repo.dialect != "sqlite",
        )
        if not batches:
            return []
        try:
            return self._prepare(batches)
        except BaseException:  # the claim committed: give its leases back before failing
            with contextlib.suppress(Exception):
                outbox.release(self.svc.repo, batches)
            raise

    def _rows_per_stream(self, session: Session, streams: Sequence[str]) -> dict[str, int]:
        """Rows to claim of each subscription's stream: a round's notifications' worth."""
        found = subscriptions.load_many(session, streams)
        sizes = {id: spec.max_count for id, (_, spec, _, _) in found.items()}
        out = {}
        for s in streams:
            size = sizes.get(s, 1)
            paced = self._pace.get(s)
            burst = self.burst if paced is None else min(self.burst, max(4, 2 * paced))
            out[s] = min(size * burst, max(size, self.step_rows))
        total = sum(out.values())
        if total > self.step_total:  # many streams at once: each a share (a notification's
            share = self.step_total / total  # worth at least), so a step's memory is bounded
            out = {s: max(sizes.get(s, 1), int(n * share)) for s, n in out.items()}
        return out

    def _prepare(self, batches: Sequence[Batch]) -> list[_Stream]:
        plans = [_Stream(b) for b in batches]
        with self.svc.repo.reader() as session:
            context = ConsentContext(RepoLoader(session), datetime.now(UTC))
            # the round's events read and decided once each, however many subscriptions
            shared = notifications.Shared(session, context)
            rest = [p.batch for p in plans if p.batch.channel == outbox.REST_HOOK]
            subs: Mapping[str, subscriptions.Loaded] | None = None
            try:  # in bulk; should that fail, each stream reads its own (and fails alone)
                subs = subscriptions.load_many(session, [b.stream for b in rest])
                shared.load(row for batch in rest for row in batch.rows)
            except Exception as exc:
                log.warning("delivery relay could not read in bulk (%s)", type(exc).__name__)
            for plan in plans:
                try:
                    self._prepare_stream(shared, subs, plan)
                except Exception as exc:  # a bug with one stream's rows: the others still go
                    log.warning("delivery relay could not prepare (%s)", type(exc).__name__)
                    head = list(plan.batch.rows[:1])
                    plan.sends = [_Send(head, told=head, error="internal-error")]
        return plans

    def _prepare_stream(
        self,
        shared: notifications.Shared,
        subs: Mapping[str, subscriptions.Loaded] | None,
        plan: _Stream,
    ) -> None:
        rows = list(plan.batch.rows)
        if plan.batch.channel == outbox.REST_HOOK:
            stream = plan.batch.stream
            found = subs.get(stream) if subs is not None else None
            if subs is None:
                found = subscriptions.load(shared.session, stream)
            self._prepare_rest_hook(shared, found, plan)
        elif plan.batch.channel == outbox.MLLP:
            plan.sends = [self._prepare_mllp(row) for row in rows]
        else:  # an upstream's FHIR API (or a channel this relay does not know: retried, then dead)
            plan.sends = [_Send([row], told=[row], timeout=30.0) for row in rows]
            if plan.batch.channel != FHIR:
                plan.sends = [_Send(rows, told=rows, error="unknown-channel")]

    def _prepare_mllp(self, row: Row) -> _Send:
        send = _Send([row], url=row.destination, body=row.payload.encode(), told=[row])
        send.timeout = self.mllp_timeout
        send.dead = _invalid(row.payload)
        return send

    def _prepare_rest_hook(
        self,
        shared: notifications.Shared,
        found: subscriptions.Loaded | None,
        plan: _Stream,
    ) -> None:
        sub_id, rows = plan.batch.stream, list(plan.batch.rows)
        if found is None:
            plan.sends = [_Send(rows, told=rows, dead="subscription-gone")]
            return
        organization, spec, status, events = found
        org = self._organisation(organization)
        # no subscriber (made without authentication) is served only while none is required
        gated = self.svc.settings.require_auth
        registered = org is not None or (not organization and not gated)
        if org is not None and not permits(org.scopes, spec.resource_type, "r"):
            registered = False  # its registration no longer lets it read what the topic tells
        if not registered or not endpoint_allowed(
            spec.endpoint, org, self.svc.settings.delivery_test_mode
        ):
            # the registration changed: the head waits (then dead), the rest behind it
            plan.sends = [_Send(rows[:1], told=rows[:1], error="endpoint-unregistered")]
            return
        kind = "handshake" if rows[0].kind == "handshake" else "event-notification"
        chunks = [rows[:1]] if kind == "handshake" else _chunks(rows, spec.max_count)
        notice = _Notice(self.base, sub_id, spec, str(status), int(events))
        ctx = self._audit_context(organization, spec)
        for chunk in chunks:
            send = _Send(chunk, url=spec.endpoint, headers=spec.headers)
            send.timeout = float(spec.timeout_s)
            if kind == "handshake":
                send.handshake, send.told = True, chunk
                send.body = notice.encode("handshake")
            else:
                self._disclose(shared, send, organization, spec, ctx, notice)
            plan.sends.append(send)

    def _disclose(
        self,
        shared: notifications.Shared,
        send: _Send,
        organization: str,
        spec: SubscriptionSpec,
        ctx: AuditContext | None,
        notice: _Notice,
    ) -> None:
        """Decide one notification's events again as the subscriber; its body and audit."""
        who = subscriber(organization, spec)
        full = spec.payload == "full-resource"
        told = notifications.disclose(shared.session, send.rows, who, shared.context, full, shared)
        send.told = [e.row for e in told.events]
        send.withheld = [row for row, _ in told.withheld]
        if ctx is not None:
            send.denials = [_denial(ctx, row, decision) for row, decision in told.withheld]
            if spec.payload != "empty":
                send.audit = [(ctx, p, what) for p, what in told.clients.items()]
        if told.events:  # else everything withheld: nothing to send
            send.body = notice.encode("event-notification", told.events)

    def _organisation(self, organization: str) -> Any:
        registry = self.svc.security.registry if self.svc.security is not None else None
        return registry.find(organization) if registry is not None and organization else None

    def _audit_context(self, organization: str, spec: SubscriptionSpec) -> AuditContext | None:
        org = self._organisation(organization)
        if org is None:
            return None
        return AuditContext(
            client_id=org.client_id,
            server=self.base,
            organization_id=organization,
            purpose_of_use=(spec.purpose,) if spec.purpose else (),
        )

    # -- sending (the loop) -------------------------------------------------------------------
    async def _send_stream(
        self, client: PartnerClient, plan: _Stream, lease_end: float, budget_end: float
    ) -> None:
        """The stream's messages in order: each only after the one before was taken, before
        `budget_end`, and only if it can end before the lease does."""
        stream = plan.batch.stream
        for n, send in enumerate(plan.sends):
            left = lease_end - time.monotonic()
            if n and (time.monotonic() > budget_end or left < send.timeout):
                self._pace[stream] = n  # the rest waits for the next claim (released when
                return  # recorded), which takes twice what went now
            if left <= 0:
                return
            send.timeout = min(send.timeout, left)
            try:
                await self._send(client, plan.batch.channel, send)
            except Exception as exc:  # a bug in one send: its outcome is a failed try
                log.warning("delivery relay send failed (%s)", type(exc).__name__)
                send.result = "internal-error"
            if send.result is not None:
                # failed: what follows waits behind it, and its next claim (the failed row
                # first, tried again) takes a few, not a whole burst
                self._pace[stream] = n
                return
        self._pace.pop(stream, None)  # it took all it had: whole bursts again

    async def _send(self, client: PartnerClient, channel: str, send: _Send) -> None:
        if send.dead is not None or send.error is not None:
            send.result = send.dead or send.error
            return
        if not send.body and channel == outbox.REST_HOOK:
            send.result = None  # all withheld: done
            return
        loop = asyncio.get_running_loop()
        if channel == outbox.MLLP:
            send.result = await loop.run_in_executor(
                self._pool, self._send_mllp, send.url, send.body.decode(), send.timeout
            )
        elif channel == FHIR:
            send.result = await self._send_upstream(client, send)
        else:
            result: PushResult = await client.push(
                send.url, send.body, send.headers, timeout=send.timeout
            )
            send.result = None if result.ok else (result.error or f"http-{result.status}")

    def _send_mllp(self, destination: str, message: str, timeout: float) -> str | None:
        try:
            reply = self.mllp_sender(destination, message, timeout)
        except DeliveryError as exc:
            return exc.code
        return None if reply.accepted else f"nack-{reply.code}"

    async def _send_upstream(self, client: PartnerClient, send: _Send) -> str | None:
        from gateway.delivery import upstream_send

        if self._tokens is None:
            self._tokens = upstream_send.TokenCache.for_settings(self.svc.settings)
        try:
            return await asyncio.wait_for(
                upstream_send.send(client, send.rows[0], self._tokens), send.timeout
            )
        except TimeoutError:
            return "timeout"

    # -- recording (a worker thread) --------------------------------------------------------
    def _record(self, plans: Sequence[_Stream], dropped: Sequence[_Stream] = ()) -> None:
        """Every outcome of these streams' sends in one transaction, and the release of the
        `dropped` continuations (claimed, never tried)."""
        out = _Outcome()
        for plan in plans:
            tried = set()
            for send in plan.sends:
                if send.result != UNSENT:
                    _outcome(plan.batch, send, out)
                    tried.update(r.pos for r in send.rows)
            out.released += [r.pos for r in plan.batch.rows if r.pos not in tried]
        # AuditEvents are built before the write lock is taken: writers queue on it
        events = [prepare_event(e, self.svc.repo.indexer) for e in out.audit_events()]
        now = now_us()
        # Not waiting for the disk: a record lost in a crash of the machine (or the database
        # server) leaves its rows leased, then sent again (receivers de-duplicate) and audited
        # again, as the sent marks and their AuditEvents commit together. (As read AuditEvents.)
        # (A status change writes a version of the Subscription resource: that commit waits.)
        with self.svc.repo.writer(sync=not out.statuses) as session:
            # A status change writes the Subscription resource: its lock first, as a PUT of the
            # Subscription takes it before the subscription row (else the two can deadlock).
            for stream in sorted({stream for stream, _, _ in out.statuses}):
                session.lock(f"Subscription/{stream}")
            # a claim leased (and counted a try of) each stream's head only: the rows after it
            # sent are counted now; released (claimed, not tried) heads are due again now
            heads = {plan.batch.rows[0].pos for plan in plans if plan.batch.rows}
            sent = [p for p in out.sent if p in heads]
            outbox.update_rows(session, "sent_us = ?, last_error = NULL", (now,), sent)
            sent = [p for p in out.sent if p not in heads]
            counted = "sent_us = ?, last_error = NULL, attempts = attempts + 1"
            outbox.update_rows(session, counted, (now,), sent)
            withheld = "sent_us = ?, last_error = ?"
            outbox.update_rows(session, withheld, (now, "withheld-consent"), out.withheld)
            released = [p for p in out.released if p in heads]
            released += [plan.batch.rows[0].pos for plan in dropped if plan.batch.rows]
            outbox.release_heads(session, released, now)
            for where, params in session.one_of("id", sorted(set(out.streams)), "TEXT"):
                session.execute(
                    f"UPDATE subscriptions SET last_sent_us = ? WHERE {where}", (now, *params)
                )
            for row, error in out.dead:
                outbox.mark_dead(session, row, now, error)
            for row, error in out.failed:
                outbox.mark_failed(session, row, now, error, self.backoff)
            for stream, status, error in out.statuses:
                subscriptions.set_status(session, stream, status, error)
            if events:
                session.insert_many(events)
        if out.dead:
            log.warning("outbox rows dead: %s", ", ".join(sorted({e for _, e in out.dead})))

    # -- heartbeats and pruning --------------------------------------------------------------
    def _housekeeping(self, now: int) -> None:
        self._pace.clear()  # (a minute's paces: no entry outlives its subscription for long)
        try:
            with self.svc.repo.writer(sync=False) as session:
                outbox.prune(session, now - int(self.keep * 1_000_000))
            with self.svc.repo.reader() as session:
                ended = subscriptions.end_due(session, now)
        except Exception as exc:  # the database away: next minute
            log.warning("delivery relay housekeeping failed (%s)", type(exc).__name__)
            return
        for sub_id in ended:  # each a version of its Subscription resource, written as the server
            try:
                with self.svc.repo.writer() as session:
                    subscriptions.end(session, sub_id, now)
            except Exception as exc:  # this one next minute; the others now
                log.warning("delivery relay could not end a subscription (%s)", type(exc).__name__)

    async def heartbeats(self, client: PartnerClient) -> int:
        """Send the heartbeats that are due (idle active subscriptions with a period)."""
        loop = asyncio.get_running_loop()
        due = await loop.run_in_executor(self._pool, self._due_heartbeats, now_us())
        results = await asyncio.gather(
            *(client.push(url, body, headers, timeout=t) for url, body, headers, t in due)
        )
        return sum(1 for r in results if r.ok)

    def _due_heartbeats(self, now: int) -> list[tuple[str, bytes, tuple[str, ...], float]]:
        with self.svc.repo.reader() as session:
            rows = session.query(
                "SELECT s.id, s.spec, s.events, s.last_sent_us FROM subscriptions s "
                "WHERE s.status = 'active' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE "
                "o.stream = s.id AND o.sent_us IS NULL AND o.dead_us IS NULL)"
            )
        due = []
        for sub_id, text, events, last in rows:
            spec = stored_spec(str(text))
            if not spec.heartbeat_s or (last or 0) + spec.heartbeat_s * 1_000_000 > now:
                continue
            if spec.ended(now):
                continue  # about to be turned off
            if not self._endpoint_allowed(str(sub_id), spec):
                continue  # no longer registered: no heartbeat either (nor its headers)
            if not self._take_heartbeat(str(sub_id), last, now):
                continue  # another relay sends this one
            notice = _Notice(self.base, str(sub_id), spec, "active", int(events))
            due.append((spec.endpoint, notice.encode("heartbeat"), spec.headers, spec.timeout_s))
        return due

    def _endpoint_allowed(self, sub_id: str, spec: SubscriptionSpec) -> bool:
        with self.svc.repo.reader(consistent=False) as session:
            found = subscriptions.load(session, sub_id)
        org = self._organisation(found[0]) if found is not None else None
        if found is None or (org is None and (found[0] or self.svc.settings.require_auth)):
            return False  # no subscriber, or one no longer registered
        return endpoint_allowed(spec.endpoint, org, self.svc.settings.delivery_test_mode)

    def _take_heartbeat(self, sub_id: str, last: int | None, now: int) -> bool:
        with self.svc.repo.writer() as session:
            session.execute(
                "UPDATE subscriptions SET last_sent_us = ? WHERE id = ? "
                "AND COALESCE(last_sent_us, -1) = ?",
                (now, sub_id, -1 if last is None else last),
            )
            got = session.query("SELECT last_sent_us FROM subscriptions WHERE id = ?", (sub_id,))
        return bool(got) and got[0][0] == now


def _failed(chain: asyncio.Future[bool] | None) -> bool:
    """Whether a chain of step records is known to have failed."""
    return chain is not None and chain.done() and not chain.result()


def _delivered_whole(plan: _Stream) -> bool:
    """Whether every message of a stream was tried and taken: its continuation may follow."""
    return bool(plan.sends) and all(send.result is None for send in plan.sends)


def _outcome(batch: Batch, send: _Send, out: _Outcome) -> None:
    """What recording one tried message changes (into `out`)."""
    out.events += send.denials
    out.withheld += [r.pos for r in send.withheld]
    error = send.dead or send.result
    if send.dead is None and error is None:
        out.sent += [r.pos for r in send.told]
        for ctx, patient, what in send.audit:
            key = (ctx.organization_id, ctx.purpose_of_use, patient)
            out.disclosed.setdefault(key, (ctx, []))[1].extend(what)
        if batch.channel == outbox.REST_HOOK and send.told:
            out.streams.append(batch.stream)
            if send.handshake:
                out.statuses.append((batch.stream, "active", None))
        return
    assert error is not None
    if send.dead is not None or error in ("nack-AE", "nack-CE") or error.startswith("reject-"):
        # dead from the start, or the receiver read it and refused its content: sending it
        # again cannot help, and retrying would hold up everything after it in the stream
        out.dead += [(row, error) for row in send.told]
        return
    out.failed += [(row, error) for row in send.told]
    if send.handshake:
        out.statuses.append((batch.stream, "error", f"handshake: {error}"))


@dataclass(frozen=True)
class _Notice:
    """What every notification of one subscription in a round says about it."""

    base: str
    subscription: str
    spec: SubscriptionSpec
    status: str
    events_total: int

    def encode(self, kind: str, events: Sequence[notifications.Event] = ()) -> bytes:
        body = notifications.bundle(
            base=self.base,
            subscription=self.subscription,
            topic=self.spec.topic,
            status=self.status,
            kind=kind,
            events_total=self.events_total,
            events=events,
            payload=self.spec.payload,
        )
        return notifications.encode(body)


def _denial(ctx: AuditContext, row: Row, decision: Any) -> dict[str, Any]:
    """The AuthZconsent deny of an event withheld at sending (decision None: its focus is gone)."""
    patient = None
    if decision is not None:
        patient = decision.client or next(iter(sorted(decision.clients)), None)
    return builders.consent_decision(
        ctx,
        patient,
        builders.Decision.DENY,
        [decision.consent] if decision and decision.consent else [],
        what=row.focus,
        reason=decision.reason.value if decision else "gone",
    )


def _chunks(rows: list[Row], size: int) -> list[list[Row]]:
    """Notifications of up to `size` events, in order; a handshake never rides along."""
    cut = next((i for i, r in enumerate(rows) if r.kind == "handshake"), len(rows))
    rows = rows[:cut]
    return [rows[i : i + size] for i in range(0, len(rows), max(size, 1))]


def endpoint_allowed(url: str, organisation: Any, test_mode: bool) -> bool:
    """Whether `url` may be pushed to now: the same rules as when the Subscription was written
    (its organisation's registration may have changed since)."""
    try:
        check_endpoint(url, organisation, test_mode)
    except FhirError:
        return False
    return True


def _invalid(message: str) -> str | None:
    """ "invalid-outbound" when hl7apy finds an error (not a warning) in an HL7 v2 message."""
    if not message:
        return "build-failed"
    try:
        problems = validate_outbound(message)
    except Hl7Error as exc:
        return exc.code
    return "invalid-outbound" if any(p.startswith("error:") for p in problems) else None
