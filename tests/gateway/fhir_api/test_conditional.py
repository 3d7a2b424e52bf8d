"""Conditional create, update and delete over REST (http://hl7.org/fhir/R4/http.html#ccreate,
#cond-update, #cdelete): 0, 1 and several matches, and the body id rule of conditional update."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

HETU = "urn:oid:1.2.246.21"


def patient(value: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": HETU, "value": value}], **fields}


def count(client: TestClient, value: str) -> int:
    r = client.get(f"/fhir/Patient?identifier={HETU}|{value}&_summary=count")
    return r.json()["total"]


def test_conditional_create_zero_one_many(client: TestClient) -> None:
    cond = {"If-None-Exist": f"identifier={HETU}|010190-900P"}
    first = client.post("/fhir/Patient", json=patient("010190-900P"), headers=cond)
    assert first.status_code == 201
    again = client.post("/fhir/Patient", json=patient("010190-900P", gender="male"), headers=cond)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert "gender" not in again.json()  # the existing resource, unchanged
    client.post("/fhir/Patient", json=patient("010190-900P"))  # a second one, unconditionally
    many = client.post("/fhir/Patient", json=patient("010190-900P"), headers=cond)
    assert many.status_code == 412
    assert count(client, "010190-900P") == 2


def test_conditional_update_creates_updates_or_refuses(client: TestClient) -> None:
    url = f"/fhir/Patient?identifier={HETU}|020290-9016"
    created = client.put(url, json=patient("020290-9016"))
    assert created.status_code == 201
    pid = created.json()["id"]
    updated = client.put(url, json=patient("020290-9016", gender="female"))
    assert updated.status_code == 200
    assert updated.json()["id"] == pid and updated.json()["meta"]["versionId"] == "2"
    wrong_id = client.put(url, json={**patient("020290-9016"), "id": "someone-else"})
    assert wrong_id.status_code == 400
    assert wrong_id.json()["issue"][0]["expression"] == ["Patient.id"]
    client.post("/fhir/Patient", json=patient("020290-9016"))
    assert client.put(url, json=patient("020290-9016")).status_code == 412
    assert client.get(f"/fhir/Patient/{pid}").json()["meta"]["versionId"] == "2"


def test_conditional_delete(client: TestClient) -> None:
    url = f"/fhir/Patient?identifier={HETU}|030390-902N"
    assert client.delete(url).status_code == 204  # nothing matched: nothing to do
    pid = client.post("/fhir/Patient", json=patient("030390-902N")).json()["id"]
    assert client.delete(url).status_code == 204
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410
    client.post("/fhir/Patient", json=patient("030390-902N"))
    client.post("/fhir/Patient", json=patient("030390-902N"))
    assert client.delete(url).status_code == 412
    assert count(client, "030390-902N") == 2


def test_conditional_requests_need_criteria(client: TestClient) -> None:
    r = client.put("/fhir/Patient?_format=json", json=patient("040490-9035"))
    assert r.status_code == 400
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 0
