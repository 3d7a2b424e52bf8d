"""Subscription/{id}/$status and $events on both stores (gateway/delivery/operations.py): where
a subscription stands (dead letters as errors, what waits), and its events by number in the
payload content asked for; bad parameters are 400s naming the parameter, and another
organisation's subscription does not exist for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.delivery import outbox
from gateway.delivery.outbox import Backoff
from gateway.delivery.relay import now_us
from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from tests.gateway.delivery.receiver import Receiver
from tests.gateway.delivery.support import (
    drain,
    event_numbers,
    patch,
    register,
    status_parameters,
    subscription,
)

Acting = Callable[..., Any]
KELA_OWNS = "Task?owner=Organization/org-kela"
GIVE_UP_AT_ONCE = Backoff(base=0.0, jitter=0.0, give_up=0.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def network(services: Services, client: TestClient, receiver: Receiver) -> Services:
    load_samples(services)
    register(services, "kela", f"http://127.0.0.1:{receiver.port}/")
    return services


@pytest.fixture
def kela(network: Services, org_client: Acting, receiver: Receiver) -> Any:
    return org_client("kela")


def subscribe(svc: Services, kela: Any, url: str) -> str:
    made = kela.post("/fhir/Subscription", json=subscription(url, KELA_OWNS))
    assert made.status_code == 201, made.text
    drain(svc)
    return str(made.json()["id"])


def named(bundle: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for p in status_parameters(bundle):
        value = next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
        out.setdefault(p["name"], []).append(value)
    return out


def test_status_shows_dead_letters_and_what_waits(
    network: Services, kela: Any, receiver: Receiver
) -> None:
    receiver.answer = lambda got: 200 if got.kind == "handshake" else 500
    sub = subscribe(network, kela, receiver.url)
    assert patch(kela, "Task/aino-task-kela", status="in-progress").is_success
    assert patch(kela, "Task/aino-task-kela", status="on-hold").is_success
    drain(network, GIVE_UP_AT_ONCE)  # both fail once and are dead at once
    assert patch(kela, "Task/mikko-task-etuudet", status="accepted").is_success  # waits
    answer = kela.get(f"/fhir/Subscription/{sub}/$status")
    assert answer.status_code == 200, answer.text
    params = named(answer.json())
    assert params["status"] == ["active"] and params["type"] == ["query-status"]
    assert params["events-since-subscription-start"] == ["3"]
    assert [e["text"] for e in params["error"]] == [
        "1 event(s) waiting to be delivered",
        "event 1 (event) dead-lettered: gave-up-http-500",
        "event 2 (event) dead-lettered: gave-up-http-500",
    ]
    # re-sent by the operator, they go in their old places, before event 3
    receiver.answer = lambda _: 200
    with network.repo.writer() as session:
        assert outbox.resend(session, now_us(), stream=sub) == 2
    drain(network)
    assert receiver.events() == [1, 2, 3]
    assert "error" not in named(kela.get(f"/fhir/Subscription/{sub}/$status").json())


def test_events_returns_the_numbers_asked_for(
    network: Services, kela: Any, receiver: Receiver
) -> None:
    sub = subscribe(network, kela, receiver.url)
    for status in ("in-progress", "on-hold", "in-progress"):
        assert patch(kela, "Task/aino-task-kela", status=status).is_success
    base = f"/fhir/Subscription/{sub}/$events"
    for query, numbers in (
        ("", [1, 2, 3]),
        ("?eventsSinceNumber=2", [2, 3]),
        ("?eventsUntilNumber=2", [1, 2]),
        ("?eventsSinceNumber=2&eventsUntilNumber=2", [2]),
        ("?eventsSinceNumber=9", []),
    ):
        answer = kela.get(base + query)
        assert answer.status_code == 200, answer.text
        assert event_numbers(answer.json()) == numbers, query
    params = named(kela.get(base).json())
    assert params["type"] == ["query-event"] and params["events-since-subscription-start"] == ["3"]


def test_events_tells_in_the_content_asked_for(
    network: Services, org_client: Acting, kela: Any, receiver: Receiver
) -> None:
    sub = subscribe(network, kela, receiver.url)  # payload id-only
    team = org_client("tyokykytiimi")  # the requester: may create and delete a Task for kela
    task = kela.get("/fhir/Task/aino-task-kela").json()
    made = team.post("/fhir/Task", json={**task, "id": None, "status": "requested"})
    assert made.status_code == 201, made.text
    new = made.json()["id"]
    assert team.delete(f"/fhir/Task/{new}").status_code in (200, 204)
    base = f"/fhir/Subscription/{sub}/$events"

    empty = kela.get(f"{base}?content=empty").json()
    assert event_numbers(empty) == [1, 2] and len(empty["entry"]) == 1
    assert all(
        q["name"] != "focus"
        for p in status_parameters(empty)
        if p["name"] == "notification-event"
        for q in p["part"]
    )

    ids = kela.get(base).json()  # the subscription's own content: id-only
    assert [e.get("request") for e in ids["entry"][1:]] == [
        {"method": "POST", "url": f"Task/{new}"},
        {"method": "DELETE", "url": f"Task/{new}"},
    ]
    assert all("resource" not in e for e in ids["entry"][1:])
    assert [e["fullUrl"].endswith(f"/Task/{new}") for e in ids["entry"][1:]] == [True, True]

    full = kela.get(f"{base}?content=full-resource").json()
    created, deleted = full["entry"][1:]
    assert created["resource"] == made.json()
    assert "resource" not in deleted and deleted["request"]["method"] == "DELETE"


BAD = (  # (query, the parameter the 400 names)
    ("eventsSinceNumber=abc", "eventsSinceNumber"),
    ("eventsSinceNumber=-1", "eventsSinceNumber"),
    ("eventsUntilNumber=1.5", "eventsUntilNumber"),
    ("eventsSinceNumber=3&eventsUntilNumber=2", "eventsUntilNumber"),
    ("content=everything", "content"),
    ("since=1", "since"),
)


def test_events_refuses_bad_parameters_naming_them(
    network: Services, kela: Any, receiver: Receiver
) -> None:
    sub = subscribe(network, kela, receiver.url)
    for query, name in BAD:
        answer = kela.get(f"/fhir/Subscription/{sub}/$events?{query}")
        assert answer.status_code == 400, (query, answer.text)
        assert answer.json()["issue"][0]["expression"] == [f"Parameters.parameter[{name}]"]


def test_another_organisations_subscription_is_not_found(
    network: Services, kela: Any, org_client: Acting, receiver: Receiver
) -> None:
    sub = subscribe(network, kela, receiver.url)
    other = org_client("sote-keskus")
    for op in ("$status", "$events"):
        assert other.get(f"/fhir/Subscription/{sub}/{op}").status_code == 404
        assert kela.get(f"/fhir/Subscription/no-such/{op}").status_code == 404
        assert kela.get(f"/fhir/Subscription/{sub}/{op}").status_code == 200
