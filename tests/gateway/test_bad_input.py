"""The front door under bad input: every case is a 4xx OperationOutcome (never a 500), names the
path of the problem where there is one, and stores nothing (the system history total is
unchanged). Validation rules themselves are covered in tests/gateway/validation/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.settings import Settings

JSON = {"Content-Type": "application/fhir+json"}
PATCH = {"Content-Type": "application/json-patch+json"}
LIMIT = 4096


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A small body limit so the 413 cases need only a few kilobytes.
    return Settings(database_url=database_url, max_body_bytes=LIMIT)


def _total(client: TestClient) -> int:
    r = client.get("/fhir/_history", params={"_count": "1"})
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def _outcome(r: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
    """The OperationOutcome of a failed response with one of the expected statuses."""
    expected = (status,) if isinstance(status, int) else status
    assert r.status_code in expected, (r.status_code, r.text)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(i["severity"] in ("error", "fatal") for i in body["issue"])
    return body


def _expressions(outcome: dict[str, Any]) -> list[str]:
    return [e for issue in outcome["issue"] for e in issue.get("expression", [])]


@pytest.fixture
def patient_id(client: TestClient) -> Iterator[str]:
    """An existing Patient (version 1) for the update and patch cases."""
    r = client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert r.status_code == 201
    yield r.json()["id"]


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "urn:leaf", "valueString": "x"}
    for _ in range(depth):
        node = {"url": "urn:level", "extension": [node]}
    return {"resourceType": "Patient", "extension": [node]}


CREATE_CASES = {
    "malformed JSON": (b'{"resourceType": "Patient",', JSON, 400, "body"),
    "not UTF-8": (b'{"resourceType": "Patient", "gender": "\xff"}', JSON, 400, "body"),
    "JSON but not an object": (b'["Patient"]', JSON, 400, "Patient"),
    "resourceType differs from URL": (
        b'{"resourceType": "Organization", "name": "x"}',
        JSON,
        400,
        "resourceType",
    ),
    "unknown resourceType in body": (b'{"resourceType": "Spaceship"}', JSON, 400, "resourceType"),
    "no resourceType in body": (b'{"gender": "male"}', JSON, 400, "resourceType"),
    "unknown element": (
        b'{"resourceType": "Patient", "shoeSize": 44}',
        JSON,
        400,
        "Patient.shoeSize",
    ),
    "deeply nested object": (orjson.dumps(_nested(100)), JSON, 400, "body"),
    "pathologically nested array": (b"[" * 2000 + b"]" * 2000, JSON, 400, "body"),
    "malformed XML": (
        b"<Patient xmlns='http://hl7.org/fhir'><gender",
        {"Content-Type": "application/fhir+xml"},
        400,
        None,
    ),
    "empty body": (b"", JSON, 400, None),
}


@pytest.mark.parametrize("case", list(CREATE_CASES))
def test_bad_create_is_a_4xx_outcome_and_stores_nothing(client: TestClient, case: str) -> None:
    raw, headers, status, where = CREATE_CASES[case]
    before = _total(client)
    outcome = _outcome(client.post("/fhir/Patient", content=raw, headers=headers), status)
    if where is not None:
        assert where in _expressions(outcome), outcome
    assert _total(client) == before


def test_unsupported_media_type_is_415(client: TestClient) -> None:
    before = _total(client)
    r = client.post(
        "/fhir/Patient",
        content=b"resourceType,gender\nPatient,male",
        headers={"Content-Type": "text/csv"},
    )
    _outcome(r, 415)
    assert _total(client) == before


def test_unknown_resource_type_in_url_is_404(client: TestClient) -> None:
    before = _total(client)
    _outcome(client.post("/fhir/Spaceship", json={"resourceType": "Spaceship"}), 404)
    _outcome(client.get("/fhir/Spaceship/1"), 404)
    _outcome(client.get("/fhir/Spaceship", params={"name": "x"}), 404)
    assert _total(client) == before


@pytest.mark.parametrize("bad_id", ["has$dollar", "a" * 65, "under_score", "sp%20ace"])
def test_bad_id_in_url_is_400(client: TestClient, bad_id: str) -> None:
    before = _total(client)
    read = _outcome(client.get(f"/fhir/Patient/{bad_id}"), 400)
    assert _expressions(read)
    body = {"resourceType": "Patient", "id": bad_id}
    put = _outcome(client.put(f"/fhir/Patient/{bad_id}", json=body), 400)
    assert any("id" in e for e in _expressions(put)), put
    assert _total(client) == before


def test_update_id_problems_name_the_id(client: TestClient, patient_id: str) -> None:
    before = _total(client)
    mismatch = {"resourceType": "Patient", "id": "someone-else", "gender": "male"}
    r = client.put(f"/fhir/Patient/{patient_id}", json=mismatch)
    assert _expressions(_outcome(r, 400)) == ["Patient.id"]
    missing = {"resourceType": "Patient", "gender": "male"}
    r = client.put(f"/fhir/Patient/{patient_id}", json=missing)
    assert _expressions(_outcome(r, 400)) == ["Patient.id"]
    assert _total(client) == before
    assert client.get(f"/fhir/Patient/{patient_id}").json()["gender"] == "female"


def test_body_over_the_limit_is_413_declared_or_streamed(client: TestClient) -> None:
    before = _total(client)
    big = orjson.dumps({"resourceType": "Patient", "name": [{"text": "x" * (LIMIT + 10)}]})
    _outcome(client.post("/fhir/Patient", content=big, headers=JSON), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    _outcome(client.post("/fhir/Patient", content=chunks(), headers=JSON), 413)
    _outcome(client.put("/fhir/Patient/big", content=big, headers=JSON), 413)
    assert _total(client) == before
    # Just under the limit is fine.
    ok = orjson.dumps({"resourceType": "Patient", "name": [{"text": "x" * (LIMIT - 200)}]})
    assert client.post("/fhir/Patient", content=ok, headers=JSON).status_code == 201


PATCH_CASES = {
    "not JSON": (b"[{", 400),
    "not an array": (b'{"op": "replace", "path": "/gender", "value": "male"}', 400),
    "unknown op": (b'[{"op": "frobnicate", "path": "/gender"}]', (400, 422)),
    "missing path": (b'[{"op": "remove"}]', (400, 422)),
    "path not there": (b'[{"op": "remove", "path": "/birthDate"}]', (400, 422)),
    "failed test op": (b'[{"op": "test", "path": "/gender", "value": "male"}]', (409, 412, 422)),
    "leaves an invalid resource": (b'[{"op": "replace", "path": "/gender", "value": 12}]', 400),
    "adds an unknown element": (b'[{"op": "add", "path": "/shoeSize", "value": 44}]', 400),
    "changes the resourceType": (
        b'[{"op": "replace", "path": "/resourceType", "value": "Task"}]',
        400,
    ),
    "removes the id": (b'[{"op": "remove", "path": "/id"}]', 400),
}


@pytest.mark.parametrize("case", list(PATCH_CASES))
def test_invalid_json_patch_changes_nothing(client: TestClient, patient_id: str, case: str) -> None:
    raw, status = PATCH_CASES[case]
    before = _total(client)
    _outcome(client.patch(f"/fhir/Patient/{patient_id}", content=raw, headers=PATCH), status)
    assert _total(client) == before
    current = client.get(f"/fhir/Patient/{patient_id}")
    assert current.json()["meta"]["versionId"] == "1" and current.json()["gender"] == "female"


def test_patch_results_are_validated_with_paths(client: TestClient, patient_id: str) -> None:
    raw = b'[{"op": "add", "path": "/shoeSize", "value": 44}]'
    r = client.patch(f"/fhir/Patient/{patient_id}", content=raw, headers=PATCH)
    assert "Patient.shoeSize" in _expressions(_outcome(r, 400))


def test_client_meta_version_and_last_updated_are_ignored(client: TestClient) -> None:
    meta = {"versionId": "42", "lastUpdated": "1999-12-31T23:59:59Z", "source": "urn:client"}
    created = client.post("/fhir/Patient", json={"resourceType": "Patient", "meta": meta})
    assert created.status_code == 201
    assert created.json()["meta"]["versionId"] == "1"
    assert created.json()["meta"]["lastUpdated"] != meta["lastUpdated"]
    assert created.json()["meta"]["source"] == "urn:client"
    pid = created.json()["id"]
    body = {
        "resourceType": "Patient",
        "id": pid,
        "gender": "male",
        "meta": {**meta, "versionId": "7"},
    }
    updated = client.put(f"/fhir/Patient/{pid}", json=body)
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    assert updated.headers["etag"] == 'W/"2"'
    assert client.get(f"/fhir/Patient/{pid}/_history/7").status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/fhir/_history", {"_count": "many"}, "_count"),
        ("/fhir/Patient/_history", {"_count": "-1"}, "_count"),
        ("/fhir/_history", {"_since": "yesterday"}, "_since"),
        ("/fhir/Patient/_history", {"_since": "2024-13-45"}, "_since"),
        ("/fhir/Patient", {"_count": "ten"}, "_count"),
        ("/fhir/Patient", {"birthdate": "not-a-date"}, "birthdate"),
        ("/fhir/Patient", {"_lastUpdated": "gt2024-99"}, "_lastUpdated"),
    ],
)
def test_invalid_parameter_values_are_400_naming_the_parameter(
    client: TestClient, path: str, params: dict[str, str], name: str
) -> None:
    outcome = _outcome(client.get(path, params=params), 400)
    assert any(name in e for e in _expressions(outcome)), outcome


def test_bad_version_id_and_if_match(client: TestClient, patient_id: str) -> None:
    _outcome(client.get(f"/fhir/Patient/{patient_id}/_history/one"), 400)
    before = _total(client)
    body = {"resourceType": "Patient", "id": patient_id, "gender": "male"}
    r = client.put(f"/fhir/Patient/{patient_id}", json=body, headers={"If-Match": "yesterday"})
    assert _expressions(_outcome(r, 400)) == ["If-Match"]
    r = client.put(f"/fhir/Patient/{patient_id}", json=body, headers={"If-Match": 'W/"9"'})
    _outcome(r, 412)
    assert _total(client) == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PATCH", "/fhir/Patient", 405),
        ("GET", "/fhir", 405),
        ("DELETE", "/fhir", 405),
        ("POST", "/fhir/Patient/x/_history/1", 405),
        ("PUT", "/fhir/Patient/x/_history", 405),
        ("POST", "/fhir/metadata", 405),
        ("DELETE", "/fhir/metadata", 405),
    ],
)
def test_wrong_http_method_is_405(
    client: TestClient, method: str, path: str, status: int | tuple[int, ...]
) -> None:
    before = _total(client)
    r = client.request(method, path, content=b'{"resourceType": "Patient"}', headers=JSON)
    _outcome(r, status)
    assert _total(client) == before


def test_unknown_resource_type_inside_a_transaction_stores_nothing(client: TestClient) -> None:
    before = _total(client)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b6f2e2c-1d7e-4f52-9d0c-4f2f3c9d8a01",
                "resource": {"resourceType": "Patient", "gender": "male"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:0b6f2e2c-1d7e-4f52-9d0c-4f2f3c9d8a02",
                "resource": {"resourceType": "Spaceship"},
                "request": {"method": "POST", "url": "Spaceship"},
            },
        ],
    }
    outcome = _outcome(client.post("/fhir", json=bundle), (400, 404, 422))
    assert any(e.startswith("Bundle.entry[1]") for e in _expressions(outcome)), outcome
    assert _total(client) == before
