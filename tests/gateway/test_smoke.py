"""Smoke: the basic REST cycle on both stores."""

from fastapi.testclient import TestClient


def test_create_read_update_delete_cycle(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert r.status_code == 201
    pid = r.json()["id"]
    assert r.headers["etag"] == 'W/"1"'
    assert client.get(f"/fhir/Patient/{pid}").json()["gender"] == "female"
    r = client.put(
        f"/fhir/Patient/{pid}",
        json={"resourceType": "Patient", "id": pid, "gender": "male"},
        headers={"If-Match": 'W/"1"'},
    )
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410
    assert client.get(f"/fhir/Patient/{pid}/_history/2").json()["gender"] == "male"
