"""API tests: token and string parameters with their modifiers, _id and OR/AND."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.gateway.search.conftest import ids, search


def test_token_code_system_and_forms(plans: TestClient) -> None:
    loinc = "http://loinc.org"
    for value in ["LA28865-6", f"{loinc}|LA28865-6", f"{loinc}|"]:
        assert len(ids(search(plans, f"CarePlan?category={value}"))) == 3, value
    assert ids(search(plans, "CarePlan?category=|LA28865-6")) == []  # stored with a system
    assert ids(search(plans, "CarePlan?category=other|LA28865-6")) == []


def test_status_or_and_repeated_and(plans: TestClient) -> None:
    assert ids(search(plans, "CarePlan?status=completed")) == ["CarePlan/cp2"]
    assert len(ids(search(plans, "CarePlan?status=completed,active"))) == 3
    both = search(plans, "CarePlan?status=active&subject=Patient/p1")
    assert ids(both) == ["CarePlan/cp1"]


def test_token_not_and_missing(plans: TestClient) -> None:
    assert ids(search(plans, "CarePlan?status:not=active")) == ["CarePlan/cp2"]
    assert ids(search(plans, "CarePlan?care-team:missing=true")) == ["CarePlan/cp3"]
    assert len(ids(search(plans, "CarePlan?care-team:missing=false"))) == 2


def test_identifier_search(plans: TestClient) -> None:
    found = search(plans, "Patient?identifier=urn:oid:1.2.246.21|010101-923F")
    assert ids(found) == ["Patient/p1"]


def test_id_parameter(plans: TestClient) -> None:
    assert ids(search(plans, "CarePlan?_id=cp2,cp3")) == ["CarePlan/cp2", "CarePlan/cp3"]


def test_string_default_is_case_and_accent_insensitive_prefix(plans: TestClient) -> None:
    assert ids(search(plans, "Patient?name=aino")) == ["Patient/p1"]
    assert ids(search(plans, "Patient?family=VIRT")) == ["Patient/p1"]
    assert ids(search(plans, "Patient?family=irta")) == []


def test_string_exact_and_contains(plans: TestClient) -> None:
    assert ids(search(plans, "Patient?family:exact=Virtanen")) == ["Patient/p1"]
    assert ids(search(plans, "Patient?family:exact=virtanen")) == []
    assert ids(search(plans, "Patient?family:contains=RTAN")) == ["Patient/p1"]


def test_token_text_modifier(client: TestClient) -> None:
    from tests.gateway.search.conftest import put

    concept = {"coding": [{"system": "s", "code": "c", "display": "Työkyky"}], "text": "Ohjaus"}
    put(
        client,
        {"resourceType": "Task", "id": "t", "status": "draft", "intent": "order", "code": concept},
    )
    assert ids(search(client, "Task?code:text=tyokyky")) == ["Task/t"]
    assert ids(search(client, "Task?code:text=ohj")) == ["Task/t"]
    assert ids(search(client, "Task?code:text=muu")) == []
