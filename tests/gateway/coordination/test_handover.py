"""The escorted handover (saattaen vaihtaen) over HTTP on the sample network: Mikko's designated
social worker (org-sosiaalipalvelut) hands the coordinator role over to the work-ability
coordinator (org-tyokykytiimi), whom Mikko's consent lets see his plan. Plus the REST guards."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.coordination import guards, handover, network
from gateway.errors import FhirError
from gateway.fhir_api.context import Services
from gateway.samples import load_samples

TEAM = "CareTeam/mikko-careteam"
PLAN = "CarePlan/mikko-plan"
SOCIAL_WORKER = "PractitionerRole/role-sosiaalityontekija"  # Mikko's coordinator
RECEIVER = "PractitionerRole/role-tyokykykoordinaattori"
PURPOSE = {"X-Purpose-Of-Use": "CAREMGT"}
REASON = {"system": network.HANDOVER_REASON, "code": "tarve-muuttui"}
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def loaded(services: Services) -> Services:
    load_samples(services)
    return services


@pytest.fixture
def proposer(as_org: Headers) -> dict[str, str]:
    return {**as_org("sosiaalipalvelut", acting_role=SOCIAL_WORKER), **PURPOSE}


@pytest.fixture
def receiver(as_org: Headers) -> dict[str, str]:
    return {**as_org("tyokykytiimi", acting_role=RECEIVER), **PURPOSE}


def params(**values: Any) -> dict[str, Any]:
    out = []
    for name, value in values.items():
        name = name.replace("_", "-")
        if isinstance(value, dict) and "system" in value:
            out.append({"name": name, "valueCoding": value})
        elif name == "answer-by":
            out.append({"name": name, "valueDate": value})
        elif isinstance(value, str) and value.startswith("PractitionerRole/"):
            out.append({"name": name, "valueReference": {"reference": value}})
        else:
            out.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": out}


def propose(client: TestClient, headers: dict[str, str], **values: Any) -> Any:
    body = params(**{"to": RECEIVER, "reason": REASON, **values})
    return client.post(f"/fhir/{TEAM}/$handover", json=body, headers=headers)


def stored(services: Services, key: str) -> dict[str, Any]:
    with services.repo.reader() as session:
        sv = session.current(*key.split("/"))
        assert sv is not None
        return {**orjson.loads(sv.body), "_version": sv.version}


def versions(services: Services, *keys: str) -> list[int]:
    return [stored(services, k)["_version"] for k in keys]


def all_of(services: Services, resource_type: str) -> list[dict[str, Any]]:
    with services.repo.reader() as session:
        sql = "SELECT res_id FROM resources WHERE res_type = ?"
        ids = [r[0] for r in session.query(sql, [resource_type])]
    return [stored(services, f"{resource_type}/{i}") for i in ids]


def coordinators(services: Services) -> list[str | None]:
    return [network.member(p) for p in network.open_coordinators(stored(services, TEAM))]


def overdue_task(client: TestClient, headers: dict[str, str], end: str = "2026-11-01") -> str:
    """A handover proposed earlier whose window is over (written as plain REST, as an older
    client or a replayed journey would)."""
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "businessStatus": {"coding": [{"system": network.BUSINESS_STATUS, "code": "lahetetty"}]},
        "code": {"coding": [{"system": network.TASK_TYPE, "code": "coordinator-handover"}]},
        "focus": {"reference": TEAM},
        "for": {"reference": "Patient/mikko"},
        "authoredOn": "2026-10-15T10:00:00+03:00",
        "requester": {"reference": SOCIAL_WORKER},
        "owner": {"reference": RECEIVER},
        "restriction": {"period": {"end": end}},
        "reasonCode": {"coding": [REASON]},
    }
    r = client.post("/fhir/Task", json=task, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# -- proposing ------------------------------------------------------------------------------------
def test_the_proposal_is_a_handover_task_and_the_coordinator_stays(
    client: TestClient, loaded: Services, proposer: dict[str, str]
) -> None:
    r = propose(client, proposer, answer_by="2026-12-31", note="Työkyvyn selvittely alkaa")
    assert r.status_code == 201, r.text
    task = r.json()
    assert (task["status"], task["intent"]) == ("requested", "order")
    assert task["code"]["coding"][0]["code"] == "coordinator-handover"
    assert task["businessStatus"]["coding"][0]["code"] == "lahetetty"
    assert task["focus"] == {"reference": TEAM} and task["for"]["reference"] == "Patient/mikko"
    assert task["requester"] == {"reference": SOCIAL_WORKER}
    assert task["owner"] == {"reference": RECEIVER}
    assert task["restriction"]["period"]["end"] == "2026-12-31"
    assert task["reasonCode"]["coding"][0] == REASON
    assert task["note"][0]["text"] == "Työkyvyn selvittely alkaa"
    assert versions(loaded, TEAM, PLAN) == [1, 1] and coordinators(loaded) == [SOCIAL_WORKER]


def test_the_default_window_is_fourteen_days(
    client: TestClient, loaded: Services, proposer: dict[str, str]
) -> None:
    from datetime import UTC, datetime, timedelta

    before = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    r = propose(client, proposer)
    after = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    assert r.status_code == 201, r.text
    assert r.json()["restriction"]["period"]["end"] in (before, after)  # midnight may pass


def test_one_open_handover_per_network(
    client: TestClient, loaded: Services, proposer: dict[str, str]
) -> None:
    assert propose(client, proposer).status_code == 201
    r = propose(client, proposer, to="PractitionerRole/role-terveydenhoitaja")
    assert r.status_code == 409, r.text
    assert "one-open-handover" in r.json()["issue"][0]["diagnostics"]
    tasks = [t for t in all_of(loaded, "Task") if network.is_handover(t)]
    assert len(tasks) == 1


def test_only_a_holder_of_the_network_proposes(
    client: TestClient, loaded: Services, receiver: dict[str, str]
) -> None:
    r = propose(client, receiver)  # the work-ability team sees Mikko's network, holds none
    assert r.status_code == 403, r.text
    assert "handover-proposer" in r.json()["issue"][0]["diagnostics"]
    assert not [t for t in all_of(loaded, "Task") if network.is_handover(t)]


@pytest.mark.parametrize(
    ("values", "status", "path"),
    [
        ({"to": SOCIAL_WORKER}, 409, "Parameters.parameter[to]"),
        ({"to": "PractitionerRole/nobody"}, 400, "Parameters.parameter[to]"),
        ({"reason": {"system": "urn:x", "code": "y"}}, 400, "Parameters.parameter[reason]"),
        ({"answer_by": "2020-01-01"}, 400, "Parameters.parameter[answer-by]"),
        ({"answer_by": "soon"}, 400, "Parameters.parameter[answer-by]"),
        ({"whom": "x"}, 400, "Parameters.parameter[whom]"),
    ],
)
def test_bad_proposals_change_nothing(
    client: TestClient,
    loaded: Services,
    proposer: dict[str, str],
    values: dict[str, Any],
    status: int,
    path: str,
) -> None:
    r = propose(client, proposer, **values)
    assert r.status_code == status, r.text
    assert r.json()["issue"][0]["expression"] == [path]
    assert not [t for t in all_of(loaded, "Task") if network.is_handover(t)]


def test_a_proposal_needs_to_and_reason(
    client: TestClient, loaded: Services, proposer: dict[str, str]
) -> None:
    body = params(to=RECEIVER)
    r = client.post(f"/fhir/{TEAM}/$handover", json=body, headers=proposer)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Parameters.parameter[reason]"]


# -- answering: the receiver only -----------------------------------------------------------------
def test_acceptance_switches_everything_in_one_transaction(
    client: TestClient, loaded: Services, proposer: dict[str, str], receiver: dict[str, str]
) -> None:
    task_id = propose(client, proposer).json()["id"]
    r = client.post(f"/fhir/Task/{task_id}/$accept-handover", json=params(), headers=receiver)
    assert r.status_code == 200, r.text
    team, plan, task = (stored(loaded, k) for k in (TEAM, PLAN, f"Task/{task_id}"))
    assert [team["_version"], plan["_version"], task["_version"]] == [2, 2, 2]
    old, new = network.coordinator_history(team)
    assert network.member(old) == SOCIAL_WORKER and network.member(new) == RECEIVER
    assert old["period"]["end"] == new["period"]["start"]
    assert coordinators(loaded) == [RECEIVER]
    assert plan["author"] == {"reference": "Organization/org-tyokykytiimi"}
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == ("completed", "valmis")
    assert task["output"][0]["valueReference"] == {"reference": f"{TEAM}/_history/2"}
    (prov,) = [
        p
        for p in all_of(loaded, "Provenance")
        if {"reference": f"{TEAM}/_history/2"} in p["target"]
    ]
    assert {t["reference"] for t in prov["target"]} == {
        f"{TEAM}/_history/2",
        f"{PLAN}/_history/2",
        f"Task/{task_id}/_history/2",
    }
    assert prov["agent"][0]["who"] == {"reference": RECEIVER}
    again = client.post(f"/fhir/Task/{task_id}/$accept-handover", json=params(), headers=receiver)
    assert again.status_code == 409 and "handover-closed" in again.text


def test_the_proposer_and_others_may_not_accept(
    client: TestClient, loaded: Services, proposer: dict[str, str], as_org: Headers
) -> None:
    task_id = propose(client, proposer).json()["id"]
    url = f"/fhir/Task/{task_id}/$accept-handover"
    r = client.post(url, json=params(), headers=proposer)
    assert r.status_code == 403, r.text
    assert "handover-receiver" in r.json()["issue"][0]["diagnostics"]
    assert client.post(url, json=params(), headers=PURPOSE).status_code == 404  # sote-keskus
    r = client.post(
        f"/fhir/Task/{task_id}/$reject-handover", json=params(reason="ei"), headers=proposer
    )
    assert r.status_code == 403
    assert versions(loaded, TEAM, PLAN, f"Task/{task_id}") == [1, 1, 1]


def test_a_colleague_of_the_receiver_acting_as_another_role_may_not_accept(
    client: TestClient, loaded: Services, proposer: dict[str, str], as_org: Headers
) -> None:
    colleague = {
        "resourceType": "PractitionerRole",
        "id": "role-tyokykytiimi-fysioterapeutti",
        "active": True,
        "practitioner": {"reference": "Practitioner/prac-satu-malli"},
        "organization": {"reference": "Organization/org-tyokykytiimi"},
        "code": [
            {
                "coding": [
                    {
                        "system": f"{network.CANONICAL}/CodeSystem/professional-role",
                        "code": "fysioterapeutti",
                    }
                ]
            }
        ],
    }
    team_org = as_org("tyokykytiimi")
    put = client.put(f"/fhir/PractitionerRole/{colleague['id']}", json=colleague, headers=team_org)
    assert put.status_code in (200, 201), put.text
    task_id = propose(client, proposer).json()["id"]
    acting = {
        **as_org("tyokykytiimi", acting_role=f"PractitionerRole/{colleague['id']}"),
        **PURPOSE,
    }
    r = client.post(f"/fhir/Task/{task_id}/$accept-handover", json=params(), headers=acting)
    assert r.status_code == 403, r.text
    # the organisation itself, naming no role, is the receiver
    r = client.post(
        f"/fhir/Task/{task_id}/$accept-handover", json=params(), headers={**team_org, **PURPOSE}
    )
    assert r.status_code == 200, r.text


def test_rejection_needs_a_reason_and_leaves_the_coordinator(
    client: TestClient, loaded: Services, proposer: dict[str, str], receiver: dict[str, str]
) -> None:
    task_id = propose(client, proposer).json()["id"]
    url = f"/fhir/Task/{task_id}/$reject-handover"
    r = client.post(url, json=params(), headers=receiver)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Parameters.parameter[reason]"]
    assert versions(loaded, f"Task/{task_id}") == [1]
    r = client.post(
        url, json=params(reason="Asiakkaan tilanne ei vielä vaadi vaihtoa"), headers=receiver
    )
    assert r.status_code == 200, r.text
    task = stored(loaded, f"Task/{task_id}")
    assert task["status"] == "rejected"
    assert task["statusReason"]["text"] == "Asiakkaan tilanne ei vielä vaadi vaihtoa"
    assert task["businessStatus"]["coding"][0]["code"] == "hylatty"
    assert versions(loaded, TEAM, PLAN) == [1, 1] and coordinators(loaded) == [SOCIAL_WORKER]
    # answered: a new proposal may be made
    assert propose(client, proposer).status_code == 201


def test_the_receiver_needs_the_clients_consent_to_accept(
    client: TestClient, loaded: Services, as_org: Headers
) -> None:
    """Aino shares her plan with the sote centre, Kela, employment services and the NGO, not
    with social services: their worker cannot take the role over until Aino allows it."""
    holder = {**as_org("tyokykytiimi", acting_role="PractitionerRole/role-tyokykykoordinaattori")}
    body = params(to=SOCIAL_WORKER, reason=REASON)
    r = client.post("/fhir/CareTeam/aino-careteam/$handover", json=body, headers=holder)
    assert r.status_code == 201, r.text
    task_id = r.json()["id"]
    social = {**as_org("sosiaalipalvelut", acting_role=SOCIAL_WORKER), **PURPOSE}
    url = f"/fhir/Task/{task_id}/$accept-handover"
    r = client.post(url, json=params(), headers=social)
    assert r.status_code == 409, r.text
    assert "receiver-consent" in r.json()["issue"][0]["diagnostics"]
    assert versions(loaded, "CareTeam/aino-careteam", f"Task/{task_id}") == [1, 1]
    consent = network.plain(stored(loaded, "Consent/aino-consent"))
    consent.pop("_version")
    actor = consent["provision"]["actor"][0]
    consent["provision"]["actor"].append(
        {**actor, "reference": {"reference": "Organization/org-sosiaalipalvelut"}}
    )
    r = client.put("/fhir/Consent/aino-consent", json=consent, headers=holder)
    assert r.status_code == 200, r.text
    r = client.post(url, json=params(), headers=social)
    assert r.status_code == 200, r.text
    plan = stored(loaded, "CarePlan/aino-plan")
    assert plan["author"] == {"reference": "Organization/org-sosiaalipalvelut"}


def test_an_overdue_handover_is_reported_and_cannot_be_accepted(
    client: TestClient, loaded: Services, proposer: dict[str, str], receiver: dict[str, str]
) -> None:
    late = overdue_task(client, proposer)
    r = client.post(f"/fhir/Task/{late}/$accept-handover", json=params(), headers=receiver)
    assert r.status_code == 409, r.text
    assert "handover-overdue" in r.json()["issue"][0]["diagnostics"]
    assert versions(loaded, TEAM, PLAN, f"Task/{late}") == [1, 1, 1]
    for who in (proposer, receiver):
        listed = client.get("/fhir/Task/$overdue-handovers", headers=who)
        assert listed.status_code == 200, listed.text
        (found,) = [p for p in listed.json()["parameter"] if p["name"] == "handover"]
        task = next(q for q in found["part"] if q["name"] == "task")
        assert task["valueReference"] == {"reference": f"Task/{late}"}
    # as of a date inside the window it is not overdue; Kela sees none of it
    earlier = client.get(
        "/fhir/Task/$overdue-handovers", params={"date": "2026-10-20"}, headers=receiver
    )
    assert [p for p in earlier.json()["parameter"] if p["name"] == "handover"] == []
    assert versions(loaded, f"Task/{late}") == [1]


def test_an_open_handover_within_its_window_is_not_overdue(
    client: TestClient, loaded: Services, proposer: dict[str, str]
) -> None:
    assert propose(client, proposer).status_code == 201
    listed = client.get("/fhir/Task/$overdue-handovers", headers=proposer).json()
    assert [p for p in listed["parameter"] if p["name"] == "handover"] == []
    assert client.post("/fhir/Task/$overdue-handovers", headers=proposer).status_code == 200


def test_a_stale_handover_cannot_be_accepted(
    client: TestClient, loaded: Services, proposer: dict[str, str], receiver: dict[str, str]
) -> None:
    """A designation after the proposal cancels the open handover it sees."""
    task_id = propose(client, proposer).json()["id"]
    designate = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "coordinator",
                "valueReference": {"reference": "PractitionerRole/role-terveydenhoitaja"},
            }
        ],
    }
    r = client.post(f"/fhir/{TEAM}/$designate-coordinator", json=designate, headers=proposer)
    assert r.status_code == 200, r.text
    task = stored(loaded, f"Task/{task_id}")
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == ("cancelled", "peruttu")
    r = client.post(f"/fhir/Task/{task_id}/$accept-handover", json=params(), headers=receiver)
    assert r.status_code == 409 and "handover-closed" in r.text
    assert coordinators(loaded) == ["PractitionerRole/role-terveydenhoitaja"]


# -- never zero or two coordinators ---------------------------------------------------------------
def test_two_accepts_at_once_make_one_switch(
    client: TestClient, loaded: Services, proposer: dict[str, str], receiver: dict[str, str]
) -> None:
    task_id = propose(client, proposer).json()["id"]
    url = f"/fhir/Task/{task_id}/$accept-handover"
    statuses = race(lambda: client.post(url, json=params(), headers=receiver).status_code, 2)
    assert sorted(statuses) == [200, 409]
    assert coordinators(loaded) == [RECEIVER]
    assert len(network.coordinator_history(stored(loaded, TEAM))) == 2


def test_accept_and_designate_at_once_leave_exactly_one_coordinator(
    client: TestClient, loaded: Services, proposer: dict[str, str], receiver: dict[str, str]
) -> None:
    task_id = propose(client, proposer).json()["id"]
    nurse = "PractitionerRole/role-terveydenhoitaja"
    designate = {
        "resourceType": "Parameters",
        "parameter": [{"name": "coordinator", "valueReference": {"reference": nurse}}],
    }
    calls = [
        lambda: client.post(
            f"/fhir/Task/{task_id}/$accept-handover", json=params(), headers=receiver
        ),
        lambda: client.post(
            f"/fhir/{TEAM}/$designate-coordinator", json=designate, headers=proposer
        ),
    ]
    results = race_each(calls)
    assert sorted(r.status_code for r in results).count(200) >= 1
    assert all(r.status_code in (200, 409) for r in results), [r.text for r in results]
    team = stored(loaded, TEAM)
    assert len(network.open_coordinators(team)) == 1
    wins = [r for r in results if r.status_code == 200]
    assert len(network.coordinator_history(team)) == 1 + len(wins)


def test_a_change_between_read_and_write_is_a_conflict(
    client: TestClient,
    loaded: Services,
    proposer: dict[str, str],
    receiver: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deterministic race: another change of coordinator lands after the acceptance has read
    the network and before it writes; the If-Match of the transaction turns it into a 409."""
    task_id = propose(client, proposer).json()["id"]
    nurse = "PractitionerRole/role-terveydenhoitaja"
    original = handover.plan_entries

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        team = stored(loaded, TEAM)
        team.pop("_version")
        with loaded.repo.writer() as session:
            session.write(
                "CareTeam", "mikko-careteam", network.switch(team, nurse, "2026-11-20"), "PUT"
            )
        return original(*args, **kwargs)

    monkeypatch.setattr(handover, "plan_entries", meanwhile)
    r = client.post(f"/fhir/Task/{task_id}/$accept-handover", json=params(), headers=receiver)
    assert r.status_code == 409, r.text
    assert "changed-meanwhile" in r.json()["issue"][0]["diagnostics"]
    assert coordinators(loaded) == [nurse]
    assert versions(loaded, PLAN, f"Task/{task_id}") == [1, 1]


@pytest.mark.parametrize("coordinators_after", [0, 2])
def test_a_plain_update_without_exactly_one_coordinator_is_refused(
    client: TestClient, loaded: Services, as_org: Headers, coordinators_after: int
) -> None:
    """The client-network profile's invariant cn-1 (helper V's validator) on the REST path."""
    team = network.plain(stored(loaded, TEAM))
    team.pop("_version")
    coordinator = team["participant"][0]
    assert network.is_coordinator(coordinator)
    rest = team["participant"][1:]
    if coordinators_after == 2:
        second = {**coordinator, "member": {"reference": RECEIVER}}
        team["participant"] = [coordinator, second, *rest]
    else:
        team["participant"] = rest
    r = client.put(f"/fhir/{TEAM}", json=team, headers=as_org("sosiaalipalvelut"))
    assert r.status_code == 400, r.text
    assert "cn-1" in r.json()["issue"][0]["diagnostics"]
    assert versions(loaded, TEAM) == [1] and coordinators(loaded) == [SOCIAL_WORKER]


def race(call: Callable[[], Any], n: int) -> list[Any]:
    return [r for r in race_each([call] * n)]


def race_each(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls on threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_a_stale_version_is_a_conflict_not_a_second_coordinator(
    client: TestClient, loaded: Services, proposer: dict[str, str], receiver: dict[str, str]
) -> None:
    """Sequentially: a write based on an old version of the network never lands (If-Match)."""
    task_id = propose(client, proposer).json()["id"]
    assert (
        client.post(
            f"/fhir/Task/{task_id}/$accept-handover", json=params(), headers=receiver
        ).status_code
        == 200
    )
    old = stored(loaded, TEAM)
    old.pop("_version")
    r = client.put(
        f"/fhir/{TEAM}",
        content=orjson.dumps(old),
        headers={**proposer, "If-Match": 'W/"1"', "Content-Type": "application/fhir+json"},
    )
    assert r.status_code in (409, 412), r.text
    assert coordinators(loaded) == [RECEIVER]


# -- the REST guards (gateway/coordination/guards.py) ---------------------------------------------
def handover_task(status: str = "requested") -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": status,
        "code": {"coding": [{"system": network.TASK_TYPE, "code": "coordinator-handover"}]},
        "owner": {"reference": RECEIVER},
    }


def network_team(*open_members: str, ended: str | None = None) -> dict[str, Any]:
    role = [{"coding": [{"system": network.COORDINATOR_ROLE, "code": "asiakasvastaava"}]}]
    participants = [
        {"role": role, "member": {"reference": m}, "period": {"start": "2026-01-01"}}
        for m in open_members
    ]
    if ended:
        participants.insert(
            0,
            {
                "role": role,
                "member": {"reference": ended},
                "period": {"start": "2025-01-01", "end": "2026-01-01"},
            },
        )
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "category": [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}],
        "participant": participants,
    }


@pytest.mark.parametrize("interaction", ["update", "patch"])
def test_the_guard_refuses_a_rest_change_of_a_handovers_state(interaction: str) -> None:
    old = handover_task()
    for element, value in [
        ("status", "completed"),
        ("owner", {"reference": "PractitionerRole/x"}),
        ("businessStatus", {"text": "valmis"}),
    ]:
        with pytest.raises(FhirError) as refused:
            guards.guard_write(interaction, "Task", old, {**old, element: value})
        assert refused.value.category.value == "conflict"
        assert (
            "handover-by-operation" in refused.value.message
            and f"Task.{element}" in refused.value.message
        )
    guards.guard_write(interaction, "Task", old, {**old, "note": [{"text": "soitettu"}]})  # allowed


def test_the_guard_refuses_deleting_an_open_handover_only() -> None:
    with pytest.raises(FhirError):
        guards.guard_write("delete", "Task", handover_task(), None)
    guards.guard_write("delete", "Task", handover_task("rejected"), None)
    other = {"resourceType": "Task", "status": "requested", "code": {"text": "x"}}
    guards.guard_write("update", "Task", other, {**other, "status": "completed"})


def test_the_guard_refuses_a_rest_change_of_the_coordinator() -> None:
    old = network_team(SOCIAL_WORKER)
    for new in (
        network_team(RECEIVER),
        network_team(SOCIAL_WORKER, RECEIVER),
        network_team(),
        network_team(RECEIVER, ended=SOCIAL_WORKER),
    ):
        with pytest.raises(FhirError) as refused:
            guards.guard_write("update", "CareTeam", old, new)
        assert "coordinator-by-operation" in refused.value.message
    renamed = {**old, "name": "Mikon verkosto"}
    guards.guard_write("update", "CareTeam", old, renamed)  # other changes pass


@pytest.mark.parametrize("members", [(), (SOCIAL_WORKER, RECEIVER)])
def test_the_guard_refuses_an_active_network_without_exactly_one_coordinator(
    members: tuple[str, ...],
) -> None:
    with pytest.raises(FhirError) as refused:
        guards.guard_write("create", "CareTeam", None, network_team(*members))
    assert "one-coordinator" in refused.value.message
    guards.guard_write("create", "CareTeam", None, {**network_team(*members), "status": "proposed"})
    guards.guard_write("create", "CareTeam", None, network_team(SOCIAL_WORKER))
