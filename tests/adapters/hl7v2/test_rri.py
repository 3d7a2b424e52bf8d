"""adapters/hl7v2/builders/rri.py: the RRI^I12 we send back, validated with hl7apy
(parse.validate_outbound) for every status the return path reports."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from adapters.hl7v2.builders import rri
from adapters.hl7v2.message import parse
from adapters.hl7v2.parse import validate_outbound

NOW = datetime(2026, 10, 14, 7, 0, tzinfo=UTC)
ANSWER = rri.Answer(
    status="accepted",
    control_id="PGS002001",
    referral_id="LAH20261012-1",
    receiver=("PEGASOS", "1.2.246.10.2345678.10.0"),
    referring=rri.Party("Esimerkkilän sote-keskus", "1.2.246.10.99990001.10.0"),
    referred_to=rri.Party("Esimerkkilän sote-keskus, työkykytiimi", "1.2.246.10.99990001.10.17"),
    hetu="150390-902D",
    family="Testinen",
    given="Aino",
    priority="routine",
    start="2026-10-12",
    due="2026-12-31",
)
# hl7apy's tables list the patterns "HL7nnnn" (table 0396) and "NNxxx" (table 0203) literally,
# so the standard's HL70283/HL70280 and NNFIN are warned about; no other problem is allowed.
PATTERN_WARNINGS = {
    "warning: value not in table HL70396 in element RF1_1.CE_3",
    "warning: value not in table HL70396 in element RF1_2.CE_3",
    "warning: value not in table HL70203 in element PID_3.CX_5",
}


@pytest.mark.parametrize(
    ("status", "code"), [("accepted", "A"), ("rejected", "R"), ("completed", "C")]
)
def test_each_reported_status_builds_a_valid_rri(status: str, code: str) -> None:
    er7 = rri.build(dataclasses.replace(ANSWER, status=status), "RRI1", NOW)
    assert set(validate_outbound(er7)) <= PATTERN_WARNINGS
    message = parse(er7)
    assert message.event == "RRI^I12"
    assert message.get("MSA", 2) == "PGS002001"  # the REF^I12's MSH-10
    assert message.get("RF1", 1) == code  # task-status-to-v2-0283
    assert message.get("RF1", 6) == "LAH20261012-1"
    assert (message.msh.get(5), message.msh.get(6, component=2)) == (
        "PEGASOS",
        "1.2.246.10.2345678.10.0",
    )
    roles = [(s.get(1), s.get(7)) for s in message.segments("PRD")]
    assert roles == [("RP", "1.2.246.10.99990001.10.0"), ("RT", "1.2.246.10.99990001.10.17")]
    assert message.get("PID", 3) == "150390-902D"


def test_a_note_is_escaped_and_comes_back_whole() -> None:
    note = "Ei resursseja | ohjataan ^ muualle & \\ rivi\nkaksi"
    er7 = rri.build(dataclasses.replace(ANSWER, status="rejected", note=note), "RRI2", NOW)
    assert set(validate_outbound(er7)) <= PATTERN_WARNINGS
    assert parse(er7).get("NTE", 3) == note


def test_without_a_name_pid_5_is_the_explicit_null() -> None:
    er7 = rri.build(dataclasses.replace(ANSWER, family="", given=""), "RRI3", NOW)
    assert set(validate_outbound(er7)) <= PATTERN_WARNINGS
    assert parse(er7).segment("PID").raw(5) == '""'  # type: ignore[union-attr]


def test_a_facility_that_is_no_oid_is_a_namespace_id() -> None:
    er7 = rri.build(dataclasses.replace(ANSWER, receiver=("PEGASOS", "SATSHP")), "RRI4", NOW)
    assert parse(er7).msh.raw(6) == "SATSHP"


@pytest.mark.parametrize("status", ["requested", "in-progress", "cancelled", "failed"])
def test_other_statuses_are_not_reported(status: str) -> None:
    assert not rri.reported(status)
    with pytest.raises(ValueError):
        rri.build(dataclasses.replace(ANSWER, status=status), "RRI5", NOW)


def test_control_ids_are_short_and_reproducible() -> None:
    one, two = rri.control_id("Task/a", "2"), rri.control_id("Task/a", "3")
    assert one == rri.control_id("Task/a", "2") and one != two and len(one) == 20
