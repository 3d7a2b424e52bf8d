"""Our real profiles (fhir_profiles/profiles, compiled by SUSHI) on write: every sample resource
conforms, and each broken resource below is refused over HTTP with a 400 OperationOutcome that
names the profile, the instance path and the rule, and nothing is stored."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from gateway.samples import load_samples, sample_files
from gateway.validation.profiles import default_catalog, profile_issues

SD = "https://fhir-plan-gateway.example/StructureDefinition/"
CS = "https://fhir-plan-gateway.example/CodeSystem/"
VS = "https://fhir-plan-gateway.example/ValueSet/"


def _samples() -> list[dict[str, Any]]:
    return [
        entry["resource"]
        for path in sample_files()
        for entry in json.loads(path.read_text(encoding="utf-8"))["entry"]
    ]


def sample(resource_id: str) -> dict[str, Any]:
    """A deep copy of one sample resource, without its id (for a create)."""
    [found] = [r for r in _samples() if r.get("id") == resource_id]
    resource = copy.deepcopy(found)
    del resource["id"]
    return resource


@pytest.mark.parametrize("resource", _samples(), ids=lambda r: f"{r['resourceType']}/{r['id']}")
def test_every_sample_resource_conforms(resource: dict[str, Any]) -> None:
    assert [i.diagnostics for i in profile_issues(resource)] == []


def test_samples_are_selected_by_the_profiles_they_model() -> None:
    selected = {
        url.removeprefix(SD) for r in _samples() for url in default_catalog().applicable(r)[0]
    }
    assert {
        "client-network",
        "client-plan",
        "network-responsibility",
        "sharing-consent",
    } <= selected
    assert {"fi-organization", "fi-professional-role", "fi-client"} <= selected


def test_samples_load_through_the_write_validator(services: Services) -> None:
    assert all(set(r.statuses) == {"201 Created"} for r in load_samples(services))


def refused(client: TestClient, resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues of a refused create; asserts the 400 and that nothing was stored."""
    rtype = resource["resourceType"]
    r = client.post(f"/fhir/{rtype}", json=resource)
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/{rtype}/_history").json()["total"] == 0
    return r.json()["issue"]


def one_issue(issues: list[dict[str, Any]], profile: str, path: str, rule: str) -> None:
    """Some issue names the profile (url), the instance path and the rule."""
    hits = [
        i
        for i in issues
        if SD + profile in i["diagnostics"]
        and i["expression"] == [path]
        and f"{path}: {rule}" in i["diagnostics"]
    ]
    assert hits, json.dumps(issues, indent=1, ensure_ascii=False)


def test_care_team_with_two_active_coordinators(client: TestClient) -> None:
    team = sample("aino-careteam")
    coordinator = next(p for p in team["participant"] if "asiakasvastaava" in json.dumps(p))
    second = copy.deepcopy(coordinator)  # a second coordinator, period without end
    second["member"] = {"reference": "PractitionerRole/role-sosiaalityontekija"}
    team["participant"].append(second)
    one_issue(refused(client, team), "client-network", "CareTeam", "invariant cn-1")


def handover(**changes: Any) -> dict[str, Any]:
    """A coordinator-handover Task (profile coordinator-handover), valid unless changed."""
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": CS + "task-type", "code": "coordinator-handover"}]},
        "focus": {"reference": "CareTeam/aino-careteam"},
        "for": {"reference": "Patient/aino"},
        "requester": {"reference": "PractitionerRole/role-tyokykykoordinaattori"},
        "owner": {"reference": "PractitionerRole/role-sosiaalityontekija"},
        "restriction": {"period": {"end": "2026-10-01"}},
    }
    return task | changes


def test_handover_task_is_valid_as_built() -> None:
    assert profile_issues(handover()) == []
    assert (
        profile_issues(handover(status="rejected", statusReason={"text": "ei kapasiteettia"})) == []
    )


def test_handover_rejected_without_status_reason(client: TestClient) -> None:
    task = handover(status="rejected")  # no statusReason
    one_issue(refused(client, task), "coordinator-handover", "Task", "invariant ho-1")


def test_task_business_status_outside_the_value_set(client: TestClient) -> None:
    task = next(
        copy.deepcopy(r)
        for r in _samples()
        if r["resourceType"] == "Task" and r.get("businessStatus")
    )
    del task["id"]
    task["businessStatus"] = {"coding": [{"system": CS + "business-status", "code": "unohtunut"}]}
    rule = f"binding (required) to {VS}business-status"
    one_issue(refused(client, task), "network-responsibility", "Task.businessStatus", rule)


def test_care_plan_without_subject(client: TestClient) -> None:
    plan = sample("aino-plan")
    del plan["subject"]  # R4 itself requires subject: refused by the base structure check
    issues = refused(client, plan)
    assert [i["expression"] for i in issues] == [["CarePlan.subject"]]


def test_care_plan_with_a_group_subject(client: TestClient) -> None:
    plan = sample("aino-plan")
    plan["subject"] = {"reference": "Group/aino-family"}  # R4 allows Group, the profile not
    one_issue(refused(client, plan), "client-plan", "CarePlan.subject", "type Reference(Patient)")


def test_organization_claiming_fi_organization_without_sote_identifier(
    client: TestClient,
) -> None:
    org = {
        "resourceType": "Organization",
        "meta": {"profile": [SD + "fi-organization"]},
        "identifier": [{"system": "https://example.test/ids", "value": "1"}],
        "type": [{"coding": [{"system": CS + "network-organization-type", "code": "jarjesto"}]}],
        "name": "Yhdistys",
    }
    issues = refused(client, org)
    assert any(
        SD + "fi-organization" in i["diagnostics"] and i["code"] == "invariant" for i in issues
    ), issues
    del org["meta"]  # not ours unless it claims the profile or carries the SOTE identifier
    assert profile_issues(org) == []


def test_consent_without_provision(client: TestClient) -> None:
    consent = next(copy.deepcopy(r) for r in _samples() if r["resourceType"] == "Consent")
    del consent["id"], consent["provision"]
    rule = "cardinality 1..1 (found 0)"
    one_issue(refused(client, consent), "sharing-consent", "Consent.provision", rule)
