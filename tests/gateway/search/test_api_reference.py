"""API tests: reference parameters, chains, reverse chains (_has), _include and _revinclude."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.consent.vocabulary import V3_PARTICIPATION
from gateway.settings import Settings
from tests.gateway.search.conftest import ids, put, search


def test_reference_forms(plans: TestClient) -> None:
    expected = ["CarePlan/cp1", "CarePlan/cp2"]
    for value in ["p1", "Patient/p1", "http://testserver/fhir/Patient/p1"]:
        assert ids(search(plans, f"CarePlan?patient={value}")) == expected, value
    assert ids(search(plans, "CarePlan?subject:Patient=p1")) == expected
    assert ids(search(plans, "CarePlan?subject:Group=p1")) == []


def test_foreign_absolute_reference_matches_only_its_url(client: TestClient) -> None:
    other = "http://other.example/fhir/Patient/p1"
    put(
        client,
        {
            "resourceType": "Task",
            "id": "t",
            "status": "draft",
            "intent": "order",
            "for": {"reference": other},
        },
    )
    assert ids(search(client, f"Task?patient={other}")) == ["Task/t"]
    assert ids(search(client, "Task?patient=Patient/p1")) == []


def test_task_owner_focus_and_care_team_participant(plans: TestClient) -> None:
    assert ids(search(plans, "Task?owner=Organization/o1")) == ["Task/t1"]
    assert ids(search(plans, "Task?focus=CareTeam/ct1")) == ["Task/t1"]
    assert ids(search(plans, "CareTeam?participant=Organization/o1")) == ["CareTeam/ct1"]


def test_chained_parameters(plans: TestClient) -> None:
    expected = ["CarePlan/cp1", "CarePlan/cp2"]
    ident = "urn:oid:1.2.246.21|010101-923F"
    assert ids(search(plans, f"CarePlan?subject.identifier={ident}")) == expected
    assert ids(search(plans, "CarePlan?subject:Patient.name=aino")) == expected
    # two levels: plans whose care team has a participant named Kela
    assert ids(search(plans, "CarePlan?care-team.participant:Organization.name=kela")) == expected
    assert ids(search(plans, "CarePlan?subject.name=nobody")) == []


def test_reverse_chain_and_nested_has(plans: TestClient) -> None:
    assert ids(search(plans, "CareTeam?_has:Task:focus:status=requested")) == ["CareTeam/ct1"]
    assert ids(search(plans, "CareTeam?_has:Task:focus:status=completed")) == []
    nested = "Patient?_has:CarePlan:patient:_has:Task:focus:status=requested"
    assert ids(search(plans, nested)) == []  # Tasks focus the CareTeam, not plans
    nested = "Patient?_has:CareTeam:patient:_has:Task:focus:status=requested"
    assert ids(search(plans, nested)) == ["Patient/p1"]


def test_include_and_revinclude(plans: TestClient) -> None:
    found = search(plans, "CarePlan?patient=p1&_include=CarePlan:care-team")
    assert ids(found) == ["CarePlan/cp1", "CarePlan/cp2"]
    assert ids(found, "include") == ["CareTeam/ct1"]
    assert found["total"] == 2  # includes are not counted
    rev = search(plans, "CareTeam?_revinclude=Task:focus")
    assert ids(rev, "include") == ["Task/t1"]


def test_include_star_target_type_and_iterate(plans: TestClient) -> None:
    star = search(plans, "CarePlan?_id=cp1&_include=*")
    assert ids(star, "include") == ["CareTeam/ct1", "Patient/p1"]
    typed = search(plans, "CarePlan?_id=cp1&_include=CarePlan:subject:Group")
    assert ids(typed, "include") == []
    once = search(
        plans, "CarePlan?_id=cp1&_include=CarePlan:care-team&_include=CareTeam:participant"
    )
    assert ids(once, "include") == ["CareTeam/ct1"]
    iterated = "CarePlan?_id=cp1&_include=CarePlan:care-team&_include:iterate=CareTeam:participant"
    assert ids(search(plans, iterated), "include") == ["CareTeam/ct1", "Organization/o1"]


def test_entries_have_absolute_full_urls(plans: TestClient) -> None:
    entry = search(plans, "CarePlan?_id=cp1")["entry"][0]
    assert entry["fullUrl"] == "http://testserver/fhir/CarePlan/cp1"
    assert entry["resource"]["id"] == "cp1"


def test_deleted_resources_are_not_found(plans: TestClient) -> None:
    assert plans.delete("/fhir/CarePlan/cp1").status_code == 204
    assert ids(search(plans, "CarePlan?patient=p1")) == ["CarePlan/cp2"]
    assert ids(search(plans, "CareTeam?_revinclude=CarePlan:care-team"), "include") == [
        "CarePlan/cp2"
    ]


def test_consent_parameters(client: TestClient, settings: Settings) -> None:
    # The search parameters of Consent, not the consent rules (tests/gateway/consent): the
    # trusted in-process mode stores and finds Consents of any organisation.
    settings.require_auth = False
    put(
        client,
        {
            "resourceType": "Consent",
            "id": "c1",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/p1"},
            "organization": [{"reference": "Organization/o1"}],
            "policyRule": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
                ]
            },
            "provision": {
                "type": "permit",
                "period": {"start": "2024-01-01", "end": "2024-12-31"},
                "actor": [
                    {
                        "role": {"coding": [{"system": V3_PARTICIPATION, "code": "IRCP"}]},
                        "reference": {"reference": "Organization/o2"},
                    }
                ],
                "purpose": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": "CAREMGT",
                    }
                ],
            },
        },
    )
    for query in [
        "patient=p1",
        "organization=o1",
        "actor=Organization/o2",
        "period=2024",
        "period=ge2024-06",
    ]:
        assert ids(search(client, f"Consent?{query}")) == ["Consent/c1"], query
    assert ids(search(client, "Consent?period=2025")) == []


def test_include_does_not_follow_references_to_other_servers(client: TestClient) -> None:
    put(client, {"resourceType": "Patient", "id": "p1"})
    put(
        client,
        {
            "resourceType": "CarePlan",
            "id": "cp",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "http://other.example/fhir/Patient/p1"},
        },
    )
    found = search(client, "CarePlan?_include=CarePlan:subject")
    assert ids(found) == ["CarePlan/cp"] and ids(found, "include") == []
