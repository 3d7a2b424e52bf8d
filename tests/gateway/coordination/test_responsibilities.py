"""`CarePlan/{id}/$assign-responsibility` (coordination/responsibilities.py) over HTTP on Aino's
sample plan: its holder is the work-ability team (org-tyokykytiimi, acting as the work-ability
coordinator); org-sote-keskus (`client`) sees the plan under her consent but does not hold it;
org-typ may not see it at all. Every refusal leaves the plan and its requests as they were."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from gateway.samples import load_samples

CAREMGT = {"X-Purpose-Of-Use": "CAREMGT"}
BASE = "https://fhir-plan-gateway.example/CodeSystem"
VALMENNUS = {"system": f"{BASE}/service-kind", "code": "valmennus", "display": "Valmennus"}
ASSIGN = "/fhir/CarePlan/aino-plan/$assign-responsibility"
COORDINATOR = "PractitionerRole/role-tyokykykoordinaattori"
Acting = Callable[..., Any]


@pytest.fixture
def loaded(services: Services, client: TestClient) -> TestClient:
    load_samples(services)
    return client


@pytest.fixture
def team(loaded: TestClient, org_client: Acting) -> Any:
    return org_client("tyokykytiimi", acting_role="role-tyokykykoordinaattori")


def body(**given: Any) -> dict[str, Any]:
    """The Parameters of an assignment to the NGO; a value None leaves the parameter out."""
    values: dict[str, Any] = {
        "owner": {"valueReference": {"reference": "Organization/org-jarjesto"}},
        "service": {"valueCoding": VALMENNUS},
        "description": {"valueString": "Työhönvalmennus kevään ajan"},
        "due": {"valueDate": "2027-03-31"},
        **given,
    }
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": k, **v} for k, v in values.items() if v is not None],
    }


def state(client: TestClient) -> tuple[str, int]:
    """The plan's version and how many ServiceRequests are based on it."""
    plan = client.get("/fhir/CarePlan/aino-plan", headers=CAREMGT).json()
    bundle = client.get(
        "/fhir/ServiceRequest", params={"based-on": "CarePlan/aino-plan"}, headers=CAREMGT
    ).json()
    return plan["meta"]["versionId"], int(bundle["total"])


def refused(resp: Any, status: int, text: str, path: str) -> None:
    assert resp.status_code == status, resp.text
    issue = resp.json()["issue"][0]
    assert text in issue["diagnostics"] and issue["expression"] == [path]


def answer(resp: Any) -> dict[str, dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    return {p["name"]: p["resource"] for p in resp.json()["parameter"]}


# -- what is written ----------------------------------------------------------------------------
def test_the_holder_assigns_a_responsibility_in_one_write(loaded: TestClient, team: Any) -> None:
    version, count = state(loaded)
    out = answer(team.post(ASSIGN, json=body()))
    sr, task = out["service-request"], out["task"]
    assert sr["basedOn"] == [{"reference": "CarePlan/aino-plan"}]
    assert (sr["status"], sr["intent"]) == ("active", "order")
    assert sr["subject"]["reference"] == "Patient/aino"
    assert sr["requester"] == {"reference": COORDINATOR}
    assert sr["performer"] == [{"reference": "Organization/org-jarjesto"}]
    assert sr["code"]["coding"] == [VALMENNUS]
    assert sr["occurrencePeriod"]["end"] == "2027-03-31"
    assert (task["status"], task["intent"]) == ("requested", "order")
    assert task["code"]["coding"][0]["code"] == "fulfill"
    assert task["businessStatus"]["coding"][0]["code"] == "lahetetty"
    assert task["focus"] == {"reference": f"ServiceRequest/{sr['id']}"}
    assert task["for"]["reference"] == "Patient/aino"
    assert task["owner"] == {"reference": "Organization/org-jarjesto"}
    assert task["requester"] == {"reference": COORDINATOR}
    assert task["basedOn"] == [{"reference": "CarePlan/aino-plan"}]
    assert task["restriction"]["period"]["end"] == "2027-03-31"
    assert task["description"] == "Työhönvalmennus kevään ajan" and task["authoredOn"]
    plan = loaded.get("/fhir/CarePlan/aino-plan", headers=CAREMGT).json()
    assert int(plan["meta"]["versionId"]) == int(version) + 1
    assert plan["activity"][-1] == {"reference": {"reference": f"ServiceRequest/{sr['id']}"}}
    assert len(plan["activity"]) == 6
    assert state(loaded)[1] == count + 1
    stored = team.get(f"/fhir/Task/{task['id']}").json()
    assert stored["meta"]["versionId"] == "1" and stored["status"] == "requested"


def test_without_an_acting_role_the_organisation_requests(
    loaded: TestClient, org_client: Acting
) -> None:
    out = answer(org_client("tyokykytiimi").post(ASSIGN, json=body()))
    assert out["task"]["requester"] == {"reference": "Organization/org-tyokykytiimi"}


def test_the_owner_then_accepts_and_the_requester_may_not(
    loaded: TestClient, team: Any, org_client: Acting
) -> None:
    task = answer(team.post(ASSIGN, json=body()))["task"]
    url = f"/fhir/Task/{task['id']}"
    refused(
        team.put(url, json={**task, "status": "accepted"}), 403, "task-status-owner", "Task.status"
    )
    ngo = org_client("jarjesto")
    assert ngo.put(url, json={**task, "status": "accepted"}).status_code == 200


def test_a_role_owner_is_accepted(loaded: TestClient, team: Any) -> None:
    owner = {"valueReference": {"reference": "PractitionerRole/role-jarjesto-vertaistuki"}}
    out = answer(team.post(ASSIGN, json=body(owner=owner)))
    assert out["task"]["owner"]["reference"] == "PractitionerRole/role-jarjesto-vertaistuki"


# -- who may --------------------------------------------------------------------------------------
def test_a_network_member_that_does_not_hold_the_plan_is_forbidden(loaded: TestClient) -> None:
    before = state(loaded)
    resp = loaded.post(ASSIGN, json=body(), headers=CAREMGT)
    refused(resp, 403, "plan-full-writer", "CarePlan")
    assert state(loaded) == before


def test_an_organisation_that_may_not_see_the_plan_gets_404(
    loaded: TestClient, org_client: Acting
) -> None:
    before = state(loaded)
    assert org_client("typ").post(ASSIGN, json=body(), headers=CAREMGT).status_code == 404
    assert state(loaded) == before


@pytest.mark.parametrize(
    "requester", ["Organization/org-kela", "PractitionerRole/role-terveydenhoitaja"]
)
def test_the_requester_must_be_the_callers_own(
    loaded: TestClient, team: Any, requester: str
) -> None:
    before = state(loaded)
    given = {"requester": {"valueReference": {"reference": requester}}}
    refused(
        team.post(ASSIGN, json=body(**given)), 403, "own-name", "Parameters.parameter[requester]"
    )
    assert state(loaded) == before


def test_the_callers_own_organisation_may_be_named_as_requester(team: Any) -> None:
    given = {"requester": {"valueReference": {"reference": "Organization/org-tyokykytiimi"}}}
    out = answer(team.post(ASSIGN, json=body(**given)))
    assert out["service-request"]["requester"]["reference"] == "Organization/org-tyokykytiimi"


def test_a_closed_plan_takes_no_new_responsibilities(loaded: TestClient, team: Any) -> None:
    plan = team.get("/fhir/CarePlan/aino-plan").json()
    assert (
        team.put("/fhir/CarePlan/aino-plan", json={**plan, "status": "completed"}).status_code
        == 200
    )
    before = state(loaded)
    refused(team.post(ASSIGN, json=body()), 409, "plan-open", "CarePlan.status")
    assert state(loaded) == before


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "name"),
    [
        ({"owner": None}, "owner"),
        ({"service": None}, "service"),
        ({"due": None}, "due"),
        ({"owner": {"valueReference": {"reference": "Organization/org-nope"}}}, "owner"),
        ({"owner": {"valueReference": {"reference": "Patient/aino"}}}, "owner"),
        ({"owner": {"valueString": "Kela"}}, "owner"),
        (
            {"service": {"valueCoding": {"system": "http://snomed.info/sct", "code": "1"}}},
            "service",
        ),
        ({"due": {"valueString": "ensi keväänä"}}, "due"),
        (
            {"requester": {"valueReference": {"reference": "PractitionerRole/role-nope"}}},
            "requester",
        ),
        ({"extra": {"valueString": "x"}}, "extra"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    loaded: TestClient, team: Any, given: dict[str, Any], name: str
) -> None:
    before = state(loaded)
    resp = team.post(ASSIGN, json=body(**given))
    assert resp.status_code == 400, resp.text
    assert resp.json()["issue"][0]["expression"] == [f"Parameters.parameter[{name}]"]
    assert state(loaded) == before


def test_it_changes_state_so_get_is_refused(team: Any) -> None:
    assert team.get(ASSIGN).status_code == 405


def test_an_unknown_plan_is_404(team: Any) -> None:
    assert (
        team.post("/fhir/CarePlan/no-such-plan/$assign-responsibility", json=body()).status_code
        == 404
    )
