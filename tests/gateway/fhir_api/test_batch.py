"""batch Bundles (http://hl7.org/fhir/R4/http.html#transaction): every entry on its own, a
failure answered in that entry only, the response in request order."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def post_batch(client: TestClient, entries: list[Any]) -> Any:
    return client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries})


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **fields}


def statuses(response: Any) -> list[str]:
    return [e["response"]["status"] for e in response.json()["entry"]]


def diagnostics(entry: dict[str, Any]) -> str:
    return entry["response"]["outcome"]["issue"][0]["diagnostics"]


def test_one_failing_entry_leaves_the_others_done(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1"))
    entries = [
        {"resource": patient(gender="male"), "request": {"method": "POST", "url": "Patient"}},
        {  # fails: the current version is W/"1"
            "resource": patient(id="p1", gender="female"),
            "request": {"method": "PUT", "url": "Patient/p1", "ifMatch": 'W/"7"'},
        },
        {"request": {"method": "GET", "url": "Patient/missing"}},  # fails: 404
        {  # fails validation: unknown element
            "resource": patient(bogus=1),
            "request": {"method": "POST", "url": "Patient"},
        },
        {"resource": patient(id="p2"), "request": {"method": "PUT", "url": "Patient/p2"}},
    ]
    r = post_batch(client, entries)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "batch-response"
    assert statuses(r) == [
        "201 Created",
        "412 Precondition Failed",
        "404 Not Found",
        "400 Bad Request",
        "201 Created",
    ]
    out = r.json()["entry"]
    assert "Bundle.entry[1]" in diagnostics(out[1])
    assert (
        "Bundle.entry[3].resource.bogus" in out[3]["response"]["outcome"]["issue"][0]["expression"]
    )
    assert client.get("/fhir/Patient/p1").json()["meta"]["versionId"] == "1"
    assert client.get("/fhir/Patient/p2").status_code == 200
    assert client.get("/fhir/Patient/_history").json()["total"] == 3


def test_reads_and_vreads_in_a_batch(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1", gender="female"))
    client.put("/fhir/Patient/p1", json=patient(id="p1", gender="male"))
    entries = [
        {"request": {"method": "GET", "url": "Patient/p1/_history/1"}},
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient/p1", "ifNoneMatch": 'W/"2"'}},
    ]
    r = post_batch(client, entries)
    assert statuses(r) == ["200 OK", "200 OK", "304 Not Modified"]
    assert r.json()["entry"][0]["resource"]["gender"] == "female"
    assert r.json()["entry"][1]["resource"]["gender"] == "male"
    assert r.json()["entry"][1]["response"]["etag"] == 'W/"2"'


def test_batch_entries_cannot_refer_to_each_other(client: TestClient) -> None:
    urn = "urn:uuid:0b6d2f40-0000-4000-8000-000000000001"
    entries = [
        {"fullUrl": urn, "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": {"reference": urn},
            },
            "request": {"method": "POST", "url": "CarePlan"},
        },
    ]
    r = post_batch(client, entries)
    assert statuses(r) == ["201 Created", "400 Bad Request"]
    issue = r.json()["entry"][1]["response"]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.subject.reference"]


def test_a_malformed_entry_fails_alone(client: TestClient) -> None:
    entries = [
        "not an object",
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
    ]
    r = post_batch(client, entries)
    assert statuses(r) == ["400 Bad Request", "201 Created"]


def test_delete_in_a_batch(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1"))
    r = post_batch(client, [{"request": {"method": "DELETE", "url": "Patient/p1"}}])
    assert statuses(r) == ["204 No Content"]
    assert client.get("/fhir/Patient/p1").status_code == 410


# -- search-dependent (gateway.search: search_in, match_keys) -----------------------------------
def test_search_entries_return_a_searchset(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1", gender="female"))
    client.put("/fhir/Patient/p2", json=patient(id="p2", gender="male"))
    r = post_batch(client, [{"request": {"method": "GET", "url": "Patient?gender=female"}}])
    assert statuses(r) == ["200 OK"]
    bundle = r.json()["entry"][0]["resource"]
    assert bundle["type"] == "searchset"
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["p1"]


def test_conditional_create_in_a_batch(client: TestClient) -> None:
    identifier = [{"system": "urn:oid:1.2.246.21", "value": "050505-955B"}]
    entry = {
        "resource": patient(identifier=identifier),
        "request": {
            "method": "POST",
            "url": "Patient",
            "ifNoneExist": "identifier=urn:oid:1.2.246.21|050505-955B",
        },
    }
    r = post_batch(client, [entry, entry])
    assert statuses(r) == ["201 Created", "200 OK"]


def test_a_paged_search_entry_links_to_its_next_page(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1"))
    client.put("/fhir/Patient/p2", json=patient(id="p2"))
    r = post_batch(client, [{"request": {"method": "GET", "url": "Patient?_count=1"}}])
    bundle = r.json()["entry"][0]["resource"]
    assert len(bundle["entry"]) == 1 and bundle["total"] == 2
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert client.get(next_url).json()["entry"][0]["resource"]["id"] in ("p1", "p2")


def test_odd_version_ids_fail_their_entry_only(client: TestClient) -> None:
    """'²' passes str.isdigit but not int(); a 30-digit version overflows the database."""
    client.put("/fhir/Patient/p1", json=patient(id="p1"))
    entries = [
        {"request": {"method": "GET", "url": "Patient/p1/_history/²"}},
        {"request": {"method": "GET", "url": "Patient/p1/_history/" + "9" * 30}},
        {"request": {"method": "GET", "url": "Patient/p1/_history/1"}},
    ]
    r = post_batch(client, entries)
    assert r.status_code == 200
    assert statuses(r) == ["400 Bad Request", "404 Not Found", "200 OK"]
