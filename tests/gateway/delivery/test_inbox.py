"""Our receiving side as a partner, on both stores: an upstream's notifications at
POST /delivery/notifications/{upstream} become mirror Tasks, each event once; our user's work
on a mirror is queued for the upstream (channel fhir), but never the upstream's own change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.delivery import mirror
from gateway.delivery.upstreams import load_upstreams
from gateway.fhir_api.context import Services
from gateway.settings import Settings
from tests.gateway.delivery.upstream_files import SECRET, a_task, notification, write_upstream

A = "https://a.example/fhir"
URL = "/delivery/notifications/a"
CHANNEL = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/fhir+json"}
PATCH = {"Content-Type": "application/json-patch+json"}
BUSINESS_STATUS = "https://fhir-plan-gateway.example/CodeSystem/business-status"
RECEIVED = {"coding": [{"system": BUSINESS_STATUS, "code": "vastaanotettu"}]}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    write_upstream(tmp_path / "upstreams", A)
    settings.upstreams_dir = str(tmp_path / "upstreams")
    return settings


@pytest.fixture
def mid(services: Services) -> str:
    """Our mirror's id of A's Task t1."""
    assert services.ids is not None
    return mirror.mirror_id(
        services.ids, load_upstreams(services.settings.upstreams_dir)["a"], "t1"
    )


def push(client: TestClient, body: Any, headers: dict[str, str] = CHANNEL) -> Any:
    return client.post(URL, content=orjson.dumps(body), headers=headers)


def fhir_rows(svc: Services) -> list[dict[str, Any]]:
    with svc.repo.reader() as session:
        rows = session.query(
            "SELECT stream, destination, payload FROM outbox WHERE channel = 'fhir' ORDER BY pos"
        )
    return [{"stream": s, "url": d, **orjson.loads(p)} for s, d, p in rows]


def test_a_task_event_becomes_a_mirror_only_its_owner_sees(
    client: TestClient, org_client: Any, mid: str
) -> None:
    answer = push(client, notification(A, [(1, a_task(), "1")]))
    assert answer.status_code == 200, answer.text
    kela = org_client("kela")
    found = kela.get(f"/fhir/Task?identifier={A}/Task|t1").json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [mid]
    task = found["entry"][0]["resource"]
    assert task["owner"]["reference"] == "Organization/org-kela"
    assert task["for"]["reference"] == f"{A}/Patient/aino"  # A's client, never one of ours
    assert task["basedOn"] == [{"reference": f"{A}/CarePlan/aino-plan"}]
    assert mirror.marker(task) == ("a", 1)
    other = org_client("tyollisyyspalvelut").get(f"/fhir/Task/{mid}")
    assert other.status_code == 404


def test_the_upstream_may_name_itself_by_any_base(
    client: TestClient, org_client: Any, mid: str
) -> None:
    # a gateway without a configured base_url names itself http://localhost/fhir
    answer = push(client, notification("http://localhost/fhir", [(1, a_task(), "1")]))
    assert answer.status_code == 200, answer.text
    task = org_client("kela").get(f"/fhir/Task/{mid}").json()
    assert task["identifier"] == [{"system": f"{A}/Task", "value": "t1"}]  # as we reach it


def test_handshake_and_heartbeat_apply_nothing(client: TestClient, services: Services) -> None:
    for kind in ("handshake", "heartbeat"):
        assert push(client, notification(A, [], kind=kind)).status_code == 200
    with services.repo.reader() as session:
        assert session.query("SELECT COUNT(*) FROM inbox")[0][0] == 0


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        (URL, {**CHANNEL, "Authorization": "Bearer wrong"}),
        (URL, {"Content-Type": "application/fhir+json"}),
        ("/delivery/notifications/b", CHANNEL),  # no such upstream: not told apart (no 404)
        ("/delivery/notifications/b", {**CHANNEL, "Authorization": "Bearer wrong"}),
        ("/delivery/notifications/b", {"Content-Type": "application/fhir+json"}),
    ],
)
def test_unknown_upstream_and_wrong_secret_answer_alike(
    client: TestClient, url: str, headers: dict[str, str]
) -> None:
    body = orjson.dumps(notification(A, []))
    wrong = client.post(URL, content=body, headers={**CHANNEL, "Authorization": "Bearer x"})
    answer = client.post(url, content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.content == wrong.content
    assert answer.headers["www-authenticate"] == wrong.headers["www-authenticate"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        orjson.dumps({"resourceType": "Bundle", "type": "history", "entry": []}),
        orjson.dumps(notification(A, [(1, a_task(), "1")], reference="Task/../x")),
        orjson.dumps(
            {
                **notification(A, [(1, a_task(), "1")]),
                "entry": notification(A, [(1, None, "1")])["entry"][:1],
            }
        ),  # id-only: the event's Task is not in the Bundle
    ],
)
def test_unreadable_notifications_are_400(client: TestClient, body: bytes) -> None:
    answer = client.post(URL, content=body, headers=CHANNEL)
    assert answer.status_code == 400, answer.text
    assert answer.json()["issue"][0]["severity"] == "error"


def _status(*params: Any) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "type", "valueCode": "event-notification"},
            {"name": "subscription", "valueReference": {"reference": "Subscription/s1"}},
            *params,
        ],
    }


def _event(*parts: Any, **more: Any) -> dict[str, Any]:
    return {"name": "notification-event", "part": list(parts), **more}


NUMBER = {"name": "event-number", "valueString": "1"}
FOCUS = {"name": "focus", "valueReference": {"reference": "Task/t1/_history/1"}}
TASK_1 = {**a_task(), "meta": {"versionId": "1"}}
EVENT_0 = "Bundle.entry[0].resource.parameter:notification-event[0]"


def _bundle(status: Any, *resources: Any) -> dict[str, Any]:
    entries = [{"resource": status}, *({"resource": r} for r in resources)]
    return {"resourceType": "Bundle", "type": "history", "entry": entries}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            _bundle({"resourceType": "Parameters", "parameter": 5}),
            "Bundle.entry[0].resource.parameter",
        ),
        (_bundle(_status({"name": "notification-event", "part": 7})), EVENT_0),
        (
            _bundle(
                _status(_event(NUMBER, {"name": "focus", "valueReference": "Task/t1/_history/1"}))
            ),
            f"{EVENT_0}.part:focus",
        ),
        (
            _bundle(_status(), {"resourceType": "Task", "id": "x", "meta": "m"}),
            "Bundle.entry[1].resource.meta",
        ),
        (
            _bundle(_status(_event(NUMBER, FOCUS)), {**TASK_1, "meta": "m"}),
            "Bundle.entry[1].resource.meta",
        ),
        (
            {
                **_bundle(_status(_event(NUMBER, FOCUS))),
                "entry": [{"resource": _status(_event(NUMBER, FOCUS))}, {"request": "DELETE"}],
            },
            "Bundle.entry[1].request",
        ),
        (
            _bundle(
                _status(_event({"name": "event-number", "valueString": "9" * 20}, FOCUS)), TASK_1
            ),
            EVENT_0,
        ),
        (_bundle(_status(_event(NUMBER, FOCUS, extension=3)), TASK_1), EVENT_0),
        (_bundle(_status(_event(NUMBER, FOCUS, extension=[3, "x"]))), EVENT_0),  # no Task
        (_bundle(_status(_event("x", 4, NUMBER, FOCUS)), 5), EVENT_0),  # no Task either
    ],
)
def test_malformed_notifications_are_400_naming_where(
    client: TestClient, services: Services, body: Any, path: str
) -> None:
    answer = push(client, body)
    assert answer.status_code == 400, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [path]
    with services.repo.reader() as session:
        assert session.query("SELECT COUNT(*) FROM inbox")[0][0] == 0


def test_a_repeat_changes_nothing(
    client: TestClient, services: Services, org_client: Any, mid: str
) -> None:
    sent = notification(A, [(1, a_task(), "1")], event_ids=["e-1"])
    assert push(client, sent).status_code == 200
    assert push(client, sent).status_code == 200  # A did not hear our first answer
    # the same event id under another number (a replay by $events of a re-created stream)
    again = notification(A, [(7, a_task(description="changed"), "2")], event_ids=["e-1"])
    assert push(client, again).status_code == 200
    task = org_client("kela").get(f"/fhir/Task/{mid}").json()
    assert task["meta"]["versionId"] == "1"
    with services.repo.reader() as session:
        assert session.query("SELECT COUNT(*) FROM inbox")[0][0] == 1


def test_an_older_version_never_overwrites_a_newer_one(
    client: TestClient, org_client: Any, mid: str
) -> None:
    assert push(client, notification(A, [(2, a_task(status="cancelled"), "3")])).status_code == 200
    assert push(client, notification(A, [(1, a_task(), "2")])).status_code == 200  # late
    task = org_client("kela").get(f"/fhir/Task/{mid}").json()
    assert task["status"] == "cancelled"
    assert mirror.marker(task) == ("a", 3)


def test_our_users_work_is_queued_for_a_but_never_as_own_change(
    client: TestClient, services: Services, org_client: Any, mid: str
) -> None:
    push(client, notification(A, [(1, a_task(), "1")]))
    kela = org_client("kela")
    ops = [{"op": "replace", "path": "/status", "value": "accepted"}]
    assert kela.patch(f"/fhir/Task/{mid}", json=ops, headers=PATCH).status_code == 200
    rows = fhir_rows(services)
    assert rows[0]["url"] == f"{A}/Task/t1" and rows[0]["stream"] == "a"
    assert rows[0]["patch"] == [
        {"op": "test", "path": "/status", "value": "requested"},
        {"op": "add", "path": "/status", "value": "accepted"},
    ]
    # A's change coming in (its version 2: accepted, a new businessStatus) is not sent back
    done = a_task(status="accepted", businessStatus=RECEIVED)
    answer = push(client, notification(A, [(2, done, "2")]))
    assert answer.status_code == 200, answer.text
    assert len(fhir_rows(services)) == 1
    task = kela.get(f"/fhir/Task/{mid}").json()
    assert task["businessStatus"] == RECEIVED and task["status"] == "accepted"


def test_rejection_and_completion_tell_a_the_reason_and_the_outcome(
    client: TestClient, services: Services, org_client: Any, mid: str
) -> None:
    push(client, notification(A, [(1, a_task(), "1")]))
    kela = org_client("kela")
    task = kela.get(f"/fhir/Task/{mid}").json()
    task["status"] = "rejected"
    task["statusReason"] = {"text": "Ei Kelan asia"}
    assert kela.put(f"/fhir/Task/{mid}", json=task).status_code == 200
    patch = fhir_rows(services)[-1]["patch"]
    assert {"op": "add", "path": "/statusReason", "value": {"text": "Ei Kelan asia"}} in patch


def test_our_pending_change_stays_until_a_has_it(
    client: TestClient, services: Services, org_client: Any, mid: str
) -> None:
    push(client, notification(A, [(1, a_task(), "1")]))
    kela = org_client("kela")
    ops = [{"op": "replace", "path": "/status", "value": "accepted"}]
    assert kela.patch(f"/fhir/Task/{mid}", json=ops, headers=PATCH).status_code == 200
    # A changed something else meanwhile (its version 2, still requested there)
    push(client, notification(A, [(2, a_task(description="tarkennettu"), "2")]))
    task = kela.get(f"/fhir/Task/{mid}").json()
    assert task["status"] == "accepted" and task["description"] == "tarkennettu"
    with services.repo.writer() as session:  # the relay told A
        session.execute("UPDATE outbox SET sent_us = 1 WHERE channel = 'fhir'")
    push(client, notification(A, [(3, a_task(status="accepted"), "3")]))
    assert kela.get(f"/fhir/Task/{mid}").json()["status"] == "accepted"


def test_a_deleted_task_deletes_the_mirror(client: TestClient, org_client: Any, mid: str) -> None:
    push(client, notification(A, [(1, a_task(), "1")]))
    deleted = notification(A, [(2, None, "2")], reference="Task/t1")
    assert push(client, deleted).status_code == 200, push(client, deleted).text
    assert org_client("kela").get(f"/fhir/Task/{mid}").status_code == 410
    # a late event of an older version does not bring it back
    assert push(client, notification(A, [(3, a_task(), "1")])).status_code == 200
    assert org_client("kela").get(f"/fhir/Task/{mid}").status_code == 410
