"""The imported bundle through the gateway's own transaction (SQLite and PostgreSQL): it is
accepted as the custodian's write, the directory's client, organisations and roles are reused
(conditional creates), and importing the same document twice changes nothing. The document
operation itself ($import-cda) is tested in tests/gateway/documents."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from adapters.cda.convert import from_fhir, to_fhir
from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from tests.adapters.cda.helpers import IDS, NOW, network, organisation
from tests.adapters.cda.helpers import client as client_bundle

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _document() -> bytes:
    """Aino's plan as hosu, without the network members who have no national professional id:
    those come in as new Practitioners, and a role of another organisation for a new person is
    not a write the custodian may make through a plain transaction (the write rules; see
    docs/cda.md "Professionals without a national identifier")."""
    resources = network() + client_bundle("10-client-aino")
    by_id = {r["id"]: r for r in resources}
    team = next(r for r in resources if r["resourceType"] == "CareTeam")

    def national(participant: dict) -> bool:
        role = by_id.get(participant["member"]["reference"].split("/")[-1], {})
        person = by_id.get(role.get("practitioner", {}).get("reference", "/").split("/")[-1], {})
        return role.get("resourceType") != "PractitionerRole" or bool(person.get("identifier"))

    team["participant"] = [p for p in team["participant"] if national(p)]
    return from_fhir(resources, "hosu", author_org=organisation("org-tyokykytiimi"), now=NOW)


def _versions(client: TestClient, headers: dict[str, str], locations: list[str]) -> list[str]:
    return [client.get(f"/fhir/{loc}", headers=headers).headers["etag"] for loc in locations]


def test_import_reuses_the_directory_and_is_idempotent(
    client: TestClient, services: Services, as_org: Callable[..., dict[str, str]]
) -> None:
    load_samples(services)
    team = {**as_org("tyokykytiimi"), **FHIR_JSON}
    bundle = to_fhir(_document(), IDS).bundle
    first = client.post("/fhir", json=bundle, headers=team)
    assert first.status_code == 200, first.text
    locations = [
        "/".join(e["response"]["location"].split("/fhir/")[1].split("/")[:2])
        for e in first.json()["entry"]
    ]
    by_type = {loc.split("/")[0]: loc for loc in reversed(locations)}  # first of each type
    assert by_type["Patient"] == "Patient/aino"  # the client register's Aino, matched on HETU
    care_team = client.get(f"/fhir/{by_type['CareTeam']}", headers=team).json()
    coordinator = care_team["participant"][0]["member"]["reference"]
    assert coordinator == "PractitionerRole/role-tyokykykoordinaattori"  # the directory's role
    before = _versions(client, team, locations)
    again = client.post("/fhir", json=bundle, headers=team)
    assert again.status_code == 200, again.text
    assert _versions(client, team, locations) == before  # nothing changed
