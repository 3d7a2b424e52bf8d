"""API tests: stable paging through stored snapshots, and the snapshot cap."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from tests.gateway.search.conftest import ids, put


def _plans(client: TestClient, n: int) -> None:
    for i in range(n):
        put(
            client,
            {
                "resourceType": "CarePlan",
                "id": f"cp{i:02}",
                "status": "active",
                "intent": "plan",
                "subject": {"reference": "Patient/p"},
            },
        )


def _get(client: TestClient, url: str) -> dict:
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "testserver"  # absolute links
    r = client.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 200, r.text
    return r.json()


def _link(bundle: dict, relation: str) -> str | None:
    return next((lk["url"] for lk in bundle["link"] if lk["relation"] == relation), None)


def test_pages_are_stable_when_data_changes(client: TestClient) -> None:
    _plans(client, 5)
    first = client.get("/fhir/CarePlan?_count=2&_sort=_id").json()
    assert first["total"] == 5 and ids(first) == ["CarePlan/cp00", "CarePlan/cp01"]
    assert _link(first, "previous") is None
    # a new plan that would sort first, and a deletion: later pages do not shift
    put(
        client,
        {
            "resourceType": "CarePlan",
            "id": "cp",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p"},
        },
    )
    second = _get(client, _link(first, "next"))
    assert ids(second) == ["CarePlan/cp02", "CarePlan/cp03"]
    third = _get(client, _link(second, "next"))
    assert ids(third) == ["CarePlan/cp04"] and _link(third, "next") is None
    back = _get(client, _link(third, "previous"))
    assert ids(back) == ids(second)


def test_page_links_carry_includes(client: TestClient) -> None:
    put(client, {"resourceType": "CareTeam", "id": "ct", "status": "active"})
    for i in range(3):
        put(
            client,
            {
                "resourceType": "CarePlan",
                "id": f"cp{i}",
                "status": "active",
                "intent": "plan",
                "subject": {"reference": "Patient/p"},
                "careTeam": [{"reference": "CareTeam/ct"}],
            },
        )
    first = client.get("/fhir/CarePlan?_count=2&_include=CarePlan:care-team").json()
    second = _get(client, _link(first, "next"))
    assert len(ids(second)) == 1 and ids(second, "include") == ["CareTeam/ct"]


def test_snapshot_cap_keeps_total_exact_and_refuses_beyond(
    client: TestClient, services: Services
) -> None:
    # The trusted path (no caller); a caller's total past the cap is absent, see
    # test_disclosure.py::test_total_is_absent_past_the_snapshot_cap.
    services.settings.require_auth = False
    services.settings.max_snapshot_keys = 3
    _plans(client, 5)
    first = client.get("/fhir/CarePlan?_count=2").json()
    assert first["total"] == 5
    second = _get(client, _link(first, "next"))
    beyond = urlsplit(_link(second, "next"))
    r = client.get(f"{beyond.path}?{beyond.query}")
    assert r.status_code == 400 and "Narrow the search" in r.text


def test_unknown_snapshot_is_400(client: TestClient) -> None:
    r = client.get("/fhir/CarePlan?_getpages=nope&_getpagesoffset=0")
    assert r.status_code == 400


def test_search_in_a_writer_session_stores_its_snapshot(
    client: TestClient, services: Services
) -> None:
    from gateway.fhir_api.context import FhirRequest

    services.settings.require_auth = False  # the in-process request below has no caller
    _plans(client, 3)
    req = FhirRequest("GET", "http://testserver/fhir", "CarePlan", params=[("_count", "2")])
    with services.repo.writer() as session:  # as a batch/transaction GET entry would
        bundle = services.search.search_in(services, session, req).body
    assert isinstance(bundle, dict) and bundle["total"] == 3
    assert len(ids(_get(client, _link(bundle, "next")))) == 1
