"""`_elements` and `_summary` views on read, vread and search: mandatory elements (min ≥ 1 in
the R4 StructureDefinitions) stay, the view is tagged SUBSETTED, and storage is untouched."""

from __future__ import annotations

from fastapi.testclient import TestClient

TASK = {
    "resourceType": "Task",
    "id": "t1",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">t</div>'},
    "status": "ready",
    "statusReason": {"text": "waiting for Kela"},  # not a choice of `status`: dropped
    "intent": "order",
    "description": "Selvitä kuntoutusraha (check rehabilitation allowance)",
    "note": [{"text": "not a summary element"}],
}
PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "deceasedBoolean": False,  # choice element deceased[x], a summary element
    "photo": [{"contentType": "image/png"}],  # not a summary element
    "gender": "female",
}


def _tags(resource: dict) -> list[str]:
    return [t["code"] for t in resource["meta"].get("tag", [])]


def test_read_elements_keeps_mandatory_and_listed(client: TestClient) -> None:
    client.put("/fhir/Task/t1", json=TASK)
    res = client.get("/fhir/Task/t1?_elements=note").json()
    assert set(res) == {"resourceType", "id", "meta", "status", "intent", "note"}
    assert _tags(res) == ["SUBSETTED"]
    full = client.get("/fhir/Task/t1").json()  # the stored resource is whole
    assert "statusReason" in full and "SUBSETTED" not in _tags(full)


def test_read_summary_true_uses_is_summary_flags(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=PATIENT)
    res = client.get("/fhir/Patient/p1?_summary=true").json()
    assert res["deceasedBoolean"] is False and res["gender"] == "female"
    assert "photo" not in res and _tags(res) == ["SUBSETTED"]


def test_vread_summary_text_and_bad_mode(client: TestClient) -> None:
    client.put("/fhir/Task/t1", json=TASK)
    res = client.get("/fhir/Task/t1/_history/1?_summary=text").json()
    assert set(res) == {"resourceType", "id", "meta", "text", "status", "intent"}
    bad = client.get("/fhir/Task/t1?_summary=count")
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["_summary"]


def test_search_summary_true(client: TestClient) -> None:
    client.put("/fhir/Task/t1", json=TASK)
    entry = client.get("/fhir/Task?_summary=true").json()["entry"][0]["resource"]
    assert entry["description"].startswith("Selvitä") and "note" not in entry
