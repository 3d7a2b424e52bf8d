"""The HL7 v2 return path (gateway/intake/return_path.py) on both stores: Aino's referral comes
in from the record system (org-sote-keskus); when the work-ability team (the Task's owner)
accepts, rejects or completes it over REST, an RRI^I12 is enqueued in the same transaction and
the relay sends it to the record system's registered endpoint — here a real asyncio MLLP
receiver on loopback (tests/adapters/hl7v2/test_rri_client.Receiver)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.builders import referral as builder
from adapters.hl7v2.client import send
from adapters.hl7v2.message import parse
from gateway.app import create_app
from gateway.fhir_api.context import Services
from gateway.intake import return_path
from gateway.intake.hl7v2 import handle
from gateway.intake.return_path import Relay
from gateway.samples import load_samples
from gateway.settings import Settings
from tests.adapters.hl7v2.test_rri_client import Receiver
from tests.gateway.intake.acks import code
from tests.gateway.intake.conftest import sample

PATCH = {"Content-Type": "application/json-patch+json"}
Acting = Callable[..., Any]


def route_to(svc: Services, url: str | None, **link: Any) -> None:
    """Point the record system's registered endpoint (sote-keskus.json "hl7v2") at `url` (and
    change other fields of its link)."""
    registry = svc.security.registry  # type: ignore[union-attr]
    org = registry.by_client["sote-keskus"]
    changed = dataclasses.replace(org, hl7v2=dataclasses.replace(org.hl7v2, endpoint=url, **link))
    registry.by_client["sote-keskus"] = changed
    registry.by_hl7v2[(org.hl7v2.application, org.hl7v2.facility)] = changed


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def task_id(intake: Services, client: TestClient, receiver: Receiver) -> str:
    """Aino's referral imported (the app built by `client` has installed the outbox hook)."""
    load_samples(intake)
    route_to(intake, receiver.url)
    assert code(handle(intake, sample("ref-aino"), None)) == "AA"
    assert intake.ids is not None
    return builder.ids_of(intake.ids, "org-sote-keskus", "LAH20261012-1")[1]


@pytest.fixture
def team(org_client: Acting) -> Any:
    return org_client("tyokykytiimi")


def move(actor: Any, task_id: str, status: str, **more: Any) -> Any:
    ops = [{"op": "replace", "path": "/status", "value": status}]
    ops += [{"op": "add", "path": f"/{k}", "value": v} for k, v in more.items()]
    return actor.patch(f"/fhir/Task/{task_id}", json=ops, headers=PATCH)


def outbox(svc: Services) -> list[tuple]:
    with svc.repo.reader() as session:
        return session.query(
            "SELECT id, destination, attempts, sent_us, last_error, next_us FROM hl7v2_outbox "
            "ORDER BY created_us, id"
        )


def make_due(svc: Services) -> None:
    with svc.repo.writer() as session:
        session.execute("UPDATE hl7v2_outbox SET next_us = 0 WHERE sent_us IS NULL")


# -- what is sent ----------------------------------------------------------------------------
def test_accepting_the_task_sends_an_rri_to_the_record_system(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    assert outbox(intake) == []  # the referral itself (status requested) is not answered
    assert move(team, task_id, "accepted").status_code == 200
    [row] = outbox(intake)
    assert row[1] == receiver.url and row[3] is None  # enqueued with the change, not yet sent
    assert Relay(intake, timeout=2).run_once() == 1
    [er7] = receiver.wait_for(1)
    rri = parse(er7)
    assert rri.event == "RRI^I12"
    assert rri.get("MSA", 2) == "PGS002001"  # the REF^I12's MSH-10
    assert (rri.get("RF1", 1), rri.get("RF1", 6)) == ("A", "LAH20261012-1")
    assert [s.get(7) for s in rri.segments("PRD")] == [
        "1.2.246.10.99990001.10.0",  # RP: org-sote-keskus by its SOTE OID
        "1.2.246.10.99990001.10.17",  # RT: the work-ability team
    ]
    assert (rri.get("PID", 3), rri.get("PID", 5)) == ("150390-902D", "Testinen")
    [row] = outbox(intake)
    assert (row[2], row[4]) == (1, None) and row[3] is not None  # sent on AA
    assert Relay(intake, timeout=2).run_once() == 0


def test_a_rejection_says_why(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    reason = {"text": "Ei kuulu tiimin palveluihin"}
    assert move(team, task_id, "rejected", statusReason=reason).status_code == 200
    Relay(intake, timeout=2).run_once()
    [er7] = receiver.wait_for(1)
    assert parse(er7).get("RF1", 1) == "R"
    assert parse(er7).get("NTE", 3) == "Ei kuulu tiimin palveluihin"


def test_accepted_then_completed_arrive_in_order(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    assert move(team, task_id, "accepted").status_code == 200
    assert move(team, task_id, "in-progress").status_code == 200  # not reported
    note = [{"text": "Arvio valmis, lausunto lähetetty."}]
    assert move(team, task_id, "completed", note=note).status_code == 200
    assert len(outbox(intake)) == 2
    relay = Relay(intake, timeout=2)
    assert relay.run_once() == 1  # one per destination at a time: the oldest first
    assert relay.run_once() == 1
    first, second = (parse(m) for m in receiver.wait_for(2))
    assert (first.get("RF1", 1), second.get("RF1", 1)) == ("A", "C")
    assert second.get("NTE", 3) == "Arvio valmis, lausunto lähetetty."


# -- retries -------------------------------------------------------------------------------------
def test_a_failing_receiver_is_retried_with_backoff(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    receiver.answers = ["AR", "AR"]
    assert move(team, task_id, "accepted").status_code == 200
    relay = Relay(intake, timeout=2, backoff=10)
    started = return_path.now_us()
    assert relay.run_once() == 1
    [(_, _, attempts, sent, error, due)] = outbox(intake)
    assert (attempts, sent, error) == (1, None, "nack-AR")
    assert 9e6 < due - started < 12e6  # backoff 10 s after the first failure
    assert relay.run_once() == 0  # not due again yet
    make_due(intake)
    started = return_path.now_us()
    assert relay.run_once() == 1
    [(_, _, attempts, sent, error, due)] = outbox(intake)
    assert (attempts, sent, error) == (2, None, "nack-AR")
    assert 19e6 < due - started < 22e6  # doubled after the second
    make_due(intake)
    assert relay.run_once() == 1  # the receiver answers AA now
    [(_, _, attempts, sent, error, _)] = outbox(intake)
    assert (attempts, error) == (3, None) and sent is not None
    assert len(receiver.wait_for(3)) == 3
    assert {parse(m).control_id for m in receiver.received} == {
        parse(receiver.received[0]).control_id
    }


def test_an_ae_parks_the_answer_and_later_answers_still_go(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    """AE: the record system read the RRI and refused its content; sending it again cannot
    help, and retrying it would hold up every later answer to that record system."""
    receiver.answers = ["AE"]
    assert move(team, task_id, "accepted").status_code == 200
    relay = Relay(intake, timeout=2)
    assert relay.run_once() == 1
    [(_, _, attempts, sent, error, due)] = outbox(intake)
    assert (attempts, sent, error, due) == (1, None, "nack-AE", return_path.NEVER)
    assert move(team, task_id, "completed").status_code == 200
    assert relay.run_once() == 1  # the completion is not held up behind the parked one
    assert [parse(m).get("RF1", 1) for m in receiver.wait_for(2)] == ["A", "C"]
    assert relay.run_once() == 0


def test_an_answer_undeliverable_for_72_hours_is_parked(
    intake: Services, task_id: str, team: Any
) -> None:
    route_to(intake, "mllp://127.0.0.1:9")  # discard port: refused
    assert move(team, task_id, "accepted").status_code == 200
    with intake.repo.writer() as session:  # queued 72 hours and a minute ago
        session.execute(
            "UPDATE hl7v2_outbox SET created_us = ?",
            (return_path.now_us() - return_path.GIVE_UP_US - 60_000_000,),
        )
    assert Relay(intake, timeout=1).run_once() == 1
    [(_, _, _, sent, error, due)] = outbox(intake)
    assert (sent, error, due) == (None, "gave-up-refused", return_path.NEVER)


def test_referral_identifiers_on_a_task_the_intake_never_made_get_no_answer(
    intake: Services, task_id: str, team: Any
) -> None:
    """Copying a referral's identifiers onto a Task does not make it one: only a Task whose
    REF^I12 the intake applied (its message log row) is answered."""
    with intake.repo.writer() as session:
        session.execute("DELETE FROM hl7v2_messages")  # as if the referral never came in
    assert move(team, task_id, "accepted").status_code == 200
    assert outbox(intake) == []


@pytest.mark.parametrize("answer", ["silent", "close"])
def test_no_ack_is_retried(
    intake: Services, task_id: str, team: Any, receiver: Receiver, answer: str
) -> None:
    receiver.answers = [answer]
    assert move(team, task_id, "accepted").status_code == 200
    assert Relay(intake, timeout=0.3).run_once() == 1
    [(_, _, attempts, sent, error, _)] = outbox(intake)
    assert (attempts, sent, error) == (1, None, "timeout" if answer == "silent" else "closed")


def test_nobody_listening_is_retried(intake: Services, task_id: str, team: Any) -> None:
    route_to(intake, "mllp://127.0.0.1:9")  # discard port: refused
    assert move(team, task_id, "accepted").status_code == 200
    assert Relay(intake, timeout=1).run_once() == 1
    [(_, destination, attempts, sent, error, _)] = outbox(intake)
    assert (destination, attempts, sent, error) == ("mllp://127.0.0.1:9", 1, None, "refused")


def test_two_relays_send_a_row_once(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    assert move(team, task_id, "accepted").status_code == 200
    relays = [Relay(intake, timeout=2) for _ in range(4)]
    threads = [threading.Thread(target=r.run_once) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(receiver.wait_for(1)) == 1 and len(receiver.received) == 1
    assert outbox(intake)[0][3] is not None


def test_the_relay_thread_sends_by_itself(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    relay = Relay(intake, interval=0.05, timeout=2)
    relay.start()
    try:
        assert move(team, task_id, "accepted").status_code == 200
        assert len(receiver.wait_for(1)) == 1
    finally:
        relay.stop()


# -- atomic with the Task change ----------------------------------------------------------------
def test_a_refused_task_update_enqueues_nothing(
    intake: Services, task_id: str, client: TestClient
) -> None:
    # the record system is the requester: only the owner moves the status (task-status-owner)
    assert move(client, task_id, "accepted").status_code == 403
    assert outbox(intake) == []


def test_a_failed_transaction_enqueues_nothing(intake: Services, task_id: str, team: Any) -> None:
    task = team.get(f"/fhir/Task/{task_id}").json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**task, "status": "accepted"},
                "request": {"method": "PUT", "url": f"Task/{task_id}"},
            },
            {  # an If-Match that cannot hold: 412, so the whole transaction is rolled back
                "resource": {"resourceType": "Basic", "id": "x", "code": {"text": "x"}},
                "request": {"method": "PUT", "url": "Basic/x", "ifMatch": 'W/"9"'},
            },
        ],
    }
    assert team.post("/fhir", json=bundle).status_code == 412
    assert outbox(intake) == []
    assert team.get(f"/fhir/Task/{task_id}").json()["status"] == "requested"


def test_only_referral_tasks_and_reported_changes_are_answered(
    intake: Services, task_id: str, team: Any, org_client: Acting
) -> None:
    assert move(team, task_id, "received").status_code == 200  # not a reported status
    assert outbox(intake) == []
    assert move(team, task_id, "accepted").status_code == 200
    note = [{"text": "Aika sovittu"}]
    ops = [{"op": "add", "path": "/note", "value": note}]  # still accepted: nothing new
    assert team.patch(f"/fhir/Task/{task_id}", json=ops, headers=PATCH).status_code == 200
    assert len(outbox(intake)) == 1
    kela = org_client("kela")  # a sample responsibility (no referral): no RRI
    assert move(kela, "aino-task-kela", "in-progress").status_code == 200
    assert move(kela, "aino-task-kela", "completed").status_code == 200
    assert len(outbox(intake)) == 1


def test_a_sender_without_an_endpoint_gets_no_answers(
    intake: Services, task_id: str, team: Any
) -> None:
    route_to(intake, None)
    assert move(team, task_id, "accepted").status_code == 200
    assert outbox(intake) == []


def test_an_invalid_message_is_parked_not_sent(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    assert move(team, task_id, "accepted").status_code == 200
    with intake.repo.writer() as session:  # as if a builder bug had left out the PID
        session.execute(
            "UPDATE hl7v2_outbox SET message = ? WHERE sent_us IS NULL",
            ("MSH|^~\\&|PLAN_GATEWAY||PEGASOS||20261014||RRI^I12^RRI_I12|X1|P|2.5.1\r",),
        )
    assert Relay(intake, timeout=1).run_once() == 1
    [(_, _, _, sent, error, next_us)] = outbox(intake)
    assert (sent, error, next_us) == (None, "invalid-outbound", return_path.NEVER)
    assert receiver.received == []
    assert move(team, task_id, "completed").status_code == 200  # the next is not held up
    assert Relay(intake, timeout=2).run_once() == 1
    assert [parse(m).get("RF1", 1) for m in receiver.wait_for(1)] == ["C"]


def test_an_rri_that_cannot_be_built_never_refuses_the_change(
    intake: Services, task_id: str, team: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> str:
        raise KeyError("a bug")

    monkeypatch.setattr(return_path.rri, "build", broken)
    assert move(team, task_id, "accepted").status_code == 200
    # the answer owed is not lost silently: a parked row without a message, never sent
    [(_, _, attempts, sent, error, next_us)] = outbox(intake)
    assert (attempts, sent, error, next_us) == (0, None, "build-failed", return_path.NEVER)
    assert Relay(intake, timeout=1).run_once() == 0


# -- end to end: MLLP in, REST, MLLP out ----------------------------------------------------------
def test_mllp_in_rest_then_the_apps_relay_answers_over_mllp(
    intake: Services, settings: Settings, receiver: Receiver, as_org: Acting
) -> None:
    """The app as `plan-gateway serve --mllp-port` runs it: its lifespan starts the MLLP
    listener and the relay; the REF comes in over TCP, the team accepts over HTTP, and the RRI
    reaches the record system's listener without the test driving the relay."""
    load_samples(intake)
    route_to(intake, receiver.url)
    settings.mllp_port = 0  # any free port
    with TestClient(create_app(settings, intake)) as http:
        port = http.app.state.mllp.port  # type: ignore[attr-defined]
        reply = send(f"mllp://127.0.0.1:{port}", sample("ref-aino").decode("utf-8"), timeout=10)
        assert (reply.code, reply.control_id) == ("AA", "PGS002001")
        assert intake.ids is not None
        task_id = builder.ids_of(intake.ids, "org-sote-keskus", "LAH20261012-1")[1]
        ops = [{"op": "replace", "path": "/status", "value": "accepted"}]
        headers = {**as_org("tyokykytiimi"), **PATCH}
        assert http.patch(f"/fhir/Task/{task_id}", json=ops, headers=headers).status_code == 200
        [er7] = receiver.wait_for(1, timeout=15)
    assert (parse(er7).get("MSA", 2), parse(er7).get("RF1", 1)) == ("PGS002001", "A")


# -- what the record system may be told ----------------------------------------------------------
def test_the_rri_is_a_recorded_disclosure(intake: Services, task_id: str, team: Any) -> None:
    assert move(team, task_id, "accepted").status_code == 200
    with intake.repo.reader() as session:
        bodies = [
            orjson.loads(row[0])
            for row in session.query("SELECT body FROM resources WHERE res_type = 'AuditEvent'")
        ]
    exports = [e for e in bodies if e["type"].get("code") == "110106"]  # DCM Export
    [event] = exports
    entities = [e["what"]["reference"] for e in event["entity"]]
    assert f"Task/{task_id}/_history/2" in entities and "Patient/aino" in entities
    assert "org-sote-keskus" in orjson.dumps(event["agent"]).decode()


def test_a_client_the_record_system_may_not_see_is_not_named(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    """Aino's record moves to the team, and the record system's purpose is no longer one her
    consent permits: the Task is still its own (it is the requester), her name is not."""
    with intake.repo.reader() as session:
        aino = orjson.loads(session.current("Patient", "aino").body)  # type: ignore[union-attr]
    moved = {**aino, "managingOrganization": {"reference": "Organization/org-tyokykytiimi"}}
    with intake.repo.writer() as session:
        session.write("Patient", "aino", moved, "PUT")
    route_to(intake, receiver.url, purpose="HRESCH")
    assert move(team, task_id, "accepted").status_code == 200
    assert Relay(intake, timeout=2).run_once() == 1
    [er7] = receiver.wait_for(1)
    pid = parse(er7).segment("PID")
    assert pid is not None and pid.get(3) == "150390-902D" and pid.raw(5) == '""'
    assert "Testinen" not in er7
