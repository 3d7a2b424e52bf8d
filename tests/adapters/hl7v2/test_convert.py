"""adapters/hl7v2/convert.py, builders/patient.py and mappings/hl7v2/: ADT^A04/A08 -> a
transaction Bundle with one conditionally updated Patient."""

from __future__ import annotations

import copy

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.conceptmap import ConceptMap
from fhir.resources.R4B.patient import Patient

from adapters.hl7v2.builders import translate
from adapters.hl7v2.convert import INTERACTIONS, to_bundle
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import parse
from adapters.ids import EXAMPLE_KEY, Ids
from mappings import ROOT, hl7v2_event, load
from tests.adapters.hl7v2.samples import load as sample

HETU = "urn:oid:1.2.246.21"
IDS = Ids(EXAMPLE_KEY)
PID_A04 = "PID|1||010190-900P^^^&1.2.246.21&ISO^NNFIN"  # PID-3: HETU, assigning authority CX-4.2
MSH = "MSH|^~\\&|PEGASOS|SATSHP|PLAN_GATEWAY|TYK|20250314093000||ADT^A04^ADT_A01|C1|P|2.5.1\r"


def _patient(er7: str) -> dict:
    (entry,) = to_bundle(parse(er7), IDS)["entry"]
    return entry["resource"]


def test_a04_sample_maps_to_the_expected_patient() -> None:
    bundle = to_bundle(parse(sample("adt_a04")), IDS)
    (entry,) = bundle["entry"]
    patient = entry["resource"]
    assert patient == {
        "resourceType": "Patient",
        "id": IDS.personal(HETU, "010190-900P"),
        # PID-3 rep 1 (assigning authority 1.2.246.21); rep 2, the MR number, is not read
        "identifier": [{"use": "official", "system": HETU, "value": "010190-900P"}],
        # PID-5 Virtanen^Aino^Maria^^^^L: XPN-7 L -> official
        "name": [{"use": "official", "family": "Virtanen", "given": ["Aino", "Maria"]}],
        # PID-13 rep 1 ^PRN^CP (lossy: mobile not kept), rep 2 ^NET^Internet^<email in XTN-4>
        "telecom": [
            {"system": "phone", "value": "+358401234567", "use": "home"},
            {"system": "email", "value": "aino.virtanen@example.fi"},
        ],
        "gender": "female",  # PID-8 F
        "birthDate": "1990-01-01",  # PID-7 19900101
        # PID-11 Koulukatu 5 B 12^^Pori^^28100^FIN^H
        "address": [
            {
                "use": "home",
                "line": ["Koulukatu 5 B 12"],
                "city": "Pori",
                "postalCode": "28100",
                "country": "FIN",
            }
        ],
    }
    assert entry["fullUrl"] == f"urn:uuid:{patient['id']}"
    assert entry["request"] == {"method": "PUT", "url": f"Patient?identifier={HETU}|010190-900P"}
    Patient.model_validate(patient)
    Bundle.model_validate(bundle)


def test_a08_sample_maps_to_the_expected_patient() -> None:
    patient = _patient(sample("adt_a08"))
    assert patient["identifier"][0]["value"] == "150575-912F"
    assert patient["gender"] == "male"  # PID-8 M
    assert patient["birthDate"] == "1975-05-15"
    # PID-11.1 "Satamakatu 3 \T\ 5" (escaped &) and PID-11.2 other designation as a second line
    assert patient["address"][0]["line"] == ["Satamakatu 3 & 5", "c/o Mäkelä"]
    assert patient["telecom"] == [{"system": "phone", "value": "+358501112233", "use": "home"}]
    Patient.model_validate(patient)


def test_ids_are_deterministic_and_do_not_contain_the_hetu() -> None:
    a04, a08_same_person = (
        _patient(MSH + PID_A04),
        _patient(MSH.replace("A04", "A08") + PID_A04 + "||Uusi^Nimi"),
    )
    assert a04["id"] == a08_same_person["id"] == IDS.personal(HETU, "010190-900P")
    assert "010190" not in a04["id"] and "900P" not in a04["id"]
    assert _patient(MSH + "PID|1||150575-912F^^^&1.2.246.21&ISO")["id"] != a04["id"]


@pytest.mark.parametrize("name", ["adt_a04", "adt_a08"])
def test_the_same_message_twice_gives_the_same_bundle(name: str) -> None:
    assert to_bundle(parse(sample(name)), IDS) == to_bundle(parse(sample(name)), IDS)


def test_the_conditional_url_percent_encodes_the_hetu() -> None:
    (entry,) = to_bundle(parse(MSH + "PID|1||010180+900P^^^&1.2.246.21&ISO"), IDS)["entry"]
    assert entry["request"]["url"] == f"Patient?identifier={HETU}|010180%2B900P"


@pytest.mark.parametrize(
    "pid",
    [
        "PID|1||4455667^^^SATSHP^MR",  # an identifier, but not assigned by 1.2.246.21
        "PID|1||^^^&1.2.246.21&ISO",  # the HETU authority with an empty value
        "PID|1",
    ],
)
def test_a_missing_hetu_is_a_missing_field_at_pid_3(pid: str) -> None:
    with pytest.raises(Hl7Error) as caught:
        to_bundle(parse(MSH + "EVN|A04\r" + pid), IDS)
    error = caught.value
    assert (error.code, error.segment, error.field, error.sequence) == (
        "missing-field",
        "PID",
        3,
        3,
    )


def test_a_missing_pid_is_a_missing_segment() -> None:
    with pytest.raises(Hl7Error) as caught:
        to_bundle(parse(MSH + "EVN|A04"), IDS)
    assert (caught.value.code, caught.value.segment) == ("missing-segment", "PID")


@pytest.mark.parametrize(
    "ts, expected", [("1990", "1990"), ("199002", "1990-02"), ("19900228120000", "1990-02-28")]
)
def test_birth_date_keeps_the_precision_given(ts: str, expected: str) -> None:
    assert _patient(f"{MSH}{PID_A04}||||{ts}")["birthDate"] == expected  # PID-7


@pytest.mark.parametrize("ts", ["19900231", "1990x", "abc"])
def test_a_birth_date_that_is_no_date_is_invalid_value(ts: str) -> None:
    with pytest.raises(Hl7Error) as caught:
        _patient(f"{MSH}{PID_A04}||||{ts}")
    assert (caught.value.code, caught.value.field) == ("invalid-value", 7)


def test_an_unknown_sex_code_defaults_to_unknown_and_an_empty_one_gives_no_gender() -> None:
    assert _patient(f"{MSH}{PID_A04}|||||Z")["gender"] == "unknown"  # PID-8 Z: unmapped default
    assert "gender" not in _patient(MSH + PID_A04)


@pytest.mark.parametrize("message", ["adt_a40", "ref_i12"])
def test_an_event_without_a_mapping_is_unsupported(message: str) -> None:
    with pytest.raises(Hl7Error) as caught:
        to_bundle(parse(sample(message)), IDS)
    error = caught.value
    assert (error.code, error.segment, error.field) == ("unsupported-event", "MSH", 9)


@pytest.mark.parametrize("event", ["../ADT^A04", "ADT^A04/..", "adt^a04", "", "ADT_A04"])
def test_an_event_that_is_no_event_name_never_reaches_the_file_system(event: str) -> None:
    assert hl7v2_event(event) is None


@pytest.mark.parametrize("event", ["ADT^A04", "ADT^A08"])
def test_mapping_files_name_known_builders_and_interactions(event: str) -> None:
    mapping = hl7v2_event(event)
    assert mapping["event"] == event
    assert mapping["interaction"] in INTERACTIONS
    assert [b["resource"] for b in mapping["builders"]] == ["Patient"]


CONCEPT_MAPS = sorted(p.stem for p in (ROOT / "hl7v2" / "codes").glob("*.json"))


@pytest.mark.parametrize("name", CONCEPT_MAPS)
def test_code_maps_are_valid_concept_maps_that_say_what_is_lossy(name: str) -> None:
    concept_map = load(f"hl7v2/codes/{name}.json")
    ConceptMap.model_validate(concept_map)
    assert concept_map["id"] == name
    for element in concept_map["group"][0]["element"]:
        for target in element["target"]:
            lossy = target["equivalence"] not in ("equal", "equivalent")
            assert lossy == ("lossy" in target.get("comment", "")) or name.startswith("hl7v2-")


def test_sex_round_trips_except_the_codes_stated_as_lossy() -> None:
    forward = load("hl7v2/codes/v2-0001-to-administrative-gender.json")["group"][0]
    lossy = {e["code"] for e in forward["element"] if "lossy" in e["target"][0].get("comment", "")}
    back = {
        code: translate(
            "administrative-gender-to-v2-0001",
            translate("v2-0001-to-administrative-gender", code),
        )
        for code in (e["code"] for e in forward["element"])
    }
    assert {code for code, returned in back.items() if returned != code} == lossy == {"A", "N"}
    reverse = load("hl7v2/codes/administrative-gender-to-v2-0001.json")["group"][0]
    for element in reverse["element"]:  # FHIR -> v2 -> FHIR is exact
        v2 = translate("administrative-gender-to-v2-0001", element["code"])
        assert translate("v2-0001-to-administrative-gender", v2) == element["code"]


def test_mapping_data_is_not_changed_by_a_conversion() -> None:
    before = copy.deepcopy(hl7v2_event("ADT^A04"))
    to_bundle(parse(sample("adt_a04")), IDS)
    assert hl7v2_event("ADT^A04") == before
