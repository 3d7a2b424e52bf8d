"""The sample client journeys: valid FHIR R4, internally consistent, and idempotent to load."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhirclient.models.bundle import Bundle as ClientBundle

from gateway.fhir_api.context import RESOURCE_TYPES, Services
from gateway.samples import load_samples, sample_files

HETU = "urn:oid:1.2.246.21"
SOTE = "urn:oid:1.2.246.537.6.202.2008"
TERHIKKI = "urn:oid:1.2.246.537.26"
FILES = sample_files()
CLIENTS = ("aino", "mikko", "laura")


def bundle(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def every_resource() -> Iterator[dict[str, Any]]:
    for path in FILES:
        for entry in bundle(path)["entry"]:
            yield entry["resource"]


def of_type(resource_type: str) -> list[dict[str, Any]]:
    return [r for r in every_resource() if r["resourceType"] == resource_type]


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for v in value.values():
            yield from references(v)
    elif isinstance(value, list):
        for v in value:
            yield from references(v)


def hetu_ok(hetu: str) -> bool:
    """Check character right and individual number 900-999 (reserved for test identifiers)."""
    digits = hetu[:6] + hetu[7:10]
    return (
        900 <= int(hetu[7:10]) <= 999
        and hetu[10] == "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(digits) % 31]
    )


def test_there_is_a_network_and_three_journeys() -> None:
    assert [p.name for p in FILES] == [
        "00-network.json",
        "10-client-aino.json",
        "11-client-mikko.json",
        "12-client-laura.json",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_bundle_validates_with_r4b_and_fhirclient(path: Path) -> None:
    doc = bundle(path)
    Bundle.model_validate(doc)
    ClientBundle(doc, strict=True)  # R4 (4.0.1) models, strict
    assert doc["type"] == "transaction"
    for entry in doc["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        # Fixed ids and PUT, so loading twice changes nothing.
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        assert entry["fullUrl"].startswith("urn:uuid:")


def test_ids_unique_types_served_references_resolve() -> None:
    keys = [f"{r['resourceType']}/{r['id']}" for r in every_resource()]
    assert len(keys) == len(set(keys))
    assert {k.split("/")[0] for k in keys} <= set(RESOURCE_TYPES)
    for resource in every_resource():
        for ref in references(resource):
            assert ref in keys, f"{resource['resourceType']}/{resource['id']} -> {ref}"


def test_identifiers_are_fake_and_use_the_national_systems() -> None:
    patients = of_type("Patient")
    assert sorted(p["id"] for p in patients) == sorted(CLIENTS)
    for p in patients:
        (hetu,) = [i["value"] for i in p["identifier"] if i["system"] == HETU]
        assert hetu_ok(hetu), hetu
    for org in of_type("Organization"):
        assert org["identifier"][0]["system"] == SOTE
    assert any(i["system"] == TERHIKKI for p in of_type("Practitioner") for i in p["identifier"])


@pytest.mark.parametrize("client", CLIENTS)
def test_journey_shape(client: str) -> None:
    (team,) = [t for t in of_type("CareTeam") if t["subject"]["reference"] == f"Patient/{client}"]
    assert team["category"][0]["coding"][0]["code"] == "LA28865-6"
    coordinators = [
        p
        for p in team["participant"]
        if p["role"][0]["coding"][0]["code"] == "asiakasvastaava"  # the named coordinator
    ]
    assert len(coordinators) == 1 and "start" in coordinators[0]["period"]
    (plan,) = [p for p in of_type("CarePlan") if p["subject"]["reference"] == f"Patient/{client}"]
    assert plan["careTeam"] == [{"reference": f"CareTeam/{team['id']}"}]
    assert plan["author"]["reference"].startswith("Organization/")  # the custodian
    assert plan["goal"] and plan["activity"]
    tasks = [t for t in of_type("Task") if t["for"]["reference"] == f"Patient/{client}"]
    assert tasks
    for task in tasks:
        assert task["intent"] == "order" and task["code"]["coding"][0]["code"] == "fulfill"
        assert task["owner"]["reference"].startswith("Organization/")
        assert task["restriction"]["period"]["end"]
        assert task["focus"]["reference"].startswith("ServiceRequest/")
    (consent,) = [c for c in of_type("Consent") if c["patient"]["reference"] == f"Patient/{client}"]
    assert consent["scope"]["coding"][0]["code"] == "patient-privacy"
    actors = consent["provision"]["actor"]
    assert actors and all(a["role"]["coding"][0]["code"] == "IRCP" for a in actors)
    provenance = [
        p for p in of_type("Provenance") if {"reference": f"CarePlan/{plan['id']}"} in p["target"]
    ]
    assert provenance[0]["agent"][0]["type"]["coding"][0]["code"] == "CST"


def test_goals_are_in_the_clients_own_words_with_english() -> None:
    for goal in of_type("Goal"):
        assert goal["description"]["text"].startswith("Haluan")  # Finnish, first person
        assert "English" in goal["note"][0]["text"]


def test_loading_twice_through_the_gateway_changes_nothing(services: Services) -> None:
    first = load_samples(services)
    assert all(set(r.statuses) == {"201 Created"} for r in first)
    second = load_samples(services)
    assert all(set(r.statuses) == {"200 OK"} for r in second)
    with services.repo.reader() as session:
        for resource in every_resource():
            sv = session.current(resource["resourceType"], resource["id"])
            assert sv is not None and sv.version == 1
