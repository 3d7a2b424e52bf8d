"""The CapabilityStatement: accepted by strict parsers, and lists exactly what is served."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement as R4BCapability
from fhirclient.models.capabilitystatement import CapabilityStatement as ClientCapability

from gateway.app import create_app
from gateway.fhir_api import capability
from gateway.fhir_api.context import RESOURCE_TYPES
from gateway.fhir_api.formats import to_plain
from gateway.search.registry import params_for
from gateway.settings import Settings

# Interaction code -> the (method, route) that implements it; routes.py must have each one.
ROUTES = {
    "read": ("GET", "/fhir/{rtype}/{rid}"),
    "vread": ("GET", "/fhir/{rtype}/{rid}/_history/{vid}"),
    "update": ("PUT", "/fhir/{rtype}/{rid}"),
    "patch": ("PATCH", "/fhir/{rtype}/{rid}"),
    "delete": ("DELETE", "/fhir/{rtype}/{rid}"),
    "history-instance": ("GET", "/fhir/{rtype}/{rid}/_history"),
    "history-type": ("GET", "/fhir/{rtype}/_history"),
    "create": ("POST", "/fhir/{rtype}"),
    "search-type": ("GET", "/fhir/{rtype}"),
    "transaction": ("POST", "/fhir"),
    "batch": ("POST", "/fhir"),
    "history-system": ("GET", "/fhir/_history"),
}


@pytest.fixture(scope="module")
def statement() -> dict[str, Any]:
    return to_plain(capability.build("http://example.test/fhir"))


@pytest.fixture(scope="module")
def resources(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


def test_metadata_is_served_and_strictly_parseable(client: TestClient) -> None:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    body = r.json()
    ClientCapability(body, strict=True)  # raises FHIRValidationError on anything unknown
    R4BCapability.model_validate(body)
    assert body["fhirVersion"] == "4.0.1"
    assert body["kind"] == "instance" and body["status"] == "active"
    assert body["implementation"]["url"] == "http://testserver/fhir"  # the request base


def test_metadata_in_xml(client: TestClient) -> None:
    r = client.get("/fhir/metadata", params={"_format": "xml"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+xml")
    assert b"<CapabilityStatement" in r.content


def test_every_served_type_is_listed_once(resources: dict[str, dict[str, Any]]) -> None:
    assert list(resources) == list(RESOURCE_TYPES)


@pytest.mark.parametrize("resource_type", RESOURCE_TYPES)
def test_type_capabilities(resources: dict[str, dict[str, Any]], resource_type: str) -> None:
    entry = resources[resource_type]
    assert [i["code"] for i in entry["interaction"]] == list(capability.TYPE_INTERACTIONS)
    assert entry["versioning"] == "versioned-update"
    assert entry["readHistory"] is True and entry["updateCreate"] is True
    assert entry["conditionalCreate"] is True and entry["conditionalUpdate"] is True
    assert entry["conditionalDelete"] == "single"
    # Search parameters: exactly the registry's, each once, with its definition URL.
    listed = {p["name"]: p for p in entry["searchParam"]}
    assert len(listed) == len(entry["searchParam"])
    registry = params_for(resource_type)
    assert set(listed) == set(registry)
    for code, sp in registry.items():
        assert listed[code]["type"] == sp.type and listed[code]["definition"] == sp.url


def test_search_params_the_issue_asks_for(resources: dict[str, dict[str, Any]]) -> None:
    def names(t: str) -> set[str]:
        return {p["name"] for p in resources[t]["searchParam"]}

    assert {"_id", "_lastUpdated", "patient", "care-team", "goal", "status"} <= names("CarePlan")
    assert {"owner", "requester", "based-on", "part-of", "focus", "patient"} <= names("Task")
    assert {"actor", "organization", "patient", "period"} <= names("Consent")
    assert {"participant", "category", "patient"} <= names("CareTeam")


def test_includes_follow_reference_parameters(resources: dict[str, dict[str, Any]]) -> None:
    assert "CarePlan:care-team" in resources["CarePlan"]["searchInclude"]
    assert "Task:owner" in resources["Task"]["searchInclude"]
    # CareTeam is revincluded by the plan pointing at it, not by unrelated parameters.
    assert "CarePlan:care-team" in resources["CareTeam"]["searchRevInclude"]
    assert "CarePlan:goal" not in resources["CareTeam"]["searchRevInclude"]
    assert "Task:owner" in resources["Organization"]["searchRevInclude"]
    served = set(RESOURCE_TYPES)
    for entry in resources.values():
        for value in entry["searchInclude"] + entry["searchRevInclude"]:
            assert value.split(":")[0] in served


def test_system_interactions(statement: dict[str, Any]) -> None:
    rest = statement["rest"][0]
    assert rest["mode"] == "server"
    assert [i["code"] for i in rest["interaction"]] == ["transaction", "batch", "history-system"]
    assert statement["format"] == ["application/fhir+json", "application/fhir+xml"]
    assert statement["patchFormat"] == ["application/json-patch+json"]


def test_every_listed_interaction_is_routed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/g.db"))
    routed = {(m, r.path) for r in app.routes for m in getattr(r, "methods", ())}
    listed = [*capability.TYPE_INTERACTIONS, *capability.SYSTEM_INTERACTIONS]
    for code in listed:
        assert ROUTES[code] in routed, code
    app.state.services.repo.close()


def test_built_once_with_the_base_filled_in() -> None:
    a, b = capability.build("http://a/fhir"), capability.build("http://b/fhir")
    # the large part (every resource entry) is built once and shared by every response
    assert a["rest"][0]["resource"] is b["rest"][0]["resource"] and a["date"] == b["date"]
    assert a["implementation"]["url"] == "http://a/fhir"
    assert b["implementation"]["url"] == "http://b/fhir"


def test_security_is_advertised_only_where_enforced(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With require_auth (the default) the statement names SMART and the token endpoint;
    without it, no security element claims a protection that is not there."""
    assert "security" not in to_plain(capability.build("http://example.test/fhir"))["rest"][0]
    monkeypatch.delenv("PLAN_GATEWAY_REQUIRE_AUTH", raising=False)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/g.db", token_key_file=str(tmp_path / "key.json")
    )
    assert settings.require_auth
    with TestClient(create_app(settings)) as client:
        doc = client.get("/fhir/metadata").json()  # /metadata stays public
        settings.require_auth = False  # the unsafe local mode
        unsafe = client.get("/fhir/metadata").json()
    assert "security" not in unsafe["rest"][0]
    security = doc["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = security["extension"][0]
    assert uris["extension"] == [{"url": "token", "valueUri": "http://testserver/auth/token"}]
    ClientCapability(doc, strict=True)
    R4BCapability.model_validate(doc)


def test_our_profiles_are_listed_as_supported_profiles(client: TestClient) -> None:
    # Writes are validated against them (gateway/validation/profiles.py); each resolves to a
    # StructureDefinition served read-only.
    cs = client.get("/fhir/metadata").json()
    by_type = {r["type"]: r for r in cs["rest"][0]["resource"]}
    base = "https://fhir-plan-gateway.example/StructureDefinition/"
    assert by_type["CareTeam"]["supportedProfile"] == [base + "client-network"]
    assert set(by_type["Task"]["supportedProfile"]) == {
        base + "coordinator-handover",
        base + "network-responsibility",
    }
    assert "supportedProfile" not in by_type["Basic"]
    for url in by_type["Task"]["supportedProfile"]:
        sd = client.get("/fhir/StructureDefinition", params={"url": url}).json()
        assert sd["total"] == 1
