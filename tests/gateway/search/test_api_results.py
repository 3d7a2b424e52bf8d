"""API tests: _sort, _elements, _summary, _total, and lenient vs strict handling."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.gateway.search.conftest import ids, search


def test_sort_by_param_descending_and_multiple_keys(plans: TestClient) -> None:
    by_date = ids(search(plans, "CarePlan?_sort=date"))
    assert by_date == ["CarePlan/cp3", "CarePlan/cp1", "CarePlan/cp2"]
    assert ids(search(plans, "CarePlan?_sort=-_id")) == [
        "CarePlan/cp3",
        "CarePlan/cp2",
        "CarePlan/cp1",
    ]
    two = ids(search(plans, "CarePlan?_sort=status,-date"))
    assert two == ["CarePlan/cp1", "CarePlan/cp3", "CarePlan/cp2"]


def test_elements_keeps_mandatory_and_listed_and_tags_subsetted(plans: TestClient) -> None:
    found = search(plans, "CarePlan?_id=cp1&_elements=CarePlan.intent,category")
    res = found["entry"][0]["resource"]
    # status, intent and subject are 1..1 in CarePlan: kept whether asked for or not.
    assert set(res) - {"category"} == {"resourceType", "id", "meta", "status", "intent", "subject"}
    assert res["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_summary_count_has_total_only(plans: TestClient) -> None:
    found = search(plans, "CarePlan?status=active&_summary=count")
    assert found["total"] == 2
    assert "entry" not in found


def test_summary_data_drops_narrative(client: TestClient) -> None:
    from tests.gateway.search.conftest import put

    text = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}
    basic = {"resourceType": "Basic", "id": "b", "text": text, "code": {"text": "x"}}
    put(client, {**basic, "created": "2026-01-02"})
    data = search(client, "Basic?_summary=data")["entry"][0]["resource"]
    assert "text" not in data and "code" in data and "created" in data
    only_text = search(client, "Basic?_summary=text")["entry"][0]["resource"]
    # text: the narrative plus the mandatory elements (Basic.code is 1..1), nothing else
    assert "text" in only_text and "code" in only_text and "created" not in only_text


def test_total_none_omits_total(plans: TestClient) -> None:
    assert "total" not in search(plans, "CarePlan?_total=none")
    assert search(plans, "CarePlan?_total=accurate")["total"] == 3


def test_unknown_parameter_is_ignored_and_reported(plans: TestClient) -> None:
    found = search(plans, "CarePlan?status=completed&frobnicate=1")
    assert ids(found) == ["CarePlan/cp2"]
    outcome = [e for e in found["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["expression"] == ["frobnicate"]


def test_unknown_parameter_strict_is_400(plans: TestClient) -> None:
    r = plans.get("/fhir/CarePlan?frobnicate=1", headers={"Prefer": "handling=strict"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["frobnicate"]


def test_post_search_with_form_body(plans: TestClient) -> None:
    r = plans.post(
        "/fhir/CarePlan/_search",
        content="status=completed",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert ids(r.json()) == ["CarePlan/cp2"]


def test_conditional_create_uses_search(plans: TestClient) -> None:
    body = {"resourceType": "Patient", "name": [{"family": "X"}]}
    ident = "identifier=urn:oid:1.2.246.21|010101-923F"
    r = plans.post("/fhir/Patient", json=body, headers={"If-None-Exist": ident})
    assert r.status_code == 200 and r.json()["id"] == "p1"
    r = plans.post("/fhir/Patient", json=body, headers={"If-None-Exist": "frobnicate=1"})
    assert r.status_code == 400
