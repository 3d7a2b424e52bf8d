"""adapters/hl7v2/builders/referral.py: what a REF^I12 says (read) and the responsibility it
becomes (resources). Messages are samples/hl7v2/ref-*.hl7 (fictional client, test HETU) or a
minimal REF built here with only the segments a test needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.hl7v2.builders import referral
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import parse
from adapters.ids import EXAMPLE_KEY, Ids

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "hl7v2"
IDS = Ids(EXAMPLE_KEY)
MSH = (
    "MSH|^~\\&|PEGASOS|SATSHP|PLAN_GATEWAY|TYOKYKYTIIMI|20261012091500||REF^I12^REF_I12|C1|P|2.5.1"
)
RF1 = "RF1||R^Routine^HL70280|WRK^Työkyvyn arviointi^L|||LAH-1|20261012|20261231"
PRD_RT = "PRD|RT|Työkykytiimi|||||1.2.246.10.99990001.10.17"
PID = "PID|1||150390-902D^^^&1.2.246.21&ISO^NNFIN||Testinen^Aino"


def ref(*segments: str) -> str:
    return "\r".join(segments) + "\r"


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.hl7").read_bytes()


def test_the_sample_referral_is_read() -> None:
    r = referral.read(parse(sample("ref-aino")))
    assert (r.control_id, r.referral_id) == ("PGS002001", "LAH20261012-1")
    assert r.service["code"] == "tyokyvyn-arvio"  # WRK via v2-0281-to-service-kind
    assert (r.priority, r.start, r.due) == ("routine", "2026-10-12", "2026-12-31")
    assert r.hetu == "150390-902D"
    assert r.referred_to == "1.2.246.10.99990001.10.17"  # PRD-7 of the RT provider
    assert r.reasons[0]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10",
        "code": "F32.1",
        "display": "Keskivaikea masennustila",
    }
    assert len(r.notes) == 1


def test_without_rf1_8_the_due_date_is_the_mapping_default() -> None:
    r = referral.read(parse(sample("ref-aino-partner")))  # RF1-8 empty, RF1-2 A
    assert (r.start, r.due, r.priority) == ("2026-10-13", "2027-01-11", "asap")  # + 90 days


def test_without_rf1_7_the_message_time_starts_it() -> None:
    r = referral.read(parse(ref(MSH, RF1.replace("|20261012|", "||"), PRD_RT, PID)))
    assert r.start == "2026-10-12"


@pytest.mark.parametrize(
    ("segments", "code", "where"),
    [
        ((MSH, RF1.replace("LAH-1", ""), PRD_RT, PID), "missing-field", ("RF1", 6, 2)),
        ((MSH, RF1.replace("WRK^", "XYZ^"), PRD_RT, PID), "invalid-value", ("RF1", 3, 2)),
        ((MSH, RF1.replace("20261231", "20261340"), PRD_RT, PID), "invalid-value", ("RF1", 8, 2)),
        ((MSH, RF1, PID), "missing-segment", ("PRD", 1, None)),
        ((MSH, RF1, "PRD|RT|Tiimi", PID), "missing-field", ("PRD", 7, 3)),
        ((MSH, RF1, PRD_RT, "PID|1||123^^^&1.2.3&ISO"), "missing-field", ("PID", 3, 4)),
        ((MSH, RF1, PRD_RT), "missing-segment", ("PID", None, None)),
    ],
)
def test_errors_name_segment_and_field_never_the_value(
    segments: tuple[str, ...], code: str, where: tuple[str, int | None, int | None]
) -> None:
    with pytest.raises(Hl7Error) as caught:
        referral.read(parse(ref(*segments)))
    error = caught.value
    assert (error.code, error.segment, error.field) == (code, *where[:2])
    if where[2] is not None:
        assert error.sequence == where[2]
    for value in ("LAH-1", "XYZ", "20261340", "150390-902D", "123"):
        assert value not in error.message


def test_resources_are_a_responsibility_with_deterministic_ids() -> None:
    r = referral.read(parse(sample("ref-aino")))
    made = [
        referral.resources(
            r,
            ids=IDS,
            sender="org-sote-keskus",
            patient="Patient/aino",
            plan="CarePlan/aino-plan",
            owner="Organization/org-tyokykytiimi",
            now="2026-10-12T09:15:00+03:00",
        )
        for _ in range(2)
    ]
    assert made[0] == made[1]
    sr, task = made[0]
    assert (sr["id"], task["id"]) == referral.ids_of(IDS, "org-sote-keskus", "LAH20261012-1")
    system = "https://fhir-plan-gateway.example/sid/hl7v2-referral/org-sote-keskus"
    assert sr["identifier"] == [{"system": system, "value": "LAH20261012-1"}]
    assert task["identifier"][1] == {
        "system": "https://fhir-plan-gateway.example/sid/hl7v2-message/org-sote-keskus",
        "value": "PGS002001",
    }
    assert task["focus"] == {"reference": f"ServiceRequest/{sr['id']}"}
    assert task["requester"] == sr["requester"] == {"reference": "Organization/org-sote-keskus"}
    assert task["owner"] == {"reference": "Organization/org-tyokykytiimi"}
    assert (task["status"], task["restriction"]["period"]["end"]) == ("requested", "2026-12-31")
    assert sr["basedOn"] == task["basedOn"] == [{"reference": "CarePlan/aino-plan"}]


def test_another_sender_gets_other_ids() -> None:
    assert referral.ids_of(IDS, "org-a", "LAH-1") != referral.ids_of(IDS, "org-b", "LAH-1")
