"""Subscription resources as delivery state, on both stores (gateway/delivery/subscriptions.py
and the relay's handshakes and heartbeats): the server owns `status`, a changed channel asks
for a new handshake, a failing handshake shows as `error` and is retried, endpoints must be
registered, only the subscriber sees its Subscription, and idle subscriptions get heartbeats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.partner_fhir.client import PartnerClient
from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from tests.gateway.delivery.receiver import Receiver
from tests.gateway.delivery.support import (
    BACKPORT,
    drain,
    heartbeat,
    patch,
    register,
    relay,
    row_of,
    rows,
    status_parameters,
    subscription,
)

Acting = Callable[..., Any]
KELA_OWNS = "Task?owner=Organization/org-kela"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def network(services: Services, client: TestClient, receiver: Receiver) -> Services:
    load_samples(services)
    register(services, "kela", f"http://127.0.0.1:{receiver.port}/")
    return services


def create(actor: Any, body: dict[str, Any]) -> dict[str, Any]:
    made = actor.post("/fhir/Subscription", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def handshakes(svc: Services, sub_id: str) -> int:
    return sum(1 for r in rows(svc, sub_id) if r.kind == "handshake")


def test_the_server_owns_status_from_the_start(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    for asked in ("active", "error", "requested"):
        made = create(kela, subscription(receiver.url, KELA_OWNS, status=asked))
        assert made["status"] == "requested", asked
        assert row_of(network, made["id"]) == ("requested", 0, None)
        assert handshakes(network, made["id"]) == 1
    off = create(kela, subscription(receiver.url, KELA_OWNS, status="off"))
    assert off["status"] == "off" and handshakes(network, off["id"]) == 0


def test_an_unchanged_put_keeps_active_and_a_changed_channel_asks_again(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    sub = create(kela, subscription(receiver.url, KELA_OWNS))["id"]
    drain(network)
    live = kela.get(f"/fhir/Subscription/{sub}").json()
    assert live["status"] == "active"
    # the same channel (whatever status the client sends back, and another reason) stays active
    same = kela.put(
        f"/fhir/Subscription/{sub}", json={**live, "status": "requested", "reason": "renamed"}
    )
    assert same.json()["status"] == "active", same.text
    assert handshakes(network, sub) == 1
    narrower = subscription(receiver.url, "Task?status=requested")["_criteria"]
    for change in (
        lambda s: {**s, "channel": {**s["channel"], "endpoint": receiver.url + "/moved"}},
        lambda s: {**s, "_criteria": narrower},
    ):
        put = kela.put(f"/fhir/Subscription/{sub}", json=change(live))
        assert put.json()["status"] == "requested", put.text
        drain(network)
        live = kela.get(f"/fhir/Subscription/{sub}").json()
        assert live["status"] == "active"
    assert handshakes(network, sub) == 3
    assert [r.path for r in receiver.received] == ["/notify", "/notify/moved", "/notify/moved"]
    assert receiver.kinds() == ["handshake"] * 3


def test_events_waiting_when_the_channel_changes_follow_its_new_handshake(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    sub = create(kela, subscription(receiver.url, KELA_OWNS))["id"]
    drain(network)
    assert patch(kela, "Task/aino-task-kela", status="in-progress").status_code == 200
    live = kela.get(f"/fhir/Subscription/{sub}").json()
    moved = {**live, "channel": {**live["channel"], "endpoint": receiver.url + "/moved"}}
    assert kela.put(f"/fhir/Subscription/{sub}", json=moved).json()["status"] == "requested"
    off = kela.put(f"/fhir/Subscription/{sub}", json={**moved, "status": "off"}).json()
    assert kela.put(f"/fhir/Subscription/{sub}", json={**off, "status": "active"}).is_success
    drain(network)
    # one handshake (the newest: it supersedes the one queued before the subscription went off),
    # then the waiting event, both at the new endpoint
    assert [(r.path, r.kind) for r in receiver.received] == [
        ("/notify", "handshake"),
        ("/notify/moved", "handshake"),
        ("/notify/moved", "event-notification"),
    ]
    assert receiver.received[-1].event_numbers == [1]


def test_the_subscriber_may_turn_it_off_and_on_again(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    sub = create(kela, subscription(receiver.url, KELA_OWNS))["id"]
    drain(network)
    live = kela.get(f"/fhir/Subscription/{sub}").json()
    off = kela.put(f"/fhir/Subscription/{sub}", json={**live, "status": "off"}).json()
    assert off["status"] == "off" and row_of(network, sub) == ("off", 0, None)
    assert patch(kela, "Task/aino-task-kela", status="in-progress").status_code == 200
    drain(network)
    assert receiver.events() == []  # off: nothing matched
    on = kela.put(f"/fhir/Subscription/{sub}", json={**off, "status": "active"}).json()
    assert on["status"] == "requested"  # on again only through a new handshake
    drain(network)
    assert kela.get(f"/fhir/Subscription/{sub}").json()["status"] == "active"
    assert receiver.kinds() == ["handshake", "handshake"]


def test_a_failing_handshake_shows_as_error_and_is_retried(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    answers = iter([503, 503])
    receiver.answer = lambda _: next(answers, 200)
    kela = org_client("kela")
    sub = create(kela, subscription(receiver.url, KELA_OWNS))["id"]
    sender = relay(network)
    assert sender.run_once() == 1
    failed = kela.get(f"/fhir/Subscription/{sub}").json()
    assert failed["status"] == "error" and failed["error"] == "handshake: http-503"
    assert row_of(network, sub) == ("error", 0, "handshake: http-503")
    (pending,) = rows(network, sub)
    assert (pending.state, pending.attempts, pending.last_error) == ("pending", 1, "http-503")
    # an unrelated change by the subscriber keeps the server's status and error
    kept = kela.put(f"/fhir/Subscription/{sub}", json={**failed, "reason": "renamed"}).json()
    assert (kept["status"], kept.get("error")) == ("error", "handshake: http-503")
    assert row_of(network, sub) == ("error", 0, "handshake: http-503")
    assert sender.run_once() == 1  # retried (backoff 0 here), fails again: still error
    assert kela.get(f"/fhir/Subscription/{sub}").json()["status"] == "error"
    assert sender.run_once() == 1
    healed = kela.get(f"/fhir/Subscription/{sub}").json()
    assert healed["status"] == "active" and "error" not in healed
    assert row_of(network, sub) == ("active", 0, None)
    assert [r.state for r in rows(network, sub)] == ["sent"]
    # the client cannot write the server's error either
    put = kela.put(f"/fhir/Subscription/{sub}", json={**healed, "error": "made up"})
    assert "error" not in put.json()


def test_an_endpoint_outside_the_registration_is_refused(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    sub = create(kela, subscription(receiver.url, KELA_OWNS))
    for endpoint in (
        f"http://127.0.0.1:{receiver.port + 1}/notify",  # another port
        "https://kela.example/fhir-notifications",  # the demo registration, now replaced
        "http://partner.example/notify",  # plain http off the loopback
    ):
        put = kela.put(
            f"/fhir/Subscription/{sub['id']}",
            json={**sub, "channel": {**sub["channel"], "endpoint": endpoint}},
        )
        assert put.status_code == 400, put.text
        assert put.json()["issue"][0]["expression"] == ["Subscription.channel.endpoint"]
    assert handshakes(network, sub["id"]) == 1


def test_only_the_subscribing_organisation_sees_its_subscription(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela, other = org_client("kela"), org_client("sote-keskus")
    sub = create(kela, subscription(receiver.url, KELA_OWNS))
    path = f"/fhir/Subscription/{sub['id']}"
    assert kela.get(path).status_code == 200
    assert other.get(path).status_code == 404
    assert other.get(f"{path}/$status").status_code == 404
    assert "entry" not in other.get("/fhir/Subscription").json()
    assert [e["resource"]["id"] for e in kela.get("/fhir/Subscription").json()["entry"]] == [
        sub["id"]
    ]
    assert other.put(path, json={**sub, "status": "off"}).status_code in (403, 404)
    assert other.delete(path).status_code == 204  # hidden: as if it did not exist
    assert kela.get(path).status_code == 200
    assert row_of(network, sub["id"]) == ("requested", 0, None)


# -- heartbeats ------------------------------------------------------------------------------
def beat(svc: Services) -> int:
    """One heartbeat pass of a relay; how many heartbeats were delivered."""
    sender = relay(svc)

    async def once() -> int:
        async with PartnerClient() as client:
            return await sender.heartbeats(client)

    return asyncio.run(once())


def idle_for(svc: Services, sub_id: str, seconds: float) -> None:
    """Move the subscription's heartbeat clock back (the period is at least 10 s)."""
    with svc.repo.writer() as session:
        last = session.query("SELECT last_sent_us FROM subscriptions WHERE id = ?", (sub_id,))
        session.execute(
            "UPDATE subscriptions SET last_sent_us = ? WHERE id = ?",
            (int(last[0][0]) - int(seconds * 1_000_000), sub_id),
        )


def test_an_idle_active_subscription_gets_heartbeats_at_its_period(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    beating = create(
        kela, subscription(receiver.url, KELA_OWNS, channel_extensions=(heartbeat(10),))
    )["id"]
    silent = create(kela, subscription(receiver.url, KELA_OWNS))["id"]  # asked for none
    drain(network)
    assert beat(network) == 0  # the handshake was just sent
    idle_for(network, beating, 9)
    idle_for(network, silent, 3600)
    assert beat(network) == 0
    idle_for(network, beating, 1.1)
    assert beat(network) == 1
    last = receiver.received[-1]
    assert last.kind == "heartbeat"
    params = {p["name"]: p for p in status_parameters(last.body)}
    assert params["subscription"]["valueReference"]["reference"].endswith(f"/{beating}")
    assert params["events-since-subscription-start"]["valueString"] == "0"
    assert beat(network) == 0  # not again before the next period


def test_no_heartbeat_while_events_wait(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    sub = create(kela, subscription(receiver.url, KELA_OWNS, channel_extensions=(heartbeat(10),)))[
        "id"
    ]
    drain(network)
    assert patch(kela, "Task/aino-task-kela", status="in-progress").status_code == 200
    idle_for(network, sub, 60)
    assert beat(network) == 0  # the event itself is due: it tells the partner we are alive
    drain(network)
    assert receiver.kinds() == ["handshake", "event-notification"]


def test_every_try_of_every_row_is_counted_though_a_claim_leases_only_the_head(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    """A round claims a stream's head and the rows after it but leases only the head: a row
    after it is counted as tried when its notification's outcome is recorded, sent or failed."""
    kela = org_client("kela")
    one = ({"url": BACKPORT + "max-count", "valuePositiveInt": 1},)  # one event per push
    sub = create(kela, subscription(receiver.url, KELA_OWNS, channel_extensions=one))["id"]
    drain(network)
    for status in ("in-progress", "on-hold", "in-progress"):
        assert patch(kela, "Task/aino-task-kela", status=status).status_code == 200
    answers = iter([200, 503])  # the first event is taken, the second fails, the third waits
    receiver.answer = lambda _: next(answers, 200)
    sender = relay(network)
    assert sender.run_once() == 1
    states = [(r.seq, r.state, r.attempts) for r in rows(network, sub) if r.kind == "event"]
    assert states == [(1, "sent", 1), (2, "pending", 1), (3, "pending", 0)]
    drain(network)
    states = [(r.seq, r.state, r.attempts) for r in rows(network, sub) if r.kind == "event"]
    assert states == [(1, "sent", 1), (2, "sent", 2), (3, "sent", 1)]
    assert [n for r in receiver.received for n in r.event_numbers] == [1, 2, 3]  # as taken


def test_end_stops_events_and_the_server_turns_the_subscription_off(
    network: Services, org_client: Acting, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R4 Subscription.end: what happens before it is told; from it on nothing is queued, and
    the relay's housekeeping turns the subscription off (a version written as the server)."""
    kela = org_client("kela")
    body = {**subscription(receiver.url, KELA_OWNS), "end": "2030-01-01T00:00:00+02:00"}
    made = create(kela, body)
    sub = made["id"]
    assert made["status"] == "requested" and made["end"] == "2030-01-01T00:00:00+02:00"
    drain(network)
    assert patch(kela, "Task/aino-task-kela", status="in-progress").status_code == 200
    drain(network)
    assert receiver.events() == [1]
    # the clock passes the end (2029-12-31T22:00:00Z)
    end_us = 1_893_448_800_000_000
    real_ns = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: end_us * 1000 + (real_ns() % 10**9))
    assert patch(kela, "Task/aino-task-kela", status="on-hold").status_code == 200
    assert [r.seq for r in rows(network, sub) if r.kind == "event"] == [1]  # not queued
    sender = relay(network)
    sender.run_once()  # housekeeping: turned off
    ended = kela.get(f"/fhir/Subscription/{sub}").json()
    assert ended["status"] == "off" and ended["meta"]["versionId"] == "3"
    assert row_of(network, sub)[0] == "off"
    assert receiver.events() == [1]
    sender.run_once()  # once off, nothing more is written
    assert kela.get(f"/fhir/Subscription/{sub}").json()["meta"]["versionId"] == "3"


def test_a_subscription_whose_end_has_passed_is_stored_off_and_never_asked(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    made = create(kela, {**subscription(receiver.url, KELA_OWNS), "end": "2020-01-01T00:00:00Z"})
    assert made["status"] == "off" and handshakes(network, made["id"]) == 0
    assert patch(kela, "Task/aino-task-kela", status="in-progress").status_code == 200
    drain(network)
    assert receiver.received == [] and rows(network, made["id"]) == []


@pytest.mark.parametrize("end", ["2030-01-01", "2030-01-01T00:00:00", "tomorrow", 1893448800])
def test_an_end_that_is_not_an_instant_is_refused_with_its_path(
    network: Services, org_client: Acting, receiver: Receiver, end: Any
) -> None:
    kela = org_client("kela")
    answer = kela.post(
        "/fhir/Subscription", json={**subscription(receiver.url, KELA_OWNS), "end": end}
    )
    assert answer.status_code == 400, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any("Subscription.end" in e for i in outcome["issue"] for e in i.get("expression", []))
    with network.repo.reader() as session:
        assert session.query("SELECT COUNT(*) FROM subscriptions")[0][0] == 0


def test_a_later_end_keeps_it_active_and_an_ended_one_comes_back_through_a_handshake(
    network: Services, org_client: Acting, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    kela = org_client("kela")
    made = create(kela, {**subscription(receiver.url, KELA_OWNS), "end": "2030-01-01T00:00:00Z"})
    sub = made["id"]
    drain(network)
    live = kela.get(f"/fhir/Subscription/{sub}").json()
    later = kela.put(f"/fhir/Subscription/{sub}", json={**live, "end": "2031-01-01T00:00:00Z"})
    assert later.json()["status"] == "active" and handshakes(network, sub) == 1  # not asked again
    real_ns = time.time_ns
    past_end = 1_924_992_000_000_000  # 2031-01-01T00:00:00Z
    monkeypatch.setattr(time, "time_ns", lambda: past_end * 1000 + real_ns() % 10**9)
    relay(network).run_once()
    ended = kela.get(f"/fhir/Subscription/{sub}").json()
    assert ended["status"] == "off"
    # renewed with a later end: requested, a new handshake, then active, and events flow again
    renewed = kela.put(
        f"/fhir/Subscription/{sub}",
        json={**ended, "status": "requested", "end": "2032-01-01T00:00:00Z"},
    )
    assert renewed.json()["status"] == "requested"
    drain(network)
    assert kela.get(f"/fhir/Subscription/{sub}").json()["status"] == "active"
    assert patch(kela, "Task/aino-task-kela", status="in-progress").status_code == 200
    drain(network)
    assert receiver.kinds() == ["handshake", "handshake", "event-notification"]


def test_ending_checks_again_under_the_lock(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    """The relay lists ended subscriptions, then turns each off in its own transaction: one
    renewed in between (a later end) is left as the subscriber wrote it."""
    from gateway.delivery import subscriptions

    kela = org_client("kela")
    made = create(kela, {**subscription(receiver.url, KELA_OWNS), "end": "2030-01-01T00:00:00Z"})
    sub = made["id"]
    after_end = 1_893_456_000_000_001  # just after 2030-01-01T00:00:00Z
    with network.repo.reader() as session:
        assert subscriptions.end_due(session, after_end) == [sub]
    live = kela.get(f"/fhir/Subscription/{sub}").json()
    assert (
        kela.put(
            f"/fhir/Subscription/{sub}", json={**live, "end": "2031-01-01T00:00:00Z"}
        ).status_code
        == 200
    )
    with network.repo.writer() as session:
        subscriptions.end(session, sub, after_end)
    assert kela.get(f"/fhir/Subscription/{sub}").json()["status"] == "requested"
    assert row_of(network, sub)[0] == "requested"
    with network.repo.writer() as session:
        subscriptions.end(session, sub, 1_924_992_000_000_001)  # past the new end: now off
    assert kela.get(f"/fhir/Subscription/{sub}").json()["status"] == "off"
