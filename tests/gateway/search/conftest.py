"""Helpers for the search API tests: store small resources with chosen ids, read result ids."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


def put(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    r = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text
    return r.json()


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    """`Type/id` of the entries with the given search mode, in Bundle order."""
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def search(client: TestClient, query: str, **headers: str) -> dict[str, Any]:
    r = client.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def plans(client: TestClient) -> TestClient:
    """Two patients, a care team, three care plans and a task: the network in miniature."""
    put(
        client,
        {
            "resourceType": "Patient",
            "id": "p1",
            "name": [{"family": "Virtanen", "given": ["Äino"]}],
            "identifier": [{"system": "urn:oid:1.2.246.21", "value": "010101-923F"}],
        },
    )
    put(client, {"resourceType": "Patient", "id": "p2", "name": [{"family": "Korhonen"}]})
    put(client, {"resourceType": "Organization", "id": "o1", "name": "Kela"})
    put(
        client,
        {
            "resourceType": "CareTeam",
            "id": "ct1",
            "status": "active",
            "subject": {"reference": "Patient/p1"},
            "participant": [{"member": {"reference": "Organization/o1"}}],
        },
    )
    for n, (patient, status, start) in enumerate(
        [
            ("p1", "active", "2024-01-15"),
            ("p1", "completed", "2024-03-01"),
            ("p2", "active", "2023-06-01"),
        ],
        start=1,
    ):
        put(
            client,
            {
                "resourceType": "CarePlan",
                "id": f"cp{n}",
                "status": status,
                "intent": "plan",
                "subject": {"reference": f"Patient/{patient}"},
                **({"careTeam": [{"reference": "CareTeam/ct1"}]} if patient == "p1" else {}),
                "period": {"start": start, "end": start[:4] + "-12-31"},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}],
            },
        )
    put(
        client,
        {
            "resourceType": "Task",
            "id": "t1",
            "status": "requested",
            "intent": "order",
            "focus": {"reference": "CareTeam/ct1"},
            "for": {"reference": "Patient/p1"},
            "owner": {"reference": "Organization/o1"},
        },
    )
    return client
