"""adapters/hl7v2/builders/merge.py: which HETUs an ADT^A40 names, the two Patients' links, and
re-pointing a resource (pure; the store-side merge is tests/gateway/intake/test_merge.py)."""

from __future__ import annotations

import pytest

from adapters.hl7v2.builders import merge
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import parse

MSH = "MSH|^~\\&|PEGASOS|F|G|H|20250505||ADT^A40^ADT_A39|M1|P|2.5.1\r"
PID = "PID|1||010190-900P^^^&1.2.246.21&ISO^NNFIN\r"  # PID-3: the surviving HETU
MRG = "MRG|4455^^^SATSHP^MR~010190-902S^^^&1.2.246.21&ISO^NNFIN\r"  # MRG-1 rep 2: retired HETU


def test_hetus_are_the_survivor_from_pid_3_and_the_retired_from_mrg_1() -> None:
    assert merge.hetus(parse(MSH + PID + MRG)) == ("010190-900P", "010190-902S")


@pytest.mark.parametrize(
    "body, where",
    [
        (PID, ("missing-segment", "MRG", None)),
        (PID + "MRG|4455^^^SATSHP^MR\r", ("missing-field", "MRG", 1)),  # no HETU in MRG-1
        ("PID|1\r" + MRG, ("missing-field", "PID", 3)),
        (PID + "MRG|010190-900P^^^&1.2.246.21&ISO\r", ("invalid-value", "MRG", 1)),  # same person
    ],
)
def test_a_merge_that_cannot_be_read_names_segment_and_field(body: str, where: tuple) -> None:
    with pytest.raises(Hl7Error) as caught:
        merge.hetus(parse(MSH + body))
    assert (caught.value.code, caught.value.segment, caught.value.field) == where


def test_the_retired_patient_is_inactive_and_replaced_by_the_survivor() -> None:
    source = {"resourceType": "Patient", "id": "s", "meta": {"versionId": "3"}, "active": True}
    retired = merge.retired(source, "Patient/t")
    assert retired["active"] is False
    assert retired["link"] == [{"other": {"reference": "Patient/t"}, "type": "replaced-by"}]
    assert "meta" not in retired and source["active"] is True  # a copy, server meta dropped
    target = merge.surviving({"resourceType": "Patient", "id": "t"}, "Patient/s")
    assert target["link"] == [{"other": {"reference": "Patient/s"}, "type": "replaces"}]
    assert merge.is_merged(retired, target)
    assert not merge.is_merged(source, target)


def test_linking_twice_keeps_one_link() -> None:
    once = merge.retired({"resourceType": "Patient", "id": "s"}, "Patient/t")
    assert merge.retired(once, "Patient/t")["link"] == once["link"]


def test_every_reference_to_the_retired_patient_is_repointed() -> None:
    plan = {
        "resourceType": "CarePlan",
        "id": "p",
        "subject": {"reference": "Patient/s"},
        "activity": [{"detail": {"performer": [{"reference": "Patient/s"}]}}],
        "author": {"reference": "Organization/o"},
        "note": [{"text": "Patient/s"}],  # text, not a Reference: left alone
        "contributor": [{"reference": "http://other.example/fhir/Patient/s"}],
    }
    moved = merge.repointed(plan, "Patient/s", "Patient/t")
    assert moved["subject"] == {"reference": "Patient/t"}
    assert moved["activity"][0]["detail"]["performer"] == [{"reference": "Patient/t"}]
    assert moved["contributor"] == [{"reference": "Patient/t"}]
    assert moved["author"] == {"reference": "Organization/o"}
    assert moved["note"] == [{"text": "Patient/s"}]
    assert plan["subject"] == {"reference": "Patient/s"}  # the input is not changed


def test_history_and_unrelated_resources_are_not_repointed() -> None:
    for kind in ("AuditEvent", "Provenance", "Patient"):
        assert (
            merge.repointed(
                {"resourceType": kind, "x": {"reference": "Patient/s"}}, "Patient/s", "Patient/t"
            )
            is None
        )
    goal = {"resourceType": "Goal", "subject": {"reference": "Patient/other"}}
    assert merge.repointed(goal, "Patient/s", "Patient/t") is None
    # "Patient/s" must match whole: Patient/s2 is someone else
    assert (
        merge.repointed(
            {"resourceType": "Goal", "subject": {"reference": "Patient/s2"}},
            "Patient/s",
            "Patient/t",
        )
        is None
    )
