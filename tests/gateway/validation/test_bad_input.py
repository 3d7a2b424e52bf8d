"""Bad input over HTTP: each a 4xx OperationOutcome naming the path, and nothing stored."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.settings import Settings

JSON = {"Content-Type": "application/fhir+json"}


def _stored(client: TestClient, resource_type: str = "Patient") -> int:
    return client.get(f"/fhir/{resource_type}/_history").json()["total"]


def _expressions(body: dict) -> list[str]:
    assert body["resourceType"] == "OperationOutcome"
    return [e for issue in body["issue"] for e in issue.get("expression", [])]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"resourceType": "Patient",', "body"),  # malformed JSON
        (b'{"resourceType": "Task", "status": "ready", "intent": "order"}', "resourceType"),
        (b'{"resourceType": "Nope"}', "resourceType"),
        (b'{"resourceType": "Patient", "colour": "red"}', "Patient.colour"),
        (b'{"resourceType": "Patient", "birthDate": "1.2.2020"}', "Patient.birthDate"),
        (b'{"resourceType": "Patient", "gender": "bogus"}', "Patient.gender"),
        (b'{"resourceType": "Patient", "active": null}', "Patient.active"),
        (b'{"resourceType": "Patient", "name": {"family": "x"}}', "Patient.name"),
        (b"[" * 200 + b"]" * 200, "body"),  # deeply nested
        (b"<Patient xmlns='http://hl7.org/fhir'>", "body"),  # malformed XML sent as XML
    ],
)
def test_bad_create_is_400_with_path(client: TestClient, raw: bytes, where: str) -> None:
    headers = {"Content-Type": "application/fhir+xml"} if raw.startswith(b"<") else JSON
    r = client.post("/fhir/Patient", content=raw, headers=headers)
    assert r.status_code == 400, r.text
    assert where in _expressions(r.json())
    assert _stored(client) == 0


def test_reference_to_wrong_type_is_400(client: TestClient) -> None:
    plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan"}
    plan["subject"] = {"reference": "Practitioner/1"}
    r = client.post("/fhir/CarePlan", json=plan)
    assert r.status_code == 400
    assert _expressions(r.json()) == ["CarePlan.subject"]
    assert _stored(client, "CarePlan") == 0


def test_all_issues_in_one_outcome(client: TestClient) -> None:
    task = {"resourceType": "Task", "status": "bogus", "intent": "order", "colour": 1}
    task["owner"] = {"reference": "Goal/1"}
    r = client.post("/fhir/Task", json=task)
    assert r.status_code == 400
    assert sorted(_expressions(r.json())) == ["Task.colour", "Task.owner", "Task.status"]


def test_update_ids(client: TestClient) -> None:
    r = client.put("/fhir/Patient/a!b", json={"resourceType": "Patient", "id": "a!b"})
    assert r.status_code == 400 and _expressions(r.json())[0] in ("id", "Patient.id")
    r = client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p2"})
    assert r.status_code == 400 and _expressions(r.json()) == ["Patient.id"]
    assert _stored(client) == 0


def test_body_over_the_limit_is_413(client: TestClient, settings: Settings) -> None:
    settings.max_body_bytes = 1000  # read per request
    body = orjson.dumps({"resourceType": "Patient", "name": [{"text": "x" * 2000}]})
    r = client.post("/fhir/Patient", content=body, headers=JSON)
    assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"
    assert _stored(client) == 0


def test_client_meta_version_and_last_updated_are_ignored(client: TestClient) -> None:
    meta = {"versionId": "99", "lastUpdated": "1999-01-01T00:00:00Z", "tag": [{"code": "t"}]}
    r = client.post("/fhir/Patient", json={"resourceType": "Patient", "meta": meta})
    assert r.status_code == 201
    stored = client.get(f"/fhir/Patient/{r.json()['id']}").json()["meta"]
    assert stored["versionId"] == "1" and stored["lastUpdated"] != meta["lastUpdated"]
    assert stored["tag"] == [{"code": "t"}]
