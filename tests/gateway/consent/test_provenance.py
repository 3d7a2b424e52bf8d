"""A write made by a named professional (X-Acting-Practitioner-Role) leaves a Provenance of the
version it wrote, in the write's own transaction; a write without one, or a refused write,
leaves none (issue 3: the acting role is recorded in audit and Provenance)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services

ROLE_HEADER = "X-Acting-Practitioner-Role"


def stored(services: Services, rtype: str) -> list[dict[str, Any]]:
    with services.repo.reader() as session:
        rows = session.query("SELECT body FROM resources WHERE res_type = ?", [rtype])
    return [orjson.loads(bytes(r[0])) for r in rows]


def own_role(client: TestClient) -> str:
    """A PractitionerRole of the client fixture's organisation, to act as."""
    role = {
        "resourceType": "PractitionerRole",
        "active": True,
        "organization": {"reference": "Organization/org-sote-keskus"},
    }
    return str(client.post("/fhir/PractitionerRole", json=role).json()["id"])


def plan(**more: Any) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p-new"},  # a client not stored: a new client
        **more,
    }


def test_writes_by_a_named_professional_leave_provenance(
    client: TestClient, services: Services, as_org: Callable[..., dict[str, str]]
) -> None:
    role = own_role(client)
    client.post("/fhir/CarePlan", json=plan())  # no acting professional: no Provenance
    assert stored(services, "Provenance") == []

    acting = {ROLE_HEADER: f"PractitionerRole/{role}"}
    created = client.post("/fhir/CarePlan", json=plan(), headers=acting)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert (
        client.put(
            f"/fhir/CarePlan/{pid}", json=plan(id=pid, status="revoked"), headers=acting
        ).status_code
        == 200
    )
    assert client.delete(f"/fhir/CarePlan/{pid}", headers=acting).status_code == 204

    provenance = sorted(stored(services, "Provenance"), key=lambda p: p["target"][0]["reference"])
    assert [p["target"][0]["reference"] for p in provenance] == [
        f"CarePlan/{pid}/_history/{n}" for n in (1, 2, 3)
    ]
    assert [p["activity"]["coding"][0]["code"] for p in provenance] == [
        "CREATE",
        "UPDATE",
        "DELETE",
    ]
    for p in provenance:
        assert p["agent"][0]["who"] == {"reference": f"PractitionerRole/{role}"}
        assert p["agent"][0]["onBehalfOf"] == {"reference": "Organization/org-sote-keskus"}
        services.validator.validate_resource(p, p["id"])  # a valid R4 Provenance

    # the organisation sees what it recorded; another organisation does not
    found = client.get(f"/fhir/Provenance?target=CarePlan/{pid}").json()
    assert found["total"] == 3
    assert (
        client.get(f"/fhir/Provenance/{provenance[0]['id']}", headers=as_org("kela")).status_code
        == 404
    )


def test_a_refused_write_leaves_no_provenance(
    client: TestClient, services: Services, as_org: Callable[..., dict[str, str]]
) -> None:
    role = own_role(client)
    acting = {ROLE_HEADER: f"PractitionerRole/{role}"}
    # a Task whose requester is another organisation: refused (own-name rule), nothing stored
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "requester": {"reference": "Organization/org-kela"},
    }
    assert client.post("/fhir/Task", json=task, headers=acting).status_code == 403
    assert stored(services, "Provenance") == [] and stored(services, "Task") == []
