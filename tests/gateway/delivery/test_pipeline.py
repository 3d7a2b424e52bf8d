"""The relay thread's rounds, pipelined and plain, on both stores (relay.Relay._round when
looping; pipelined is PostgreSQL's default). Pipelined, while one step's batches are sent the
next step is claimed and prepared (each stream's continuation, outbox.claim(after=)), and each
step is recorded while the next is sent. A real receiver answers; one push fails. Each
subscription still gets every event once, in order, one push at a time; the failed one is
retried before anything after it, and every try is counted."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from fastapi.testclient import TestClient

from gateway.delivery import outbox
from gateway.delivery.outbox import Backoff
from gateway.delivery.relay import Relay
from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from tests.gateway.delivery.receiver import Receiver
from tests.gateway.delivery.support import BACKPORT, drain, patch, register, rows, subscription

Acting = Callable[..., Any]
KELA_OWNS = "Task?owner=Organization/org-kela"
CHANGES = 30


class Watching(Receiver):
    """Also counts the pushes in flight per path at once (the most seen)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.flying: Counter[str] = Counter()
        self.most: Counter[str] = Counter()

    async def _handle(self, request: web.Request) -> web.Response:
        self.flying[request.path] += 1
        self.most[request.path] = max(self.most[request.path], self.flying[request.path])
        try:
            return await super()._handle(request)
        finally:
            self.flying[request.path] -= 1


@pytest.fixture
def receiver() -> Iterator[Watching]:
    with Watching(delay=0.002) as r:
        yield r


@pytest.fixture
def network(services: Services, client: TestClient, receiver: Watching) -> Services:
    load_samples(services)
    register(services, "kela", f"http://127.0.0.1:{receiver.port}/")
    return services


@pytest.mark.parametrize("pipeline", [True, False], ids=["pipelined", "plain"])
def test_relay_thread_rounds_keep_order_and_count_every_try(
    network: Services,
    org_client: Acting,
    receiver: Watching,
    monkeypatch: pytest.MonkeyPatch,
    pipeline: bool,
) -> None:
    kela = org_client("kela")
    one = ({"url": BACKPORT + "max-count", "valuePositiveInt": 1},)  # one event per push
    subs = {}
    for name in ("a", "b"):
        body = subscription(f"{receiver.url}/{name}", KELA_OWNS, channel_extensions=one)
        made = kela.post("/fhir/Subscription", json=body)
        assert made.status_code == 201, made.text
        subs[name] = str(made.json()["id"])
    drain(network)  # the handshakes (run_once: not pipelined)
    for n in range(CHANGES):
        status = "in-progress" if n % 2 == 0 else "on-hold"
        assert patch(kela, "Task/aino-task-kela", status=status).status_code == 200
    tries: Counter[int] = Counter()

    def answer(got: Any) -> int:
        if got.path == "/notify/a" and got.event_numbers:
            tries[got.event_numbers[0]] += 1
            if got.event_numbers == [7] and tries[7] == 1:
                return 503  # once: the stream stops there and its continuation is given back
        return 200

    receiver.answer = answer
    continued: list[int] = []
    real = outbox.claim

    def claim(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        after = kwargs.get("after") or {}
        continued.extend(len(b.rows) for b in got if b.stream in after)
        return got

    monkeypatch.setattr(outbox, "claim", claim)
    backoff = Backoff(base=0.2, cap=0.2, jitter=0.0)
    sender = Relay(network, backoff=backoff, burst=3, drive=2.0, pipeline=pipeline)
    sender.start()
    try:
        deadline = time.monotonic() + 30
        while len(receiver.events()) < 2 * CHANGES and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sender.stop()
    for name, sub in subs.items():
        told = [
            n for r in receiver.received if r.path == f"/notify/{name}" for n in r.event_numbers
        ]
        assert told == list(range(1, CHANGES + 1)), name  # each once, in order
        assert receiver.most[f"/notify/{name}"] == 1  # one push at a time per subscription
        attempts = {r.seq: (r.state, r.attempts) for r in rows(network, sub) if r.kind == "event"}
        assert attempts == {
            n: ("sent", 2 if (name, n) == ("a", 7) else 1) for n in range(1, CHANGES + 1)
        }, name
    assert tries[7] == 2  # the failure was retried
    assert (sum(continued) > 0) == pipeline  # continuations claimed only when pipelined
    with network.repo.reader() as session:  # nothing left leased or due
        left = session.query("SELECT COUNT(*) FROM outbox WHERE sent_us IS NULL")
    assert left[0][0] == 0


def test_a_claim_whose_preparing_fails_gives_its_leases_back(
    network: Services, org_client: Acting, receiver: Watching, monkeypatch: pytest.MonkeyPatch
) -> None:
    kela = org_client("kela")
    made = kela.post("/fhir/Subscription", json=subscription(receiver.url, KELA_OWNS))
    assert made.status_code == 201, made.text
    drain(network)
    assert patch(kela, "Task/aino-task-kela", status="in-progress").status_code == 200
    sender = Relay(network)

    def broken(batches: Any) -> Any:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(sender, "_prepare", broken)
    with pytest.raises(ConnectionError):
        sender._claim_and_prepare(outbox._now_us(), {})
    (row,) = [r for r in rows(network, str(made.json()["id"])) if r.kind == "event"]
    assert (row.state, row.attempts) == ("pending", 0)
    assert row.next_us <= outbox._now_us()  # due again now, not after the lease
    monkeypatch.undo()
    drain(network)
    assert receiver.events() == [1]


def _slow_stream(
    network: Services, kela: Any, receiver: Watching, changes: int, mp: pytest.MonkeyPatch
) -> tuple[str, list[tuple[int, bool]]]:
    """A max-count 1 subscription, handshaken, with `changes` events waiting, its receiver
    slow (~3 pushes fit in a 0.1 s round budget); and the list its claims go to from now on."""
    one = ({"url": BACKPORT + "max-count", "valuePositiveInt": 1},)
    made = kela.post(
        "/fhir/Subscription",
        json=subscription(f"{receiver.url}/slow", KELA_OWNS, channel_extensions=one),
    )
    assert made.status_code == 201, made.text
    sub = str(made.json()["id"])
    drain(network)
    for n in range(changes):
        status = "in-progress" if n % 2 == 0 else "on-hold"
        assert patch(kela, "Task/aino-task-kela", status=status).status_code == 200
    receiver.delay = 0.04
    return sub, _claims_of(sub, mp)


def _claims_of(sub: str, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """(rows, continuation?) of every claim of `sub`'s stream from now on."""
    claimed: list[tuple[int, bool]] = []
    real = outbox.claim

    def claim(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        after = kwargs.get("after") or {}
        claimed.extend((len(b.rows), b.stream in after) for b in got if b.stream == sub)
        return got

    monkeypatch.setattr(outbox, "claim", claim)
    return claimed


def test_a_partner_too_slow_for_its_burst_is_claimed_for_at_its_pace(
    network: Services,
    org_client: Acting,
    receiver: Watching,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream whose step ran out of round_budget before it sent all it had claimed is next
    claimed for twice what it sent (at least 4 notifications), not a whole burst; a failed
    push too; once it keeps up again, a whole burst. Every event still goes once, in order."""
    changes = 60
    sub, claimed = _slow_stream(network, org_client("kela"), receiver, changes, monkeypatch)
    now = Backoff(base=0.0, jitter=0.0)  # a failed row is due again at once
    sender = Relay(network, backoff=now, burst=20, round_budget=0.1, pipeline=False)
    sender.run_once()
    assert claimed == [(20, False)]  # a whole burst first
    paced = sender._pace[sub]
    assert 1 <= paced < 20
    sender.run_once()
    assert claimed[1] == (max(4, 2 * paced), False)
    receiver.delay = 0.0  # it keeps up (and has all the time it needs): a whole burst again
    sender.round_budget = 30.0
    sender.run_once()
    assert sub not in sender._pace
    left = changes - len(receiver.events())
    assert left > 20
    sender.run_once()
    assert claimed[-1] == (20, False)
    receiver.answer = lambda got: 503  # down: its next claims take 4, the failed row first
    sender.run_once()
    assert claimed[-1] == (20, False) and sender._pace[sub] == 0
    sender.run_once()
    assert claimed[-1] == (4, False)
    receiver.answer = lambda got: 200
    for _ in range(20):
        if not sender.run_once():
            break
    told = [n for r in receiver.received if r.path == "/notify/slow" for n in r.event_numbers]
    assert told == list(range(1, changes + 1))


def test_a_pipelined_relay_does_not_continue_a_stream_too_slow_for_its_step(
    network: Services,
    org_client: Acting,
    receiver: Watching,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pipelined, a stream that could not send its whole step is not continued while its next
    step is in flight (the continuation would be dropped unsent); it comes due again as a
    head, claimed at its pace. Every event still goes once, in order."""
    changes = 24
    _, claimed = _slow_stream(network, org_client("kela"), receiver, changes, monkeypatch)
    backoff = Backoff(base=0.2, cap=0.2, jitter=0.0)
    sender = Relay(network, backoff=backoff, burst=20, round_budget=0.1, drive=2.0, pipeline=True)
    sender.start()
    try:
        deadline = time.monotonic() + 30
        while len(receiver.events()) < changes and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sender.stop()
    told = [n for r in receiver.received if r.path == "/notify/slow" for n in r.event_numbers]
    assert told == list(range(1, changes + 1))
    assert claimed[0] == (20, False)
    # once a step was cut (the first: its continuation was claimed before that was known),
    # no continuation, and no claim bigger than its pace asks
    assert all(not continued and rows <= 8 for rows, continued in claimed[2:]), claimed


def test_a_step_claims_at_most_step_total_rows_of_all_streams(
    network: Services, org_client: Acting, receiver: Watching
) -> None:
    """Each stream's share of a step: burst notifications of max-count rows, at most step_rows;
    and all of them together at most step_total (each stream a notification's worth at least)."""
    kela = org_client("kela")
    ids = []
    for name, count in (("a", 20), ("b", 20), ("c", 2)):
        extension = ({"url": BACKPORT + "max-count", "valuePositiveInt": count},)
        body = subscription(f"{receiver.url}/{name}", KELA_OWNS, channel_extensions=extension)
        made = kela.post("/fhir/Subscription", json=body)
        assert made.status_code == 201, made.text
        ids.append(str(made.json()["id"]))
    a, b, c = ids
    with network.repo.reader() as session:
        roomy = Relay(network, burst=20, step_rows=50, step_total=1000)
        assert roomy._rows_per_stream(session, ids) == {a: 50, b: 50, c: 40}
        tight = Relay(network, burst=20, step_rows=50, step_total=70)
        assert tight._rows_per_stream(session, ids) == {a: 25, b: 25, c: 20}
        tightest = Relay(network, burst=20, step_rows=50, step_total=10)
        assert tightest._rows_per_stream(session, ids) == {a: 20, b: 20, c: 2}
