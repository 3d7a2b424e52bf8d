"""The HL7 v2 return path (gateway/intake/return_path.py) on both stores: Aino's referral comes
in from the record system (org-sote-keskus); when the work-ability team (the Task's owner)
accepts, rejects or completes it over REST, an RRI^I12 is queued in the general outbox
(gateway/delivery/outbox.py, channel mllp, stream = the record system's endpoint) in the same
transaction, and the delivery relay (gateway/delivery/relay.py) sends it to the record system's
registered endpoint — here a real asyncio MLLP receiver on loopback
(tests/adapters/hl7v2/test_rri_client.Receiver)."""

from __future__ import annotations

import contextlib
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
from gateway.delivery import outbox
from gateway.delivery.outbox import NEVER, Backoff
from gateway.delivery.relay import Relay, now_us
from gateway.fhir_api.context import Services
from gateway.intake import return_path
from gateway.intake.hl7v2 import handle
from gateway.samples import load_samples
from gateway.settings import Settings
from tests.adapters.hl7v2.test_rri_client import Receiver
from tests.gateway.intake.acks import code
from tests.gateway.intake.conftest import sample

PATCH = {"Content-Type": "application/json-patch+json"}
Acting = Callable[..., Any]
COLUMNS = (
    "id, channel, stream, seq, kind, focus, payload, destination, created_us, since_us, "
    "attempts, next_us, sent_us, dead_us, last_error"
)
STEADY = Backoff(base=10.0, jitter=0.0)  # 10 s, 20 s, …: exact, so the schedule can be checked


def route_to(svc: Services, url: str | None, **link: Any) -> None:
    """Point the record system's registered endpoint (sote-keskus.json "hl7v2") at `url` (and
    change other fields of its link)."""
    registry = svc.security.registry  # type: ignore[union-attr]
    org = registry.by_client["sote-keskus"]
    changed = dataclasses.replace(org, hl7v2=dataclasses.replace(org.hl7v2, endpoint=url, **link))
    registry.by_client["sote-keskus"] = changed
    registry.by_hl7v2[(org.hl7v2.application, org.hl7v2.facility)] = changed


def relay(svc: Services, timeout: float = 2.0, **more: Any) -> Relay:
    """The delivery relay as the app runs it, with an MLLP timeout short enough for tests."""
    return Relay(svc, backoff=more.pop("backoff", STEADY), mllp_timeout=timeout, **more)


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


def rows(svc: Services) -> list[dict[str, Any]]:
    """The outbox, in queue order, one dict (column -> value) per row."""
    names = [c.strip() for c in COLUMNS.split(",")]
    with svc.repo.reader() as session:
        found = session.query(f"SELECT {COLUMNS} FROM outbox ORDER BY pos")
    return [dict(zip(names, r, strict=True)) for r in found]


def pick(row: dict[str, Any], *names: str) -> tuple:
    return tuple(row[n] for n in names)


def make_due(svc: Services) -> None:
    with svc.repo.writer() as session:
        session.execute("UPDATE outbox SET next_us = 0 WHERE sent_us IS NULL AND dead_us IS NULL")


# -- what is sent ----------------------------------------------------------------------------
def test_accepting_the_task_sends_an_rri_to_the_record_system(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    assert rows(intake) == []  # the referral itself (status requested) is not answered
    assert move(team, task_id, "accepted").status_code == 200
    [row] = rows(intake)
    # queued with the change on the record system's stream, not yet sent
    assert pick(row, "channel", "stream", "destination", "kind") == (
        "mllp",
        receiver.url,
        receiver.url,
        "message",
    )
    assert pick(row, "attempts", "sent_us", "dead_us") == (0, None, None)
    assert row["payload"].startswith("MSH|") and row["created_us"] == row["since_us"]
    assert relay(intake).run_once() == 1
    [er7] = receiver.wait_for(1)
    assert er7 == row["payload"]  # the message queued is the message sent
    rri = parse(er7)
    assert rri.event == "RRI^I12"
    assert rri.get("MSA", 2) == "PGS002001"  # the REF^I12's MSH-10
    assert (rri.get("RF1", 1), rri.get("RF1", 6)) == ("A", "LAH20261012-1")
    assert [s.get(7) for s in rri.segments("PRD")] == [
        "1.2.246.10.99990001.10.0",  # RP: org-sote-keskus by its SOTE OID
        "1.2.246.10.99990001.10.17",  # RT: the work-ability team
    ]
    assert (rri.get("PID", 3), rri.get("PID", 5)) == ("150390-902D", "Testinen")
    [row] = rows(intake)
    assert pick(row, "attempts", "last_error", "dead_us") == (1, None, None)
    assert row["sent_us"] is not None  # sent on AA
    assert relay(intake).run_once() == 0


def test_a_rejection_says_why(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    reason = {"text": "Ei kuulu tiimin palveluihin"}
    assert move(team, task_id, "rejected", statusReason=reason).status_code == 200
    relay(intake).run_once()
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
    assert [r["stream"] for r in rows(intake)] == [receiver.url] * 2  # one stream
    sender = relay(intake)
    assert sender.run_once() == 1  # one per stream at a time: the oldest first
    assert receiver.wait_for(1) and len(receiver.received) == 1
    assert sender.run_once() == 1
    assert sender.run_once() == 0
    first, second = (parse(m) for m in receiver.wait_for(2))
    assert (first.get("RF1", 1), second.get("RF1", 1)) == ("A", "C")
    assert second.get("NTE", 3) == "Arvio valmis, lausunto lähetetty."


def test_a_later_answer_waits_while_an_earlier_one_is_retried(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    """In order per record system: a completion never overtakes an acceptance still owed."""
    receiver.answers = ["AR"]
    assert move(team, task_id, "accepted").status_code == 200
    assert move(team, task_id, "completed").status_code == 200
    sender = relay(intake)
    assert sender.run_once() == 1  # the acceptance, refused with AR: retried later
    make_due(intake)  # both due now; the acceptance still goes first
    assert sender.run_once() == 1
    assert sender.run_once() == 1
    assert [parse(m).get("RF1", 1) for m in receiver.wait_for(3)] == ["A", "A", "C"]


# -- retries -------------------------------------------------------------------------------------
def test_a_failing_receiver_is_retried_with_backoff(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    receiver.answers = ["AR", "AR"]
    assert move(team, task_id, "accepted").status_code == 200
    sender = relay(intake)
    started = now_us()
    assert sender.run_once() == 1
    [row] = rows(intake)
    assert pick(row, "attempts", "sent_us", "dead_us", "last_error") == (1, None, None, "nack-AR")
    assert 9e6 < row["next_us"] - started < 12e6  # backoff 10 s after the first failure
    assert sender.run_once() == 0  # not due again yet
    make_due(intake)
    started = now_us()
    assert sender.run_once() == 1
    [row] = rows(intake)
    assert pick(row, "attempts", "sent_us", "dead_us", "last_error") == (2, None, None, "nack-AR")
    assert 19e6 < row["next_us"] - started < 22e6  # doubled after the second
    make_due(intake)
    assert sender.run_once() == 1  # the receiver answers AA now
    [row] = rows(intake)
    assert pick(row, "attempts", "last_error", "dead_us") == (3, None, None)
    assert row["sent_us"] is not None
    assert len(receiver.wait_for(3)) == 3
    assert {parse(m).control_id for m in receiver.received} == {
        parse(receiver.received[0]).control_id
    }


def test_backoff_is_capped_and_spread() -> None:
    backoff = Backoff(base=2.0, cap=600.0, jitter=0.2)
    assert all(1.6e6 <= backoff.delay_us(1) <= 2.4e6 for _ in range(50))
    assert all(480e6 <= backoff.delay_us(30) <= 720e6 for _ in range(50))
    assert len({backoff.delay_us(5) for _ in range(20)}) > 1  # rows failing together spread out


@pytest.mark.parametrize("answer", ["AE", "CE"])
def test_a_refusal_of_the_content_is_a_dead_letter_and_later_answers_still_go(
    intake: Services, task_id: str, team: Any, receiver: Receiver, answer: str
) -> None:
    """AE: the record system read the RRI and refused its content; sending it again cannot
    help, and retrying it would hold up every later answer to that record system."""
    receiver.answers = [answer]
    assert move(team, task_id, "accepted").status_code == 200
    sender = relay(intake)
    assert sender.run_once() == 1
    [row] = rows(intake)
    assert pick(row, "attempts", "sent_us", "last_error", "next_us") == (
        1,
        None,
        f"nack-{answer}",
        NEVER,
    )
    assert row["dead_us"] is not None  # a dead letter, at once (no retries)
    assert move(team, task_id, "completed").status_code == 200
    assert sender.run_once() == 1  # the completion is not held up behind the dead letter
    assert [parse(m).get("RF1", 1) for m in receiver.wait_for(2)] == ["A", "C"]
    assert sender.run_once() == 0
    with intake.repo.reader() as session:
        states = [(r.kind, r.state) for r in outbox.listing(session, stream=receiver.url)]
    assert states == [("message", "dead"), ("message", "sent")]


def test_a_dead_letter_resent_goes_again(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    receiver.answers = ["AE"]
    assert move(team, task_id, "accepted").status_code == 200
    sender = relay(intake)
    assert sender.run_once() == 1
    [dead] = rows(intake)
    with intake.repo.writer() as session:
        assert outbox.resend(session, now_us(), ids=[dead["id"]]) == 1
    [row] = rows(intake)
    assert pick(row, "attempts", "dead_us", "last_error") == (0, None, None)
    assert row["since_us"] > dead["since_us"]  # a new retry window
    assert sender.run_once() == 1
    assert len(receiver.wait_for(2)) == 2
    assert receiver.received[0] == receiver.received[1]  # the same message (same MSH-10)
    [row] = rows(intake)
    assert row["sent_us"] is not None and row["dead_us"] is None


def test_an_answer_undeliverable_for_72_hours_is_a_dead_letter(
    intake: Services, task_id: str, team: Any
) -> None:
    route_to(intake, "mllp://127.0.0.1:9")  # discard port: refused
    assert move(team, task_id, "accepted").status_code == 200
    with intake.repo.writer() as session:  # its retry window began 72 hours and a minute ago
        session.execute(
            "UPDATE outbox SET since_us = ?", (now_us() - (72 * 3600 + 60) * 1_000_000,)
        )
    assert relay(intake, timeout=1).run_once() == 1
    [row] = rows(intake)
    assert pick(row, "sent_us", "last_error", "next_us") == (None, "gave-up-refused", NEVER)
    assert row["dead_us"] is not None
    assert relay(intake, timeout=1).run_once() == 0


def test_an_answer_undeliverable_for_less_than_72_hours_is_retried(
    intake: Services, task_id: str, team: Any
) -> None:
    route_to(intake, "mllp://127.0.0.1:9")
    assert move(team, task_id, "accepted").status_code == 200
    with intake.repo.writer() as session:  # 71 hours in
        session.execute("UPDATE outbox SET since_us = ?", (now_us() - 71 * 3600 * 1_000_000,))
    assert relay(intake, timeout=1).run_once() == 1
    [row] = rows(intake)
    assert pick(row, "dead_us", "last_error") == (None, "refused")
    assert row["next_us"] < NEVER


def test_referral_identifiers_on_a_task_the_intake_never_made_get_no_answer(
    intake: Services, task_id: str, team: Any
) -> None:
    """Copying a referral's identifiers onto a Task does not make it one: only a Task whose
    REF^I12 the intake applied (its message log row) is answered."""
    with intake.repo.writer() as session:
        session.execute("DELETE FROM hl7v2_messages")  # as if the referral never came in
    assert move(team, task_id, "accepted").status_code == 200
    assert rows(intake) == []


@pytest.mark.parametrize("answer", ["silent", "close"])
def test_no_ack_is_retried(
    intake: Services, task_id: str, team: Any, receiver: Receiver, answer: str
) -> None:
    receiver.answers = [answer]
    assert move(team, task_id, "accepted").status_code == 200
    assert relay(intake, timeout=0.3).run_once() == 1
    [row] = rows(intake)
    error = "timeout" if answer == "silent" else "closed"
    assert pick(row, "attempts", "sent_us", "dead_us", "last_error") == (1, None, None, error)


def test_nobody_listening_is_retried(intake: Services, task_id: str, team: Any) -> None:
    route_to(intake, "mllp://127.0.0.1:9")  # discard port: refused
    assert move(team, task_id, "accepted").status_code == 200
    assert relay(intake, timeout=1).run_once() == 1
    [row] = rows(intake)
    assert pick(row, "destination", "attempts", "sent_us", "dead_us", "last_error") == (
        "mllp://127.0.0.1:9",
        1,
        None,
        None,
        "refused",
    )


def test_the_injected_sender_gets_the_destination_message_and_timeout(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    calls: list[tuple[str, str, float]] = []

    def sender(destination: str, message: str, timeout: float) -> Any:
        calls.append((destination, message, timeout))
        return send(destination, message, timeout)

    assert move(team, task_id, "accepted").status_code == 200
    assert relay(intake, timeout=1.5, mllp_sender=sender).run_once() == 1
    [row] = rows(intake)
    assert calls == [(receiver.url, row["payload"], 1.5)]
    assert row["sent_us"] is not None


def test_an_unexpected_error_in_one_send_loses_no_other_outcome(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    """Two record systems in one round; the send to one fails with something that is not a
    DeliveryError (a bug). The other's AA must still be recorded (else it is sent again when its
    lease ends), and the failing row must count as a failed try (else it is never given up)."""
    assert move(team, task_id, "accepted").status_code == 200
    broken = "mllp://127.0.0.1:1"
    with intake.repo.writer() as session:  # the same message owed to a second record system
        [row] = session.query("SELECT payload FROM outbox")
        copy = {"stream": broken, "destination": broken, "payload": str(row[0])}
        outbox.add(session, id="other", channel="mllp", kind="message", now=now_us(), **copy)

    def sender(destination: str, message: str, timeout: float) -> Any:
        if destination == broken:
            raise RuntimeError("a bug in one send")
        return send(destination, message, timeout)

    with contextlib.suppress(RuntimeError):  # the round may fail; what it recorded matters
        relay(intake, mllp_sender=sender).run_once()
    assert len(receiver.wait_for(1)) == 1  # delivered…
    states = {r["stream"]: (r["sent_us"] is not None, r["last_error"]) for r in rows(intake)}
    assert states[receiver.url][0], "delivered (AA) but not recorded as sent"
    assert states[broken][1] is not None, "failed but not recorded as a failed try"


# -- at least once, never twice at once -----------------------------------------------------------
def test_two_relays_send_a_row_once(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    assert move(team, task_id, "accepted").status_code == 200
    relays = [relay(intake) for _ in range(4)]
    threads = [threading.Thread(target=r.run_once) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(receiver.wait_for(1)) == 1 and len(receiver.received) == 1
    [row] = rows(intake)
    assert row["sent_us"] is not None and row["attempts"] == 1


def test_a_leased_row_is_not_taken_again_until_its_lease_ends(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    """A relay that claimed a row and died mid-send: nobody sends it while its lease lasts;
    once it ends the row is due again (at least once, its attempt counted)."""
    assert move(team, task_id, "accepted").status_code == 200
    [batch] = outbox.claim(intake.repo, now_us(), lease_us=60_000_000)  # and then nothing
    assert batch.channel == "mllp" and len(batch.rows) == 1
    [row] = rows(intake)
    assert row["attempts"] == 1 and row["next_us"] > now_us() + 50_000_000
    assert relay(intake).run_once() == 0  # leased: not taken
    assert receiver.received == []
    make_due(intake)  # the lease ends
    assert relay(intake).run_once() == 1
    assert len(receiver.wait_for(1)) == 1
    [row] = rows(intake)
    assert row["sent_us"] is not None and row["attempts"] == 2


def test_the_relay_thread_sends_by_itself(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    sender = relay(intake, interval=0.05)
    sender.start()
    try:
        assert move(team, task_id, "accepted").status_code == 200
        assert len(receiver.wait_for(1)) == 1
    finally:
        sender.stop()


def test_the_relay_thread_survives_a_failing_database(
    intake: Services,
    task_id: str,
    team: Any,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A round that fails (the database away) is logged by kind only and the next round runs."""
    sender = relay(intake, interval=0.05)
    claim, failures = sender._claim_and_prepare, [0]

    def flaky(now: int, after: Any) -> Any:
        if failures[0] < 3:
            failures[0] += 1
            raise ConnectionError("the database is away")
        return claim(now, after)

    monkeypatch.setattr(sender, "_claim_and_prepare", flaky)
    assert move(team, task_id, "accepted").status_code == 200
    sender.start()
    try:
        assert len(receiver.wait_for(1)) == 1
    finally:
        sender.stop()
    assert failures[0] == 3
    failed = [r for r in caplog.records if "round failed" in r.getMessage()]
    assert failed and all("ConnectionError" in r.getMessage() for r in failed)
    assert rows(intake)[0]["sent_us"] is not None


# -- atomic with the Task change ----------------------------------------------------------------
def test_a_refused_task_update_enqueues_nothing(
    intake: Services, task_id: str, client: TestClient
) -> None:
    # the record system is the requester: only the owner moves the status (task-status-owner)
    assert move(client, task_id, "accepted").status_code == 403
    assert rows(intake) == []


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
    assert rows(intake) == []
    assert team.get(f"/fhir/Task/{task_id}").json()["status"] == "requested"


def test_only_referral_tasks_and_reported_changes_are_answered(
    intake: Services, task_id: str, team: Any, org_client: Acting
) -> None:
    assert move(team, task_id, "received").status_code == 200  # not a reported status
    assert rows(intake) == []
    assert move(team, task_id, "accepted").status_code == 200
    note = [{"text": "Aika sovittu"}]
    ops = [{"op": "add", "path": "/note", "value": note}]  # still accepted: nothing new
    assert team.patch(f"/fhir/Task/{task_id}", json=ops, headers=PATCH).status_code == 200
    assert len(rows(intake)) == 1
    kela = org_client("kela")  # a sample responsibility (no referral): no RRI
    assert move(kela, "aino-task-kela", "in-progress").status_code == 200
    assert move(kela, "aino-task-kela", "completed").status_code == 200
    assert len(rows(intake)) == 1


def test_a_sender_without_an_endpoint_gets_no_answers(
    intake: Services, task_id: str, team: Any
) -> None:
    route_to(intake, None)
    assert move(team, task_id, "accepted").status_code == 200
    assert rows(intake) == []


def test_an_invalid_message_is_a_dead_letter_not_sent(
    intake: Services, task_id: str, team: Any, receiver: Receiver
) -> None:
    assert move(team, task_id, "accepted").status_code == 200
    with intake.repo.writer() as session:  # as if a builder bug had left out the PID
        session.execute(
            "UPDATE outbox SET payload = ? WHERE sent_us IS NULL",
            ("MSH|^~\\&|PLAN_GATEWAY||PEGASOS||20261014||RRI^I12^RRI_I12|X1|P|2.5.1\r",),
        )
    assert relay(intake, timeout=1).run_once() == 1
    [row] = rows(intake)
    assert pick(row, "sent_us", "last_error", "next_us") == (None, "invalid-outbound", NEVER)
    assert row["dead_us"] is not None
    assert receiver.received == []
    assert move(team, task_id, "completed").status_code == 200  # the next is not held up
    assert relay(intake).run_once() == 1
    assert [parse(m).get("RF1", 1) for m in receiver.wait_for(1)] == ["C"]


def test_an_rri_that_cannot_be_built_never_refuses_the_change(
    intake: Services, task_id: str, team: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> str:
        raise KeyError("a bug")

    monkeypatch.setattr(return_path.rri, "build", broken)
    assert move(team, task_id, "accepted").status_code == 200
    # the answer owed is not lost silently: a dead letter without a message, never sent
    [row] = rows(intake)
    assert pick(row, "attempts", "sent_us", "last_error", "payload") == (
        0,
        None,
        "build-failed",
        "",
    )
    assert row["dead_us"] is not None
    assert relay(intake, timeout=1).run_once() == 0
    with intake.repo.reader() as session:
        [listed] = outbox.listing(session, state="dead")
    assert (listed.id, listed.last_error) == (row["id"], "build-failed")


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
    settings.delivery_relay = True  # as deployed (the tests' settings turn it off)
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
    assert relay(intake).run_once() == 1
    [er7] = receiver.wait_for(1)
    pid = parse(er7).segment("PID")
    assert pid is not None and pid.get(3) == "150390-902D" and pid.raw(5) == '""'
    assert "Testinen" not in er7
