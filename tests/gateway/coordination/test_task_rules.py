"""Who moves a network responsibility along (consent/task_rules.py through writes.py rule 5c):
the pure rules, then each over HTTP on the sample Tasks.

Sample parties (samples/README.md): aino-task-kela (accepted) and aino-task-tyokokeilu
(requested) are requested by role-tyokykykoordinaattori (org-tyokykytiimi) and owned by org-kela
and org-tyollisyyspalvelut; aino-task-seuranta is the work-ability team's own follow-up (it is
both requester and owner). org-sote-keskus (`client`) sees Aino's plan under her consent but is
neither party; org-typ may not see it at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.consent.task_rules import TRANSITIONS, check_task_change, is_responsibility
from gateway.errors import Category
from gateway.fhir_api.context import Services
from gateway.samples import load_samples

CAREMGT = {"X-Purpose-Of-Use": "CAREMGT"}
FULFILL = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
BUSINESS = "https://fhir-plan-gateway.example/CodeSystem/business-status"
REQUESTER, OWNER = "org-req", "org-own"
Resource = dict[str, Any]


def responsibility(**extra: Any) -> Resource:
    return {"resourceType": "Task", "status": "requested", "code": FULFILL, **extra}


def check(caller: str, old: Resource, **change: Any) -> Any:
    return check_task_change(caller, old, {**old, **change}, REQUESTER, OWNER)


# -- the pure rules ------------------------------------------------------------------------------
def test_only_fulfill_tasks_are_responsibilities() -> None:
    assert is_responsibility(responsibility())
    assert not is_responsibility({"resourceType": "Task", "code": {"text": "fulfill"}})
    assert not is_responsibility({**responsibility(), "resourceType": "ServiceRequest"})
    assert not is_responsibility(None)


@pytest.mark.parametrize(("before", "after"), sorted(TRANSITIONS))
def test_every_transition_is_allowed_to_its_party_only(before: str, after: str) -> None:
    old = responsibility(status=before)
    reason = {"statusReason": {"text": "ei resursseja"}} if after == "rejected" else {}
    party = TRANSITIONS[(before, after)]
    assert check(OWNER, old, status=after, **reason) is None
    by_requester = check(REQUESTER, old, status=after, **reason)
    if party == "owner":
        assert by_requester.rule == "task-status-owner" and by_requester.path == "Task.status"
    else:
        assert by_requester is None
    assert check("org-other", old, status=after, **reason).category is Category.FORBIDDEN


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("requested", "completed"),
        ("requested", "in-progress"),
        ("accepted", "requested"),
        ("completed", "in-progress"),
        ("on-hold", "completed"),
        ("rejected", "accepted"),
        ("cancelled", "requested"),
        ("completed", "cancelled"),
    ],
)
def test_a_transition_outside_the_machine_is_a_conflict(before: str, after: str) -> None:
    found = check(OWNER, responsibility(status=before), status=after)
    assert found.rule == "task-transition" and found.category is Category.CONFLICT
    assert f"from {before} to {after}" in found.message


def test_a_rejection_needs_a_reason() -> None:
    found = check(OWNER, responsibility(), status="rejected")
    assert (found.rule, found.path, found.category) == (
        "task-reject-reason",
        "Task.statusReason",
        Category.UNPROCESSABLE,
    )


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("owner", {"reference": "Organization/org-x"}),
        ("businessStatus", {"coding": [{"system": BUSINESS, "code": "kaynnissa"}]}),
        ("input", [{"type": {"text": "liite"}, "valueString": "x"}]),
    ],
)
def test_only_the_requester_changes_the_assignment(element: str, value: Any) -> None:
    old = responsibility()
    assert check(REQUESTER, old, **{element: value}) is None
    for caller in (OWNER, "org-other"):
        found = check(caller, old, **{element: value})
        assert (found.rule, found.path) == ("task-requester", f"Task.{element}")


def test_one_organisation_as_both_parties_does_both() -> None:
    old = responsibility(status="accepted")
    new = {**old, "status": "in-progress", "businessStatus": {"text": "käynnissä"}}
    assert check_task_change("org-x", old, new, "org-x", "org-x") is None


def test_unresolved_parties_are_nobody() -> None:
    old = responsibility()
    found = check_task_change("org-x", old, {**old, "status": "accepted"}, None, None)
    assert found.rule == "task-status-owner"


def test_a_status_that_is_not_a_code_is_not_echoed() -> None:
    found = check(OWNER, responsibility(status="Aino Testinen"), status="accepted")
    assert found.rule == "task-transition" and "Aino" not in found.message


# -- over HTTP -----------------------------------------------------------------------------------
@pytest.fixture
def loaded(services: Services, client: TestClient) -> TestClient:
    load_samples(services)
    return client


Acting = Callable[..., Any]


def task(client: TestClient, id: str) -> Resource:
    resp = client.get(f"/fhir/Task/{id}", headers=CAREMGT)
    assert resp.status_code == 200, resp.text
    return resp.json()


def put(client: Any, task: Resource, **change: Any) -> Any:
    return client.put(f"/fhir/Task/{task['id']}", json={**task, **change}, headers=CAREMGT)


def refused(resp: Any, status: int, rule: str, path: str) -> None:
    assert resp.status_code == status, resp.text
    issue = resp.json()["issue"][0]
    assert rule in issue["diagnostics"] and issue["expression"] == [path]


def unchanged(client: TestClient, before: Resource) -> None:
    after = task(client, before["id"])
    assert after["meta"]["versionId"] == before["meta"]["versionId"]
    assert after["status"] == before["status"]


def test_the_owner_moves_its_task_along(loaded: TestClient, org_client: Acting) -> None:
    kela = org_client("kela")
    old = task(loaded, "aino-task-kela")
    resp = put(kela, old, status="in-progress", executionPeriod={"start": "2026-11-20"})
    assert resp.status_code == 200, resp.text
    assert task(loaded, "aino-task-kela")["status"] == "in-progress"
    assert put(kela, task(loaded, "aino-task-kela"), status="completed").status_code == 200


def test_the_owner_acting_through_a_role_may_not_change_the_business_status(
    loaded: TestClient, org_client: Acting
) -> None:
    employment = org_client("tyollisyyspalvelut", acting_role="role-tyollisyysasiantuntija")
    old = task(loaded, "aino-task-tyokokeilu")
    sent = {"coding": [{"system": BUSINESS, "code": "vastaanotettu"}]}
    resp = put(employment, old, status="accepted", businessStatus=sent)
    refused(resp, 403, "task-requester", "Task.businessStatus")
    unchanged(loaded, old)


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("owner", {"reference": "Organization/org-jarjesto"}),
        ("input", [{"type": {"text": "liite"}, "valueString": "x"}]),
    ],
)
def test_the_owner_may_not_reassign_or_add_input(
    loaded: TestClient, org_client: Acting, element: str, value: Any
) -> None:
    old = task(loaded, "aino-task-kela")
    refused(
        put(org_client("kela"), old, **{element: value}), 403, "task-requester", f"Task.{element}"
    )
    unchanged(loaded, old)


def test_the_requester_may_not_change_the_status(loaded: TestClient, org_client: Acting) -> None:
    team = org_client("tyokykytiimi", acting_role="role-tyokykykoordinaattori")
    old = task(loaded, "aino-task-kela")
    refused(put(team, old, status="in-progress"), 403, "task-status-owner", "Task.status")
    unchanged(loaded, old)


def test_the_requester_reassigns_and_sets_the_business_status(
    loaded: TestClient, org_client: Acting
) -> None:
    team = org_client("tyokykytiimi")
    old = task(loaded, "aino-task-tyokokeilu")
    waiting = {"coding": [{"system": BUSINESS, "code": "odottaa"}]}
    resp = put(team, old, owner={"reference": "Organization/org-jarjesto"}, businessStatus=waiting)
    assert resp.status_code == 200, resp.text
    stored = task(loaded, "aino-task-tyokokeilu")
    assert stored["owner"]["reference"] == "Organization/org-jarjesto"
    assert stored["businessStatus"] == waiting


@pytest.mark.parametrize("who", ["tyokykytiimi", "kela"])
def test_the_owner_or_the_requester_cancels(
    loaded: TestClient, org_client: Acting, who: str
) -> None:
    old = task(loaded, "aino-task-kela")
    resp = put(org_client(who), old, status="cancelled", statusReason={"text": "ei tarvetta"})
    assert resp.status_code == 200, resp.text
    assert task(loaded, "aino-task-kela")["status"] == "cancelled"


def test_a_network_member_that_is_neither_party_is_forbidden(loaded: TestClient) -> None:
    old = task(loaded, "aino-task-kela")
    refused(put(loaded, old, status="cancelled"), 403, "task-cancel", "Task.status")
    refused(put(loaded, old, status="completed"), 403, "task-status-owner", "Task.status")
    refused(put(loaded, old, description="muutettu"), 403, "not-holder", "Task")
    unchanged(loaded, old)


def test_an_organisation_that_may_not_see_the_task_gets_404(
    loaded: TestClient, org_client: Acting
) -> None:
    old = task(loaded, "aino-task-kela")
    resp = put(org_client("typ"), old, status="cancelled")
    assert resp.status_code == 404, resp.text
    unchanged(loaded, old)


def test_a_transition_outside_the_machine_is_409(loaded: TestClient, org_client: Acting) -> None:
    old = task(loaded, "aino-task-tyokokeilu")
    resp = put(org_client("tyollisyyspalvelut"), old, status="completed")
    refused(resp, 409, "task-transition", "Task.status")
    assert "from requested to completed" in resp.json()["issue"][0]["diagnostics"]
    unchanged(loaded, old)


def test_a_rejection_without_a_reason_is_422_and_with_one_is_stored(
    loaded: TestClient, org_client: Acting
) -> None:
    employment = org_client("tyollisyyspalvelut")
    old = task(loaded, "aino-task-tyokokeilu")
    refused(put(employment, old, status="rejected"), 422, "task-reject-reason", "Task.statusReason")
    unchanged(loaded, old)
    reason = {"text": "Ei työkokeilupaikkoja tällä alueella"}
    assert put(employment, old, status="rejected", statusReason=reason).status_code == 200


def test_a_patch_follows_the_same_rules(loaded: TestClient, org_client: Acting) -> None:
    old = task(loaded, "aino-task-kela")
    ops = [{"op": "replace", "path": "/status", "value": "in-progress"}]
    headers = {**CAREMGT, "Content-Type": "application/json-patch+json"}
    team = org_client("tyokykytiimi")
    resp = team.patch("/fhir/Task/aino-task-kela", content=json.dumps(ops), headers=headers)
    refused(resp, 403, "task-status-owner", "Task.status")
    unchanged(loaded, old)
    kela = org_client("kela")
    assert (
        kela.patch(
            "/fhir/Task/aino-task-kela", content=json.dumps(ops), headers=headers
        ).status_code
        == 200
    )


def test_a_team_that_assigned_itself_does_both(loaded: TestClient, org_client: Acting) -> None:
    team = org_client("tyokykytiimi")
    old = task(loaded, "aino-task-seuranta")
    busy = {"coding": [{"system": BUSINESS, "code": "vastaanotettu"}]}
    assert put(team, old, status="accepted", businessStatus=busy).status_code == 200
