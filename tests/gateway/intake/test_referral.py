"""REF^I12 through the intake pipeline (gateway/intake/hl7v2.handle -> referral.handle) on Aino's
sample plan, both stores: the record system (org-sote-keskus, PEGASOS) refers Aino to the
work-ability team or a partner NGO -> ServiceRequest + Task in her active plan, as the sender and
under the write rules; the same referral twice changes nothing; what cannot be placed is AE
naming the segment and field, and changes nothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from adapters.hl7v2.builders import referral as builder
from gateway.fhir_api.context import Services
from gateway.intake.hl7v2 import handle
from gateway.samples import load_samples
from tests.gateway.intake.acks import code, segments
from tests.gateway.intake.conftest import sample

SENDER = "org-sote-keskus"


@pytest.fixture
def loaded(intake: Services) -> Services:
    load_samples(intake)
    return intake


def stored(svc: Services, resource_type: str, id: str) -> dict[str, Any] | None:
    with svc.repo.reader() as session:
        sv = session.current(resource_type, id)
    return orjson.loads(sv.body) if sv is not None and not sv.deleted else None


def state(svc: Services) -> tuple:
    """Every stored version but AuditEvents (a refusal is audited), and the message log."""
    with svc.repo.reader() as session:
        versions = session.query(
            "SELECT res_type, res_id, version FROM history WHERE res_type <> 'AuditEvent' "
            "ORDER BY res_type, res_id, version"
        )
        log = session.query("SELECT sender, control_id FROM hl7v2_messages ORDER BY control_id")
    return tuple(versions), tuple(log)


def ids(svc: Services, referral_id: str) -> tuple[str, str]:
    assert svc.ids is not None
    return builder.ids_of(svc.ids, SENDER, referral_id)


def test_a_referral_becomes_a_responsibility_in_the_clients_plan(loaded: Services) -> None:
    ack = handle(loaded, sample("ref-aino"), "127.0.0.1:5000")
    assert segments(ack)["MSA"] == ["MSA", "AA", "PGS002001"]
    sr_id, task_id = ids(loaded, "LAH20261012-1")
    sr, task = stored(loaded, "ServiceRequest", sr_id), stored(loaded, "Task", task_id)
    assert sr is not None and task is not None
    assert sr["code"]["coding"][0]["code"] == "tyokyvyn-arvio"
    assert sr["subject"] == task["for"] == {"reference": "Patient/aino"}
    assert task["owner"] == {"reference": "Organization/org-tyokykytiimi"}  # PRD RT by its OID
    assert task["requester"] == {"reference": f"Organization/{SENDER}"}
    assert (task["status"], task["restriction"]["period"]["end"]) == ("requested", "2026-12-31")
    plan = stored(loaded, "CarePlan", "aino-plan")
    assert plan is not None
    assert {"reference": {"reference": f"ServiceRequest/{sr_id}"}} in plan["activity"]
    assert plan["meta"]["versionId"] == "2"


def test_a_referral_to_a_partner(loaded: Services) -> None:
    assert code(handle(loaded, sample("ref-aino-partner"), None)) == "AA"
    task = stored(loaded, "Task", ids(loaded, "LAH20261013-4")[1])
    assert task is not None
    assert task["owner"] == {"reference": "Organization/org-jarjesto"}
    assert task["priority"] == "asap"


def test_the_same_referral_twice_changes_nothing(loaded: Services) -> None:
    first = handle(loaded, sample("ref-aino"), None)
    before = state(loaded)
    assert handle(loaded, sample("ref-aino"), None) == first  # the same MSH-10: the stored ACK
    assert state(loaded) == before
    resent = sample("ref-aino").replace(b"PGS002001", b"PGS002099")  # resent under a new MSH-10
    assert code(handle(loaded, resent, None)) == "AA"
    versions, log = state(loaded)
    assert versions == before[0] and len(log) == len(before[1]) + 1


def test_a_repeat_leaves_the_partners_progress_alone(loaded: Services) -> None:
    assert code(handle(loaded, sample("ref-aino"), None)) == "AA"
    task_id = ids(loaded, "LAH20261012-1")[1]
    task = stored(loaded, "Task", task_id)
    assert task is not None
    with loaded.repo.writer() as session:  # the team has accepted it meanwhile
        session.write("Task", task_id, {**task, "status": "accepted"}, "PUT")
    resent = sample("ref-aino").replace(b"PGS002001", b"PGS002098")
    assert code(handle(loaded, resent, None)) == "AA"
    assert stored(loaded, "Task", task_id)["status"] == "accepted"  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "err"),
    [
        ((b"150390-902D", b"010101-999X"), ["PID", "1", "3"]),  # nobody with that HETU
        (
            (b"|||||1.2.246.10.99990001.10.17", b"|||||1.2.246.10.1.10.1"),
            ["PRD", "2", "7"],
        ),  # no such org
        ((b"WRK^", b"ZZZ^"), ["RF1", "1", "3"]),  # no service kind for the referral type
        ((b"|LAH20261012-1|", b"||"), ["RF1", "1", "6"]),  # no referral id
    ],
)
def test_what_cannot_be_placed_is_ae_and_changes_nothing(
    loaded: Services, change: tuple[bytes, bytes], err: list[str]
) -> None:
    before = state(loaded)
    ack = handle(loaded, sample("ref-aino").replace(*change), None)
    seg = segments(ack)
    assert seg["MSA"][1] == "AE"
    assert seg["ERR"][2].split("^") == err  # ERR-2: segment ^ its occurrence ^ field
    for value in (b"010101-999X", b"1.2.246.10.1.10.1", b"ZZZ"):
        assert value not in ack
    assert state(loaded) == before


def test_a_client_with_no_plan_the_sender_may_see_is_ae(loaded: Services) -> None:
    """Aino's consent permits the record system for care management only: under another
    registered purpose her plan is hidden, and the referral names PID-3."""
    registry = loaded.security.registry  # type: ignore[union-attr]
    org = registry.find("sote-keskus")
    link = dataclasses.replace(org.hl7v2, purpose="HRESCH")  # type: ignore[union-attr, arg-type]
    changed = dataclasses.replace(org, hl7v2=link)  # type: ignore[arg-type]
    registry.by_client["sote-keskus"] = changed
    registry.by_hl7v2[(link.application, link.facility)] = changed
    before = state(loaded)
    ack = handle(loaded, sample("ref-aino"), None)
    seg = segments(ack)
    assert seg["MSA"][1] == "AE" and seg["ERR"][2].split("^") == ["PID", "1", "3"]
    assert b"visible" in ack
    assert state(loaded) == before
