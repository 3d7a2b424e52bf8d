"""Subscriptions end to end in one gateway, on both stores: Kela subscribes to the Tasks it
owns, the handshake activates the subscription, a Task change is numbered in its own
transaction and the relay pushes it to a real rest-hook receiver; consent is decided again when
sending; $status and $events tell where the subscription stands."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.delivery import outbox
from gateway.delivery.outbox import Backoff
from gateway.delivery.relay import Relay
from gateway.delivery.relay import now_us as relay_now
from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from gateway.security.registry import DeliveryLink
from tests.gateway.delivery.receiver import Receiver

PATCH = {"Content-Type": "application/json-patch+json"}
TOPIC = "https://fhir-plan-gateway.example/SubscriptionTopic/task-responsibility"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-"
Acting = Callable[..., Any]


def register(svc: Services, client_id: str, *urls: str) -> None:
    """Give the organisation's registration these delivery endpoints."""
    registry = svc.security.registry  # type: ignore[union-attr]
    org = registry.by_client[client_id]
    registry.by_client[client_id] = dataclasses.replace(org, delivery=DeliveryLink(tuple(urls)))


def subscription(endpoint: str, criteria: str, payload: str = "id-only", **more: Any) -> dict:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Kela's responsibilities",
        "criteria": TOPIC,
        "_criteria": {
            "extension": [{"url": BACKPORT + "filter-criteria", "valueString": criteria}]
        },
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {
                "extension": [{"url": BACKPORT + "payload-content", "valueCode": payload}]
            },
            "header": ["Authorization: Bearer partner-secret"],
            **more,
        },
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def network(services: Services, client: TestClient, receiver: Receiver) -> Services:
    load_samples(services)
    register(services, "kela", f"http://127.0.0.1:{receiver.port}/")
    return services


def relay(svc: Services) -> Relay:
    return Relay(svc, backoff=Backoff(base=0.0, jitter=0.0))


def drain(svc: Services, rounds: int = 10) -> None:
    r = relay(svc)
    for _ in range(rounds):
        if r.run_once() == 0:
            return


def accept(actor: Any, task: str, status: str = "accepted") -> Any:
    ops = [{"op": "replace", "path": "/status", "value": status}]
    return actor.patch(f"/fhir/Task/{task}", json=ops, headers=PATCH)


def test_handshake_activates_then_events_arrive_in_order(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    made = kela.post(
        "/fhir/Subscription",
        json=subscription(receiver.url, "Task?owner=Organization/org-kela", "full-resource"),
    )
    assert made.status_code == 201, made.text
    sub = made.json()
    assert sub["status"] == "requested"
    drain(network)
    assert receiver.kinds() == ["handshake"]
    assert receiver.received[0].headers["Authorization"] == "Bearer partner-secret"
    assert kela.get(f"/fhir/Subscription/{sub['id']}").json()["status"] == "active"

    assert accept(kela, "aino-task-kela", "in-progress").status_code == 200
    assert accept(kela, "aino-task-kela", "completed").status_code == 200
    drain(network)
    assert receiver.events() == [1, 2]
    last = receiver.received[-1]
    tasks = [e["resource"] for e in last.body["entry"][1:]]
    assert [t["status"] for t in tasks] == ["in-progress", "completed"]  # one bundle, in order

    status = kela.get(f"/fhir/Subscription/{sub['id']}/$status").json()
    params = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
    assert params["events-since-subscription-start"]["valueString"] == "2"
    assert params["status"]["valueCode"] == "active"

    replay = kela.get(f"/fhir/Subscription/{sub['id']}/$events?eventsSinceNumber=2").json()
    numbers = [
        q["valueString"]
        for p in replay["entry"][0]["resource"]["parameter"]
        if p["name"] == "notification-event"
        for q in p["part"]
        if q["name"] == "event-number"
    ]
    assert numbers == ["2"]


def test_other_organisations_tasks_are_not_told(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    kela.post(
        "/fhir/Subscription", json=subscription(receiver.url, "Task?owner=Organization/org-kela")
    )
    drain(network)
    team = org_client("tyollisyyspalvelut")
    assert accept(team, "aino-task-tyokokeilu").status_code == 200
    drain(network)
    assert receiver.events() == []


def test_endpoint_not_registered_is_refused(network: Services, org_client: Acting) -> None:
    kela = org_client("kela")
    made = kela.post(
        "/fhir/Subscription",
        json=subscription("http://127.0.0.1:9/elsewhere", "Task?owner=Organization/org-kela"),
    )
    assert made.status_code == 400, made.text
    assert "Subscription.channel.endpoint" in made.text


def test_failures_retry_then_deliver_once(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    answers = iter([500, 500, 200, 500, 200])
    receiver.answer = lambda _: next(answers, 200)
    kela = org_client("kela")
    kela.post(
        "/fhir/Subscription", json=subscription(receiver.url, "Task?owner=Organization/org-kela")
    )
    drain(network)
    assert accept(kela, "aino-task-kela", "in-progress").status_code == 200
    drain(network)
    assert receiver.kinds() == ["handshake", "event-notification"]
    assert receiver.events() == [1]
    with network.repo.reader() as session:
        rows = outbox.listing(session)
    assert [r.state for r in rows] == ["sent", "sent"]


def test_events_wait_while_the_handshake_is_unanswered(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    """No event goes to an endpoint that never answered a handshake, even once the handshake is
    a dead letter; a renewed subscription whose handshake succeeds gets them, in order."""
    receiver.answer = lambda _: 500
    kela = org_client("kela")
    sub = kela.post(
        "/fhir/Subscription", json=subscription(receiver.url, "Task?owner=Organization/org-kela")
    ).json()
    give_up_now = Relay(network, backoff=Backoff(base=0.0, jitter=0.0, give_up=-1.0))
    give_up_now.run_once()  # the handshake fails and, its window over, is dead
    assert accept(kela, "aino-task-kela", "in-progress").status_code == 200
    receiver.answer = lambda _: 200
    drain(network)
    assert receiver.received == []
    assert kela.get(f"/fhir/Subscription/{sub['id']}").json()["status"] == "error"

    sub["channel"]["header"] = ["Authorization: Bearer renewed"]  # a change: a new handshake
    assert kela.put(f"/fhir/Subscription/{sub['id']}", json=sub).status_code == 200
    drain(network)
    assert receiver.kinds() == ["handshake", "event-notification"]
    assert receiver.events() == [1]


def test_capability_statement_lists_the_topics(client: TestClient) -> None:
    resources = client.get("/fhir/metadata").json()["rest"][0]["resource"]
    entry = next(r for r in resources if r["type"] == "Subscription")
    topics = {e["valueCanonical"] for e in entry["extension"]}
    assert TOPIC in topics and len(topics) == 4
    assert {"status", "events"} <= {o["name"] for o in entry["operation"]}


def test_a_subscription_made_again_under_its_id_numbers_on(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    """Deleting and re-creating a Subscription id (PUT) continues its event numbers: a receiver
    de-duplicating by (subscription, number) would otherwise drop the new events."""
    kela = org_client("kela")
    body = subscription(receiver.url, "Task?owner=Organization/org-kela")
    assert kela.put("/fhir/Subscription/kela-tasks", json={**body, "id": "kela-tasks"}).is_success
    drain(network)
    assert accept(kela, "aino-task-kela", "in-progress").status_code == 200
    drain(network)
    assert kela.delete("/fhir/Subscription/kela-tasks").status_code in (200, 204)
    assert kela.put("/fhir/Subscription/kela-tasks", json={**body, "id": "kela-tasks"}).is_success
    drain(network)
    assert accept(kela, "aino-task-kela", "completed").status_code == 200
    drain(network)
    assert receiver.events() == [1, 2]
    assert receiver.kinds() == ["handshake", "event-notification"] * 2


def test_resent_dead_events_wait_behind_an_owed_handshake(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    """Dead letters re-sent while the subscription owes a new handshake go after it (a re-sent
    event at the head of a stream that is not active would hold the stream for good)."""
    kela = org_client("kela")
    sub = kela.post(
        "/fhir/Subscription", json=subscription(receiver.url, "Task?owner=Organization/org-kela")
    ).json()
    drain(network)
    receiver.answer = lambda _: 500
    assert accept(kela, "aino-task-kela", "in-progress").status_code == 200
    Relay(network, backoff=Backoff(base=0.0, jitter=0.0, give_up=-1.0)).run_once()  # dead
    sub = kela.get(f"/fhir/Subscription/{sub['id']}").json()
    sub["channel"]["header"] = ["Authorization: Bearer renewed"]  # owes a new handshake
    assert kela.put(f"/fhir/Subscription/{sub['id']}", json=sub).status_code == 200
    with network.repo.writer() as session:
        assert outbox.resend(session, relay_now(), stream=sub["id"]) == 1
    receiver.answer = lambda _: 200
    drain(network)
    assert receiver.kinds() == ["handshake", "handshake", "event-notification"]
    assert receiver.events() == [1]


def test_no_heartbeat_to_an_endpoint_no_longer_registered(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    kela = org_client("kela")
    beat = {"url": BACKPORT + "heartbeat-period", "valueUnsignedInt": 10}
    made = kela.post(
        "/fhir/Subscription",
        json=subscription(receiver.url, "Task?owner=Organization/org-kela", extension=[beat]),
    ).json()
    drain(network)
    with network.repo.writer() as session:  # the last push long ago: a heartbeat is due
        session.execute("UPDATE subscriptions SET last_sent_us = 1 WHERE id = ?", (made["id"],))
    register(network, "kela", "https://kela.example/elsewhere/")
    r = relay(network)

    async def beats() -> int:
        async with r.client_factory() as client:
            return await r.heartbeats(client)

    assert asyncio.run(beats()) == 0
    assert receiver.kinds() == ["handshake"]
    register(network, "kela", f"http://127.0.0.1:{receiver.port}/")
    assert asyncio.run(beats()) == 1
    assert receiver.kinds() == ["handshake", "heartbeat"]


def test_a_slow_partner_does_not_hold_the_others_up(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    """The relay thread records what finished and goes on; a stream still sending to a slow
    partner is recorded when it ends (its rows stay leased meanwhile)."""
    with Receiver(delay=3.0) as slow:
        register(
            network, "kela", f"http://127.0.0.1:{receiver.port}/", f"http://127.0.0.1:{slow.port}/"
        )
        kela = org_client("kela")
        criteria = "Task?owner=Organization/org-kela"
        kela.post("/fhir/Subscription", json=subscription(receiver.url, criteria))
        kela.post("/fhir/Subscription", json=subscription(slow.url, criteria))
        arrivals: list[float] = []
        receiver.answer = lambda got: (arrivals.append(time.monotonic()), 200)[1]
        r = Relay(network, interval=0.05, backoff=Backoff(base=0.0, jitter=0.0), round_wait=0.2)
        r.start()
        try:
            time.sleep(0.5)  # the fast handshake went; the slow one is still being answered
            changed = time.monotonic()
            assert accept(kela, "aino-task-kela", "in-progress").status_code == 200
            deadline = time.monotonic() + 10
            while receiver.events() != [1] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert receiver.events() == [1]
            assert arrivals[-1] - changed < 2.0  # not after the slow partner's 3 s answer
            while slow.events() != [1] and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            r.stop()
    assert slow.kinds() == ["handshake", "event-notification"] and slow.events() == [1]


def test_the_subscriber_is_the_writing_organisation_whatever_custodian_it_names(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    """A Subscription naming one of the writer's PractitionerRoles as custodian is still
    decided as the writer's organisation: nothing of a client it has no consent for is told."""
    register(network, "jarjesto", f"http://127.0.0.1:{receiver.port}/")
    jarjesto = org_client("jarjesto")
    assert jarjesto.get("/fhir/Task/laura-task-terveystarkastus").status_code == 404
    body = subscription(receiver.url, "Task?status=requested,accepted,in-progress,completed")
    custodian = "https://fhir-plan-gateway.example/StructureDefinition/custodian"
    body["extension"] = [
        {
            "url": custodian,
            "valueReference": {"reference": "PractitionerRole/role-jarjesto-vertaistuki"},
        }
    ]
    made = jarjesto.post("/fhir/Subscription", json=body)
    assert made.status_code == 201, made.text
    stamps = [e["valueReference"]["reference"] for e in made.json()["extension"]]
    assert stamps == ["Organization/org-jarjesto"]
    drain(network)
    owner = org_client("sote-keskus")  # Laura's Task is the health centre's to work on
    assert accept(owner, "laura-task-terveystarkastus").status_code == 200
    drain(network)
    assert receiver.events() == []


def test_an_organisation_cannot_subscribe_to_what_it_may_not_read(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    registry = network.security.registry  # type: ignore[union-attr]
    kela = registry.by_client["kela"]
    narrow = tuple(s for s in kela.scopes if s.resource_type != "Task")
    registry.by_client["kela"] = dataclasses.replace(kela, scopes=narrow)
    token = org_client("kela", scope="system/Subscription.cruds")
    made = token.post(
        "/fhir/Subscription", json=subscription(receiver.url, "Task?owner=Organization/org-kela")
    )
    assert made.status_code == 403
    assert "Subscription.criteria" in made.text
