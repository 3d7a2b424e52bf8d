"""Subscription events on both stores (gateway/delivery/events.py): made in the writing
transaction, numbered 1, 2, 3 … per subscription with no gaps, only for writes that match the
topic and its filters and that the subscriber may see; nothing for a write that does not
commit, for a subscription that is off or deleted. No relay runs here: the outbox is read back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.consent.enforcement import WRITE_HOOKS, Written
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from gateway.storage.base import Session
from tests.gateway.delivery.support import (
    PATCH,
    events,
    patch,
    register,
    row_of,
    rows,
    subscription,
)

ENDPOINT = "http://127.0.0.1:9/hook"  # never called: no relay runs in these tests
Acting = Callable[..., Any]


@pytest.fixture
def network(services: Services, client: TestClient) -> Services:
    load_samples(services)
    for org in ("kela", "typ", "sote-keskus"):
        register(services, org, ENDPOINT)
    return services


def subscribe(actor: Any, criteria: str | None, **more: Any) -> str:
    made = actor.post("/fhir/Subscription", json=subscription(ENDPOINT, criteria, **more))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def note(actor: Any, path: str, text: str) -> Any:
    """A change an owner may make to a Task it owns (its work state: a note)."""
    ops = [{"op": "add", "path": "/note", "value": [{"text": text}]}]
    return actor.patch(f"/fhir/{path}", json=ops, headers=PATCH)


def version(response: Any) -> str:
    assert response.status_code in (200, 201), response.text
    return str(response.json()["meta"]["versionId"])


KELA_OWNS = "Task?owner=Organization/org-kela"


def test_matching_changes_are_numbered_in_order_with_no_gaps(
    network: Services, org_client: Acting
) -> None:
    kela = org_client("kela")
    sub = subscribe(kela, KELA_OWNS)
    # two Tasks kela owns (clients aino and mikko), interleaved; and one it does not
    v1 = version(note(kela, "Task/aino-task-kela", "first"))
    v2 = version(note(kela, "Task/mikko-task-etuudet", "second"))
    team = org_client("tyollisyyspalvelut")
    assert patch(team, "Task/aino-task-tyokokeilu", status="accepted").status_code == 200
    v3 = version(patch(kela, "Task/aino-task-kela", status="in-progress"))
    assert events(network, sub) == [
        (1, f"Task/aino-task-kela/_history/{v1}"),
        (2, f"Task/mikko-task-etuudet/_history/{v2}"),
        (3, f"Task/aino-task-kela/_history/{v3}"),
    ]
    assert row_of(network, sub) == ("requested", 3, None)
    handshake = rows(network, sub)[0]
    assert (handshake.kind, handshake.seq) == ("handshake", 0)  # first in its stream


def test_a_transaction_numbers_its_writes_in_entry_order(
    network: Services, org_client: Acting
) -> None:
    kela = org_client("kela")
    sub = subscribe(kela, KELA_OWNS)
    entries = []
    for task_id, status in (("mikko-task-etuudet", "accepted"), ("aino-task-kela", "on-hold")):
        task = {**kela.get(f"/fhir/Task/{task_id}").json(), "status": status}
        entries.append({"resource": task, "request": {"method": "PUT", "url": f"Task/{task_id}"}})
    done = kela.post(
        "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    assert done.status_code == 200, done.text
    assert events(network, sub) == [
        (1, "Task/mikko-task-etuudet/_history/2"),
        (2, "Task/aino-task-kela/_history/2"),
    ]


def test_writes_outside_the_topic_or_filters_make_no_rows(
    network: Services, org_client: Acting
) -> None:
    kela = org_client("kela")
    sub = subscribe(kela, "Task?owner=Organization/org-kela&status=in-progress")
    assert note(kela, "Task/aino-task-kela", "still accepted").status_code == 200
    team = org_client("tyokykytiimi")
    assert patch(team, "CarePlan/aino-plan", title="a CarePlan").status_code == 200
    assert events(network, sub) == []
    assert row_of(network, sub) == ("requested", 0, None)


def test_a_plain_create_is_seen(network: Services, org_client: Acting) -> None:
    """A POST without If-None-Exist (the fast create path) of a watched type still runs the
    write hook in its transaction (WATCHED_TYPES)."""
    kela = org_client("kela")
    sub = subscribe(kela, KELA_OWNS)
    task = kela.get("/fhir/Task/aino-task-kela").json()
    for volatile in ("id", "meta", "text"):
        task.pop(volatile, None)
    task["status"] = "requested"
    made = org_client("tyokykytiimi").post("/fhir/Task", json=task)
    assert made.status_code == 201, made.text
    assert events(network, sub) == [(1, f"Task/{made.json()['id']}/_history/1")]


def test_the_task_status_topic_fires_only_on_a_status_change(
    network: Services, org_client: Acting
) -> None:
    kela = org_client("kela")
    sub = subscribe(kela, KELA_OWNS, on="task-status")
    assert note(kela, "Task/aino-task-kela", "no status change").status_code == 200
    changed = version(patch(kela, "Task/aino-task-kela", status="in-progress"))
    assert note(kela, "Task/aino-task-kela", "again none").status_code == 200
    assert events(network, sub) == [(1, f"Task/aino-task-kela/_history/{changed}")]


def test_plan_and_network_topics_filter_by_client(network: Services, org_client: Acting) -> None:
    sote = org_client("sote-keskus")  # a consented reader of aino's and laura's records
    aino_plans = subscribe(sote, "CarePlan?patient=Patient/aino", on="client-plan")
    all_plans = subscribe(sote, None, on="client-plan")
    laura_team = subscribe(sote, "CareTeam?patient=Patient/laura", on="client-network")
    aino_plan = version(patch(org_client("tyokykytiimi"), "CarePlan/aino-plan", title="A"))
    laura_plan = version(patch(org_client("typ"), "CarePlan/laura-plan", title="L"))
    assert patch(org_client("tyokykytiimi"), "CareTeam/aino-careteam", name="A").status_code == 200
    team = version(patch(org_client("typ"), "CareTeam/laura-careteam", name="L"))
    assert events(network, aino_plans) == [(1, f"CarePlan/aino-plan/_history/{aino_plan}")]
    assert events(network, all_plans) == [
        (1, f"CarePlan/aino-plan/_history/{aino_plan}"),
        (2, f"CarePlan/laura-plan/_history/{laura_plan}"),  # the filter, not consent, left it out
    ]
    assert events(network, laura_team) == [(1, f"CareTeam/laura-careteam/_history/{team}")]


def test_a_write_that_does_not_commit_queues_nothing(network: Services, org_client: Acting) -> None:
    kela = org_client("kela")
    sub = subscribe(kela, KELA_OWNS)
    task = kela.get("/fhir/Task/aino-task-kela").json()
    task["note"] = [{"text": "in a failing transaction"}]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": task, "request": {"method": "PUT", "url": "Task/aino-task-kela"}},
            # not kela's to write: the whole bundle fails
            {
                "resource": {**task, "id": "aino-task-tyokokeilu", "status": "rejected"},
                "request": {"method": "PUT", "url": "Task/aino-task-tyokokeilu"},
            },
        ],
    }
    failed = kela.post("/fhir", json=bundle)
    assert failed.status_code == 404, failed.text  # entry 1 is not kela's to see
    refused = patch(kela, "Task/aino-task-kela", status="requested")  # not a transition
    assert refused.status_code == 409, refused.text
    assert events(network, sub) == []
    assert row_of(network, sub) == ("requested", 0, None)  # no number was used up
    assert kela.get("/fhir/Task/aino-task-kela").json()["meta"]["versionId"] == "1"


def test_an_off_subscription_gets_nothing_and_a_deleted_one_loses_its_rows(
    network: Services, org_client: Acting
) -> None:
    kela = org_client("kela")
    quiet, gone = subscribe(kela, KELA_OWNS), subscribe(kela, KELA_OWNS)
    body = kela.get(f"/fhir/Subscription/{quiet}").json()
    assert kela.put(f"/fhir/Subscription/{quiet}", json={**body, "status": "off"}).is_success
    assert note(kela, "Task/aino-task-kela", "one").status_code == 200
    assert events(network, quiet) == []
    assert row_of(network, quiet) == ("off", 0, None)
    assert [r.seq for r in rows(network, gone)] == [0, 1]  # handshake, event 1
    assert kela.delete(f"/fhir/Subscription/{gone}").status_code in (200, 204)
    # the row stays, off: a Subscription made again under this id numbers on from it
    assert rows(network, gone) == [] and row_of(network, gone) == ("off", 1, None)
    assert note(kela, "Task/aino-task-kela", "two").status_code == 200
    assert rows(network, gone) == []


def test_a_subscriber_that_may_not_see_a_change_gets_no_number_for_it(
    network: Services, org_client: Acting
) -> None:
    typ = org_client("typ")  # not in aino's consent; holds laura's TYP plan Task
    sub = subscribe(typ, None)  # every Task change typ may see
    kela = org_client("kela")
    assert note(kela, "Task/aino-task-kela", "not for typ").status_code == 200
    own = version(note(typ, "Task/laura-task-typ-suunnitelma", "for typ"))
    assert events(network, sub) == [(1, f"Task/laura-task-typ-suunnitelma/_history/{own}")]


def test_event_rows_roll_back_with_a_write_refused_after_they_were_queued(
    network: Services, org_client: Acting, monkeypatch: pytest.MonkeyPatch
) -> None:
    kela = org_client("kela")
    sub = subscribe(kela, KELA_OWNS)
    queued: list[int] = []

    def refuse(session: Session, written: Sequence[Written]) -> None:
        """A later hook (after delivery's) refusing the write in the same transaction."""
        queued.append(session.query("SELECT COUNT(*) FROM outbox WHERE kind = 'event'")[0][0])
        raise FhirError(Category.CONFLICT, "refused by a later hook")

    monkeypatch.setitem(WRITE_HOOKS, "zz-refuse", refuse)
    assert note(kela, "Task/aino-task-kela", "refused").status_code == 409
    assert queued == [1]  # the event row was written in the transaction …
    assert events(network, sub) == []  # … and rolled back with it
    assert row_of(network, sub) == ("requested", 0, None)
