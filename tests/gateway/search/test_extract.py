"""Unit tests: index rows extracted on write, per parameter type."""

from __future__ import annotations

from gateway.search.dates import MAX_US, date_range
from gateway.search.extract import normalise, split_reference
from gateway.search.indexer import index_rows


def test_normalise_lowercases_and_strips_accents() -> None:
    assert normalise("Äino Müller") == "aino muller"
    assert normalise("ABC") == "abc"


def test_token_rows_from_codeable_concept_identifier_code_and_tag() -> None:
    rows = index_rows(
        {
            "resourceType": "CarePlan",
            "meta": {"tag": [{"system": "s", "code": "t"}]},
            "status": "active",  # code
            "identifier": [{"system": "urn:x", "value": "42"}],  # Identifier
            "category": [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}],
        }
    )
    assert ("status", "", "active") in rows.token
    assert ("identifier", "urn:x", "42") in rows.token
    assert ("category", "http://loinc.org", "LA28865-6") in rows.token
    assert ("_tag", "s", "t") in rows.token


def test_boolean_and_contact_point_tokens() -> None:
    rows = index_rows(
        {
            "resourceType": "Patient",
            "active": True,
            "telecom": [{"system": "email", "value": "a@b.fi"}],
        }
    )
    assert ("active", "", "true") in rows.token
    assert ("email", "email", "a@b.fi") in rows.token


def test_string_rows_keep_normalised_and_exact_name_parts() -> None:
    rows = index_rows({"resourceType": "Patient", "name": [{"family": "Ärrä", "given": ["Eeva"]}]})
    assert ("family", "arra", "Ärrä") in rows.string
    assert ("name", "eeva", "Eeva") in rows.string


def test_reference_rows_relative_absolute_and_typed_where() -> None:
    rows = index_rows(
        {
            "resourceType": "CarePlan",
            "subject": {"reference": "Patient/p1"},
            "basedOn": [{"reference": "http://other.example/fhir/CarePlan/9"}],
        }
    )
    assert ("subject", "Patient", "p1", "") in rows.reference
    assert ("patient", "Patient", "p1", "") in rows.reference
    assert ("based-on", "CarePlan", "9", "http://other.example/fhir/CarePlan/9") in rows.reference


def test_group_subject_is_not_a_patient() -> None:
    rows = index_rows({"resourceType": "CarePlan", "subject": {"reference": "Group/g"}})
    assert [r[0] for r in rows.reference] == ["subject"]


def test_split_reference_forms() -> None:
    assert split_reference("Patient/1/_history/2") == ("Patient", "1", "")
    assert split_reference("urn:uuid:abc") == ("", "", "urn:uuid:abc")


def test_date_rows_from_period_and_open_end() -> None:
    rows = index_rows({"resourceType": "CarePlan", "period": {"start": "2024-01"}})
    assert rows.date == [("date", date_range("2024-01")[0], MAX_US)]


def test_date_rows_from_timing_events() -> None:
    timing = {"event": ["2024-02-03"]}
    rows = index_rows(
        {"resourceType": "CarePlan", "activity": [{"detail": {"scheduledTiming": timing}}]}
    )
    assert ("activity-date", *date_range("2024-02-03")) in rows.date


def test_bad_values_are_skipped_not_raised() -> None:
    rows = index_rows({"resourceType": "CarePlan", "period": {"start": "not a date"}, "status": 7})
    assert rows.date == []


def test_unknown_type_indexes_nothing() -> None:
    assert index_rows({"resourceType": "Nope", "id": "x"}).token == []
