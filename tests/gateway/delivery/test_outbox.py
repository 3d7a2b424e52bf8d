"""The outbox on both stores (gateway/delivery/outbox.py): claims keep each stream in order
and leased once, leases end (at-least-once after a crash), dead letters step aside and can be
re-sent, pruning forgets only old delivered rows, and backoff grows with bounded jitter. Two
claimers at once never share a row or a stream."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import pytest

from gateway.delivery import outbox
from gateway.delivery.outbox import Backoff, Batch
from gateway.fhir_api.context import Services
from gateway.storage.base import Session

NOW = 1_000_000_000_000  # µs; any fixed instant will do: the outbox reads no clock
LEASE = 60_000_000
Size = Callable[[Session, Sequence[str]], Mapping[str, int]]


def stream(session: Session, sub_id: str, status: str = "active") -> None:
    """A subscription row: rest-hook streams are claimed only while theirs is not off."""
    session.execute(
        "INSERT INTO subscriptions (id, organization, topic, resource_type, spec, status) "
        "VALUES (?, '', 't', 'Task', '{}', ?)",
        (sub_id, status),
    )


def queue(
    svc: Services, sub_id: str, count: int, *, first: int = 1, status: str = "active"
) -> None:
    """`count` event rows numbered from `first` on a new stream (ids: '<stream>-<number>')."""
    with svc.repo.writer() as session:
        stream(session, sub_id, status)
        for seq in range(first, first + count):
            outbox.add(
                session,
                id=f"{sub_id}-{seq}",
                channel=outbox.REST_HOOK,
                stream=sub_id,
                destination="https://partner.example/hook",
                now=NOW,
                seq=seq,
                focus=f"Task/t/_history/{seq}",
            )


def sizes(n: int) -> Size:
    return lambda _session, streams: dict.fromkeys(streams, n)


def claim(svc: Services, now: int = NOW, size: int = 3, streams: int = 64) -> list[Batch]:
    return outbox.claim(svc.repo, now, lease_us=LEASE, streams=streams, batch_size=sizes(size))


def by_stream(batches: list[Batch]) -> dict[str, list[int]]:
    return {b.stream: [r.seq for r in b.rows] for b in batches}


def mark(svc: Services, batches: list[Batch], how: str = "sent", now: int = NOW) -> None:
    with svc.repo.writer() as session:
        for batch in batches:
            if how == "sent":
                outbox.mark_sent(session, batch.rows, now)
            else:
                for row in batch.rows:
                    outbox.mark_dead(session, row, now, "http-500")


# -- claiming ------------------------------------------------------------------------------
def test_claim_gives_each_streams_head_and_followers_up_to_the_batch_size(
    services: Services,
) -> None:
    queue(services, "a", 5)
    queue(services, "b", 2)
    batches = claim(services, size=3)
    assert by_stream(batches) == {"a": [1, 2, 3], "b": [1, 2]}
    assert all(r.attempts == 1 for b in batches for r in b.rows)
    # a stream with a batch out is not claimed again, not even its rows after the batch
    assert claim(services, size=3) == []
    mark(services, batches)
    again = claim(services, size=3)
    assert by_stream(again) == {"a": [4, 5]}


def test_claim_takes_at_most_the_streams_asked_for_oldest_first(services: Services) -> None:
    for name in ("s1", "s2", "s3"):
        queue(services, name, 1)
    assert [b.stream for b in claim(services, streams=2)] == ["s1", "s2"]
    assert [b.stream for b in claim(services, streams=2)] == ["s3"]


def test_a_row_not_yet_due_holds_its_stream(services: Services) -> None:
    queue(services, "a", 2)
    with services.repo.writer() as session:
        session.execute("UPDATE outbox SET next_us = ? WHERE id = 'a-1'", (NOW + 5,))
    assert claim(services) == []  # a-2 waits behind a-1: order before speed
    assert by_stream(claim(services, now=NOW + 5)) == {"a": [1, 2]}


def test_a_round_with_nothing_claimable_takes_no_write_lock(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A partner down: its head waits out a backoff while the rows behind it are due; and an off
    # subscription's rows. Neither may cost every idle relay round a writer transaction.
    queue(services, "a", 3)
    queue(services, "quiet", 1, status="off")
    with services.repo.writer() as session:
        session.execute("UPDATE outbox SET next_us = ? WHERE id = 'a-1'", (NOW + LEASE,))
    writers: list[int] = []
    real = services.repo.writer
    monkeypatch.setattr(services.repo, "writer", lambda **kw: writers.append(1) or real(**kw))
    assert claim(services) == []
    assert writers == []
    assert by_stream(claim(services, now=NOW + LEASE)) == {"a": [1, 2, 3]}
    assert writers == [1]


def test_an_expired_lease_makes_the_rows_due_again(services: Services) -> None:
    # At-least-once: a relay that died after claiming (or mid-send) left its lease behind.
    queue(services, "a", 2)
    first = claim(services)
    assert claim(services, now=NOW + LEASE - 1) == []
    again = claim(services, now=NOW + LEASE)
    assert by_stream(again) == by_stream(first) == {"a": [1, 2]}
    assert [r.id for r in again[0].rows] == [r.id for r in first[0].rows]  # the same event ids
    # the head's lease counted a try; the row after it was never leased nor recorded as tried
    assert [r.attempts for r in again[0].rows] == [2, 1]


def test_a_dead_letter_does_not_block_the_rows_after_it(services: Services) -> None:
    queue(services, "a", 3)
    head = claim(services, size=1)
    mark(services, head, how="dead")
    assert by_stream(claim(services, size=5)) == {"a": [2, 3]}
    with services.repo.reader() as session:
        assert outbox.counts(session, "a") == {"pending": 2, "dead": 1}
        assert [r.state for r in outbox.listing(session, stream="a")] == [
            "dead",
            "pending",
            "pending",
        ]


def test_a_handshake_goes_alone_and_nothing_overtakes_it(services: Services) -> None:
    queue(services, "a", 2)
    with services.repo.writer() as session:
        outbox.add(
            session,
            id="a-hs",
            channel=outbox.REST_HOOK,
            stream="a",
            destination="https://partner.example/hook",
            now=NOW,
            kind="handshake",
        )
    first = claim(services, size=10)
    assert [(r.kind, r.seq) for r in first[0].rows] == [("event", 1), ("event", 2)]
    mark(services, first)
    second = claim(services, size=10)
    assert [r.kind for r in second[0].rows] == ["handshake"]


def test_an_off_subscription_is_skipped_and_an_mllp_stream_needs_none(
    services: Services,
) -> None:
    queue(services, "quiet", 2, status="off")
    with services.repo.writer() as session:
        for n in (1, 2):
            outbox.add(
                session,
                id=f"m{n}",
                channel=outbox.MLLP,
                stream="record:2575",
                destination="record:2575",
                now=NOW,
                kind="message",
                payload="MSH|...",
            )
    batches = claim(services, size=10)
    assert by_stream(batches) == {"record:2575": [0]}  # HL7 v2 goes one message at a time


# -- re-sending and pruning -----------------------------------------------------------------
def test_resend_puts_dead_rows_back_with_a_new_retry_window(services: Services) -> None:
    queue(services, "a", 2)
    queue(services, "b", 1)
    mark(services, claim(services, size=1), how="dead")  # a-1 and b-1 dead
    later = NOW + 10_000_000
    with services.repo.writer() as session:
        assert outbox.resend(session, later) == 0  # nothing named: nothing re-sent
        assert outbox.resend(session, later, ids=["a-1"]) == 1
    claimed = claim(services, now=later, size=5)
    assert by_stream(claimed) == {"a": [1, 2]}  # its old place, before a-2
    row = claimed[0].rows[0]
    assert (row.since_us, row.attempts) == (later, 1)  # a new retry window, counted afresh
    with services.repo.writer() as session:
        assert outbox.resend(session, later, stream="b") == 1
        assert outbox.resend(session, later, all_dead=True) == 0  # none left


def test_move_behind_puts_waiting_rows_after_a_new_first_row(services: Services) -> None:
    # A renewed subscription: sent 1, dead 2, waiting 3 and 4 and an old handshake, then a new
    # handshake that must go first.
    queue(services, "a", 4)
    with services.repo.writer() as session:
        outbox.add(
            session,
            id="a-old-hs",
            channel=outbox.REST_HOOK,
            stream="a",
            destination="https://partner.example/hook",
            now=NOW,
            kind="handshake",
        )
    one, two = claim(services, size=2)[0].rows
    with services.repo.writer() as session:
        outbox.mark_sent(session, [one], NOW)
        outbox.mark_dead(session, two, NOW, "http-500")
        session.execute("UPDATE outbox SET attempts = 3, next_us = ? WHERE id = 'a-4'", (NOW + 7,))
        outbox.add(
            session,
            id="a-new-hs",
            channel=outbox.REST_HOOK,
            stream="a",
            destination="https://partner.example/new",
            now=NOW,
            kind="handshake",
        )
        outbox.move_behind(session, "a", "a-new-hs")
        listed = outbox.listing(session, stream="a")
    assert [(r.id, r.state) for r in listed] == [
        ("a-1", "sent"),
        ("a-2", "dead"),  # stays where it was: resend puts it back in its old place
        ("a-new-hs", "pending"),
        ("a-3", "pending"),
        ("a-4", "pending"),  # the superseded handshake is gone
    ]
    assert (listed[-1].attempts, listed[-1].next_us) == (3, NOW + 7)  # its retry state kept
    assert [r.kind for r in claim(services, size=5)[0].rows] == ["handshake"]


def test_prune_forgets_only_rows_delivered_before_the_cut(services: Services) -> None:
    queue(services, "a", 4)
    batch = claim(services, size=4)[0]
    old, new, withheld, dead = batch.rows
    with services.repo.writer() as session:
        outbox.mark_sent(session, [old], NOW)
        outbox.mark_sent(session, [new], NOW + 100)
        outbox.mark_withheld(session, withheld, NOW, "withheld-consent")
        outbox.mark_dead(session, dead, NOW, "http-500")
    queue(services, "b", 1)  # pending
    with services.repo.writer() as session:
        outbox.prune(session, NOW + 100)
        kept = [r.id for r in outbox.listing(session)]
    assert kept == ["a-2", "a-4", "b-1"]


# -- backoff ---------------------------------------------------------------------------------
def test_backoff_doubles_up_to_its_cap() -> None:
    steady = Backoff(base=2.0, cap=60.0, jitter=0.0)
    assert [steady.delay_us(n) // 1_000_000 for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert steady.delay_us(10_000) == 60_000_000  # no overflow for a long-failing row


def test_backoff_jitter_stays_within_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    backoff = Backoff(base=2.0, cap=600.0, jitter=0.2)
    draws = {backoff.delay_us(4) for _ in range(200)}
    assert all(12_800_000 <= d <= 19_200_000 for d in draws)  # 16 s ± 20 %
    assert len(draws) > 100  # spread, so rows failing together come back apart
    monkeypatch.setattr(outbox.random, "random", lambda: 0.0)
    assert backoff.delay_us(4) == 12_800_000
    monkeypatch.setattr(outbox.random, "random", lambda: 0.999999)
    assert 19_199_000 < backoff.delay_us(4) <= 19_200_000


def test_a_failure_is_retried_after_the_backoff_until_the_window_closes(
    services: Services,
) -> None:
    backoff = Backoff(base=2.0, jitter=0.0, give_up=3600.0)
    queue(services, "a", 2)
    row = claim(services, size=1)[0].rows[0]
    with services.repo.writer() as session:
        assert not outbox.mark_failed(session, row, NOW, "http-503", backoff)
    assert claim(services, now=NOW + 2_000_000 - 1) == []
    again = claim(services, now=NOW + 2_000_000, size=1)[0].rows[0]
    assert again.id == row.id and again.attempts == 2
    closed = NOW + 3600 * 1_000_000 + 1
    assert backoff.expired(again, closed) and not backoff.expired(again, closed - 1)
    with services.repo.writer() as session:
        assert outbox.mark_failed(session, again, closed, "http-503", backoff)
        dead = outbox.listing(session, state="dead")
    assert [(d.id, d.last_error) for d in dead] == [("a-1", "gave-up-http-503")]
    assert by_stream(claim(services, now=closed)) == {"a": [2]}


# -- several relays ----------------------------------------------------------------------------
def test_a_claim_in_flight_hides_its_streams_from_a_parallel_claim(services: Services) -> None:
    """The first claim pauses inside its transaction (after taking its heads) while a second
    claims: the second takes only the other streams."""
    for name in ("s1", "s2", "s3", "s4"):
        queue(services, name, 3)
    inside, release = threading.Event(), threading.Event()
    got: dict[str, list[Batch]] = {}

    def slow(_session: Session, streams: Sequence[str]) -> dict[str, int]:
        inside.set()
        release.wait(10)
        return dict.fromkeys(streams, 2)

    def first() -> None:
        got["first"] = outbox.claim(services.repo, NOW, lease_us=LEASE, streams=2, batch_size=slow)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(10)
        if services.repo.dialect == "sqlite":
            release.set()  # one writer at a time: the second simply waits its turn
        got["second"] = claim(services, size=2)
    finally:
        release.set()
        thread.join(10)
    assert by_stream(got["first"]) == {"s1": [1, 2], "s2": [1, 2]}
    assert by_stream(got["second"]) == {"s3": [1, 2], "s4": [1, 2]}


def test_two_relays_claiming_together_never_share_a_row_or_a_stream(
    services: Services,
) -> None:
    names = [f"s{i}" for i in range(8)]
    for name in names:
        queue(services, name, 6)
    out: list[Batch] = []
    in_flight: set[str] = set()
    lock = threading.Lock()
    problems: list[str] = []

    def relay() -> None:
        idle = 0
        while idle < 3:
            batches = claim(services, size=2, streams=3)
            idle = 0 if batches else idle + 1
            with lock:
                for b in batches:
                    if b.stream in in_flight:
                        problems.append(f"{b.stream} claimed twice at once")
                    in_flight.add(b.stream)
                out.extend(batches)
            with services.repo.writer() as session:
                outbox.mark_sent(session, [r for b in batches for r in b.rows], NOW)
                with lock:  # before the commit: nobody can claim these streams yet
                    in_flight.difference_update(b.stream for b in batches)

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert problems == []
    sent = [r.id for b in out for r in b.rows]
    assert sorted(sent) == sorted(f"{n}-{s}" for n in names for s in range(1, 7))  # once each
    for name in names:  # and in order
        assert [r.seq for b in out if b.stream == name for r in b.rows] == [1, 2, 3, 4, 5, 6]


def test_a_claim_stops_before_a_row_leased_by_a_batch_in_flight(services: Services) -> None:
    """A re-sent row put back ahead of a batch another claim holds becomes its stream's head:
    a claim takes it alone, never the leased rows behind it (not in flight twice at once)."""
    queue(services, "a", 4)
    with services.repo.writer() as session:  # rows 2.. leased, as a claim in flight left them
        session.execute("UPDATE outbox SET next_us = ? WHERE id IN ('a-2', 'a-3')", (NOW + 9,))
    assert by_stream(claim(services, size=4)) == {"a": [1]}


def test_a_continuation_is_the_rows_after_a_batch_in_flight_and_can_be_given_back(
    services: Services,
) -> None:
    """claim(after=): the holder of a stream takes the rows after its batch in flight (their
    first leased, as the head it becomes), nobody else takes any of the stream meanwhile, and
    `release` gives a continuation that was never sent back as it was."""
    queue(services, "a", 6)
    queue(services, "b", 2)
    first = claim(services, size=2, streams=1)
    assert by_stream(first) == {"a": [1, 2]}
    after = {"a": first[0].rows[-1].pos}
    more = outbox.claim(
        services.repo, NOW, lease_us=LEASE, batch_size=sizes(2), after=after, heads=False
    )
    assert by_stream(more) == {"a": [3, 4]}  # only the continuation: no heads looked for
    assert by_stream(claim(services, size=9)) == {"b": [1, 2]}  # "a" is held: not claimed
    outbox.release(services.repo, more)
    with services.repo.reader() as session:
        listed = {r.seq: (r.attempts, r.next_us) for r in outbox.listing(session, stream="a")}
    assert listed[3] == (0, listed[3][1]) and listed[3][1] <= outbox._now_us()
    assert listed[1][0] == 1 and listed[1][1] == NOW + LEASE  # the head it follows: still held


def test_no_continuation_for_a_subscription_no_longer_active_or_before_a_handshake(
    services: Services,
) -> None:
    queue(services, "a", 2)
    queue(services, "h", 1)
    with services.repo.writer() as session:  # "h": a renewed subscription's handshake next
        outbox.add(
            session, id="h-hs", channel=outbox.REST_HOOK, stream="h", kind="handshake",
            destination="https://partner.example/hook", now=NOW,
        )  # fmt: skip
        session.execute("UPDATE subscriptions SET status = 'error' WHERE id = 'a'")
    held = claim(services, size=1)
    after = {b.stream: b.rows[-1].pos for b in held}
    assert set(after) == {"h"}  # "a" is not active: its rows wait, not even claimed
    more = outbox.claim(services.repo, NOW, lease_us=LEASE, batch_size=sizes(5), after=after)
    assert more == []
