"""Follow-up (seuranta): the pure report, `$follow-up` through the gate, and `$bring-back`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.coordination import common
from gateway.coordination.follow_up_report import Item, Network, follow_up_items, grouped, report
from gateway.coordination.plan_work import REVIEW_DATE, SERVICE_KIND, TASK_CODE, TASK_TYPE
from gateway.coordination.summary_text import SOLUTION_SYSTEM
from gateway.fhir_api.context import Services
from gateway.samples import load_samples

PURPOSE = {"X-Purpose-Of-Use": "CAREMGT"}
COORDINATOR = "https://fhir-plan-gateway.example/CodeSystem/coordinator-role"
TEAM = {
    "resourceType": "CareTeam",
    "id": "t",
    "participant": [
        {
            "role": [{"coding": [{"system": COORDINATOR, "code": "asiakasvastaava"}]}],
            "member": {"reference": "PractitionerRole/old"},
            "period": {"start": "2026-01-01", "end": "2026-06-01"},
        },
        {
            "role": [{"coding": [{"system": COORDINATOR, "code": "asiakasvastaava"}]}],
            "member": {"reference": "PractitionerRole/coord"},
            "period": {"start": "2026-06-01"},
        },
    ],
}
PLAN = {
    "resourceType": "CarePlan",
    "id": "p",
    "status": "active",
    "author": {"reference": "PractitionerRole/coord"},
    "careTeam": [{"reference": "CareTeam/t"}],
}
NETWORK = Network(
    careteams={"CareTeam/t": TEAM},
    plans={"CarePlan/p": PLAN},
    role_orgs={
        "PractitionerRole/coord": "Organization/team",
        "PractitionerRole/next": "Organization/social",
    },
)


def task(tid: str, due: str, status: str = "requested", **more: Any) -> dict[str, Any]:
    """A network-responsibility Task of plan p (code fulfill, based on the plan)."""
    return {
        "resourceType": "Task",
        "id": tid,
        "status": status,
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "basedOn": [{"reference": "CarePlan/p"}],
        "owner": {"reference": "Organization/kela"},
        "restriction": {"period": {"end": due}},
        **more,
    }


# -- the pure report -----------------------------------------------------------------------------
def test_plans_past_their_review_date_or_follow_up_task_are_listed_once() -> None:
    reviewed = {**PLAN, "extension": [{"url": REVIEW_DATE, "valueDate": "2026-11-01"}]}
    follow = task("f", "2026-10-15", focus={"reference": "ServiceRequest/s"})
    requests = {
        "ServiceRequest/s": {"code": {"coding": [{"system": SERVICE_KIND, "code": "seuranta"}]}}
    }
    items = follow_up_items("2026-12-01", [reviewed], [follow], requests, NETWORK)
    # the follow-up Task counts for its plan (the earlier date), not as a responsibility too
    assert items == [
        Item(
            "plan-past-review",
            "CarePlan/p",
            "2026-10-15",
            "PractitionerRole/coord",
            "Organization/team",
            "CarePlan/p",
        )
    ]
    assert follow_up_items("2026-10-15", [reviewed], [follow], requests, NETWORK) == []
    assert (
        follow_up_items("2026-12-01", [{**reviewed, "status": "completed"}], [], {}, NETWORK) == []
    )
    typed = task("g", "2026-10-15", code={"coding": [{"system": TASK_TYPE, "code": "follow-up"}]})
    assert follow_up_items("2026-12-01", [PLAN], [typed], {}, NETWORK)[0].kind == "plan-past-review"


def test_open_responsibilities_past_their_due_date_are_overdue() -> None:
    tasks = [
        task("late", "2026-11-30", "accepted"),
        task("done", "2026-11-30", "completed"),
        task("cancelled", "2026-11-30", "cancelled"),
        task("due-today", "2026-12-01", "in-progress"),
        task("timestamped", "2026-11-30T12:00:00+02:00", "on-hold"),
        {**task("other", "2026-01-01"), "basedOn": []},  # not a plan's responsibility
    ]
    items = follow_up_items("2026-12-01", [], tasks, {}, NETWORK)
    assert [(i.kind, i.item, i.due) for i in items] == [
        ("overdue-responsibility", "Task/late", "2026-11-30"),
        ("overdue-responsibility", "Task/timestamped", "2026-11-30"),
    ]
    assert items[0].coordinator == "PractitionerRole/coord"
    assert items[0].organization == "Organization/kela" and items[0].plan == "CarePlan/p"


def test_handovers_still_requested_past_their_window_are_unanswered() -> None:
    handover = {
        "resourceType": "Task",
        "code": {"coding": [{"system": TASK_TYPE, "code": "coordinator-handover"}]},
        "focus": {"reference": "CareTeam/t"},
        "owner": {"reference": "PractitionerRole/next"},
        "restriction": {"period": {"end": "2026-11-01"}},
    }
    tasks = [
        {**handover, "id": "h1", "status": "requested"},
        {**handover, "id": "h2", "status": "accepted"},  # answered
    ]
    items = follow_up_items("2026-12-01", [], tasks, {}, NETWORK)
    assert items == [
        Item(
            "unanswered-handover",
            "Task/h1",
            "2026-11-01",
            "PractitionerRole/coord",
            "Organization/social",
        )
    ]


def test_the_coordinator_is_the_one_on_the_report_date() -> None:
    items = follow_up_items("2026-05-01", [], [task("late", "2026-04-01")], {}, NETWORK)
    assert items[0].coordinator == "PractitionerRole/old"


def test_each_item_is_grouped_under_its_coordinator_and_its_organisation() -> None:
    items = [
        Item(
            "overdue-responsibility", "Task/a", "2026-11-01", "PractitionerRole/c", "Organization/k"
        ),
        Item("plan-past-review", "CarePlan/p", "2026-10-01", None, "Organization/t", "CarePlan/p"),
    ]
    groups = grouped(items)
    assert [(by, ref, [i.item for i in found]) for by, ref, found in groups] == [
        ("coordinator", "PractitionerRole/c", ["Task/a"]),
        ("organization", "Organization/k", ["Task/a"]),
        ("organization", "Organization/t", ["CarePlan/p"]),
    ]
    answer = report("2026-12-01", items)
    assert answer["parameter"][0] == {"name": "date", "valueDate": "2026-12-01"}
    first = answer["parameter"][1]["part"]
    assert first[0] == {
        "name": "coordinator",
        "valueReference": {"reference": "PractitionerRole/c"},
    }
    assert first[1]["name"] == "overdue-responsibility"
    assert {"name": "due", "valueDate": "2026-11-01"} in first[1]["part"]


# -- $follow-up over HTTP --------------------------------------------------------------------------
@pytest.fixture
def loaded(services: Services) -> Services:
    load_samples(services)
    return services


def follow_up(client: TestClient, headers: dict[str, str], query: str = "date=2027-02-01") -> dict:
    resp = client.get(f"/fhir/$follow-up?{query}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def groups(answer: dict[str, Any]) -> dict[tuple[str, str], dict[str, list[tuple[str, str]]]]:
    """{(by, reference): {kind: [(item, due)]}} of a $follow-up answer."""
    out: dict[tuple[str, str], dict[str, list[tuple[str, str]]]] = {}
    for group in answer["parameter"][1:]:
        head, *items = group["part"]
        kinds: dict[str, list[tuple[str, str]]] = {}
        for item in items:
            parts = {p["name"]: p for p in item["part"]}
            kinds.setdefault(item["name"], []).append(
                (parts["item"]["valueReference"]["reference"], parts["due"]["valueDate"])
            )
        out[(head["name"], head["valueReference"]["reference"])] = kinds
    return out


def all_items(answer: dict[str, Any]) -> set[str]:
    return {i for g in groups(answer).values() for found in g.values() for i, _ in found}


def test_follow_up_lists_what_is_late_per_coordinator_and_organisation(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    answer = follow_up(client, {**as_org("tyokykytiimi"), **PURPOSE})
    found = groups(answer)
    assert found[("coordinator", "PractitionerRole/role-tyokykykoordinaattori")] == {
        "overdue-responsibility": [("Task/aino-task-kela", "2026-12-31")],
        "plan-past-review": [("CarePlan/aino-plan", "2027-01-15")],  # its seuranta Task
    }
    assert found[("coordinator", "PractitionerRole/role-sosiaalityontekija")] == {
        "overdue-responsibility": [
            ("Task/mikko-task-etuudet", "2026-11-30"),
            ("Task/mikko-task-tyokyvyn-arvio", "2026-12-15"),
        ]
    }
    assert found[("organization", "Organization/org-kela")] == {
        "overdue-responsibility": [
            ("Task/mikko-task-etuudet", "2026-11-30"),
            ("Task/aino-task-kela", "2026-12-31"),
        ]
    }
    assert found[("organization", "Organization/org-tyokykytiimi")]["plan-past-review"] == [
        ("CarePlan/aino-plan", "2027-01-15")
    ]
    # Laura's process is not shared with the work-ability team: none of it is listed.
    assert not any(i.startswith(("Task/laura", "CarePlan/laura")) for i in all_items(answer))


def test_a_partner_sees_only_what_the_clients_let_it_see(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    # Mikko's consent denies employment services.
    seen = all_items(follow_up(client, {**as_org("tyollisyyspalvelut"), **PURPOSE}))
    assert "Task/aino-task-kela" in seen
    assert not any("mikko" in i for i in seen)
    assert any("mikko" in i for i in all_items(follow_up(client, {**as_org("kela"), **PURPOSE})))


def test_the_review_date_extension_puts_a_plan_on_the_list(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("sosiaalipalvelut")
    plan = client.get("/fhir/CarePlan/mikko-plan", headers=holder).json()
    plan["extension"] = [{"url": REVIEW_DATE, "valueDate": "2026-12-15"}]
    assert client.put("/fhir/CarePlan/mikko-plan", json=plan, headers=holder).status_code == 200
    found = groups(follow_up(client, holder, "date=2026-12-16"))
    assert found[("organization", "Organization/org-sosiaalipalvelut")]["plan-past-review"] == [
        ("CarePlan/mikko-plan", "2026-12-15")
    ]
    assert "plan-past-review" not in groups(follow_up(client, holder, "date=2026-12-15")).get(
        ("organization", "Organization/org-sosiaalipalvelut"), {}
    )


def test_follow_up_lists_an_unanswered_handover(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("tyokykytiimi", acting_role="role-tyokykykoordinaattori")
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "to",
                "valueReference": {"reference": "PractitionerRole/role-sosiaalityontekija"},
            },
            {
                "name": "reason",
                "valueCoding": {
                    "system": "https://fhir-plan-gateway.example/CodeSystem/handover-reason",
                    "code": "sosiaalipalvelujen-asiakkuus",
                },
            },
            {"name": "answer-by", "valueDate": "2027-01-10"},
        ],
    }
    resp = client.post("/fhir/CareTeam/aino-careteam/$handover", json=body, headers=holder)
    assert resp.status_code in (200, 201), resp.text
    handover = resp.json()
    if handover.get("resourceType") == "Parameters":  # the Task may come wrapped
        handover = next(p["resource"] for p in handover["parameter"] if "resource" in p)
    found = groups(follow_up(client, {**as_org("tyokykytiimi"), **PURPOSE}))
    late = [("Task/" + handover["id"], "2027-01-10")]
    assert (
        found[("organization", "Organization/org-sosiaalipalvelut")]["unanswered-handover"] == late
    )
    coordinator = found[("coordinator", "PractitionerRole/role-tyokykykoordinaattori")]
    assert coordinator["unanswered-handover"] == late


def test_filters_keep_one_coordinators_or_one_organisations_items(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = {**as_org("tyokykytiimi"), **PURPOSE}
    mine = follow_up(
        client, holder, "date=2027-02-01&coordinator=PractitionerRole/role-sosiaalityontekija"
    )
    assert all_items(mine) == {"Task/mikko-task-etuudet", "Task/mikko-task-tyokyvyn-arvio"}
    kela = follow_up(client, holder, "date=2027-02-01&organization=Organization/org-kela")
    assert all_items(kela) == {"Task/mikko-task-etuudet", "Task/aino-task-kela"}
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "date", "valueDate": "2026-01-01"}],
    }
    resp = client.post("/fhir/$follow-up", json=body, headers=holder)
    assert resp.status_code == 200 and resp.json()["parameter"] == [
        {"name": "date", "valueDate": "2026-01-01"}
    ]


def test_follow_up_changes_nothing(client: TestClient, loaded: Services, as_org: Any) -> None:
    holder = {**as_org("tyokykytiimi"), **PURPOSE}
    follow_up(client, holder)
    for ref in ("Task/aino-task-kela", "CarePlan/aino-plan", "Task/mikko-task-etuudet"):
        assert client.get(f"/fhir/{ref}", headers=holder).json()["meta"]["versionId"] == "1"


def searched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, str]]]:
    """(type, criteria) of every gated search $follow-up makes from now on."""
    seen: list[tuple[str, dict[str, str]]] = []
    real = common.search_visible

    def spy(svc: Services, req: Any, rtype: str, params: Any, *more: Any) -> list[dict]:
        seen.append((rtype, dict(params)))
        return real(svc, req, rtype, params, *more)

    monkeypatch.setattr(common, "search_visible", spy)
    return seen


def test_nothing_late_looks_up_no_networks_or_roles(
    client: TestClient, loaded: Services, as_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = searched(monkeypatch)
    answer = follow_up(client, {**as_org("tyokykytiimi"), **PURPOSE}, "date=2026-01-01")
    assert answer["parameter"] == [{"name": "date", "valueDate": "2026-01-01"}]
    assert sorted(t for t, _ in seen) == ["CarePlan", "ServiceRequest", "Task"]
    plans = next(criteria for t, criteria in seen if t == "CarePlan")
    assert plans["status"] == "active"  # a closed plan is never late itself


def test_only_the_late_items_networks_are_looked_up(
    client: TestClient, loaded: Services, as_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = searched(monkeypatch)
    answer = follow_up(client, {**as_org("tyokykytiimi"), **PURPOSE}, "date=2026-12-01")
    assert all_items(answer) == {"Task/mikko-task-etuudet"}
    teams = [criteria["_id"] for t, criteria in seen if t == "CareTeam"]
    assert teams == ["mikko-careteam"]  # not Aino's: nothing of hers is late yet


def test_a_closed_plans_late_responsibility_keeps_its_coordinator(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("tyokykytiimi")
    plan = client.get("/fhir/CarePlan/aino-plan", headers=holder).json()
    plan["status"] = "on-hold"
    assert client.put("/fhir/CarePlan/aino-plan", json=plan, headers=holder).status_code == 200
    found = groups(follow_up(client, {**holder, **PURPOSE}))
    assert found[("coordinator", "PractitionerRole/role-tyokykykoordinaattori")] == {
        "overdue-responsibility": [("Task/aino-task-kela", "2026-12-31")],
    }  # the plan itself is not late while on hold: only active plans are


@pytest.mark.parametrize(
    "query, path",
    [
        ("date=tomorrow", "Parameters.parameter[date]"),
        ("date=2027-02", "Parameters.parameter[date]"),
        ("coordinator=Organization/org-kela", "Parameters.parameter[coordinator]"),
        (
            "organization=PractitionerRole/role-terveydenhoitaja",
            "Parameters.parameter[organization]",
        ),
        ("owner=Organization/org-kela", "Parameters.parameter[owner]"),
    ],
)
def test_bad_follow_up_parameters_are_400(
    client: TestClient, loaded: Services, as_org: Any, query: str, path: str
) -> None:
    resp = client.get(f"/fhir/$follow-up?{query}", headers={**as_org("tyokykytiimi"), **PURPOSE})
    assert resp.status_code == 400
    assert resp.json()["issue"][0]["expression"] == [path]


# -- $bring-back -----------------------------------------------------------------------------------
def bring_back_body(reason: str | None = "Työkokeilu keskeytyi", due: str | None = None) -> dict:
    params: list[dict[str, Any]] = []
    if reason:
        params.append({"name": "reason", "valueString": reason})
    if due:
        params.append({"name": "date", "valueDate": due})
    return {"resourceType": "Parameters", "parameter": params}


def bring_backs(client: TestClient, headers: dict[str, str], plan: str) -> list[dict[str, Any]]:
    found = client.get(
        f"/fhir/Task?focus=CarePlan/{plan}&code={TASK_TYPE}|bring-back", headers=headers
    )
    return [e["resource"] for e in found.json().get("entry") or []]


def test_bring_back_gives_the_case_to_the_team(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("sosiaalipalvelut", acting_role="role-sosiaalityontekija")
    resp = client.post(
        "/fhir/CarePlan/mikko-plan/$bring-back",
        json=bring_back_body(due="2027-03-01"),
        headers=holder,
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["status"] == "requested" and created["intent"] == "order"
    assert created["code"]["coding"][0]["code"] == "bring-back"
    assert created["focus"] == {"reference": "CarePlan/mikko-plan"}
    assert created["for"]["reference"] == "Patient/mikko"
    assert created["owner"] == {"reference": "Organization/org-sosiaalipalvelut"}
    assert created["requester"] == {"reference": "PractitionerRole/role-sosiaalityontekija"}
    assert created["restriction"]["period"]["end"] == "2027-03-01"
    assert created["description"] == "Työkokeilu keskeytyi"
    plan = client.get("/fhir/CarePlan/mikko-plan", headers=holder).json()
    assert plan["status"] == "active" and plan["meta"]["versionId"] == "1"  # it was open


def test_bring_back_reopens_a_completed_plan(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("tyokykytiimi")
    summary = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "solution", "valueCoding": {"system": SOLUTION_SYSTEM, "code": "opiskelu"}}
        ],
    }
    assert client.post(
        "/fhir/CarePlan/aino-plan/$final-summary", json=summary, headers=holder
    ).is_success
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$bring-back", json=bring_back_body(), headers=holder
    )
    assert resp.status_code == 201, resp.text
    due = resp.json()["restriction"]["period"]["end"]
    assert date.fromisoformat(due) - date.today() in (timedelta(7), timedelta(6), timedelta(8))
    plan = client.get("/fhir/CarePlan/aino-plan", headers=holder).json()
    assert plan["status"] == "active" and plan["meta"]["versionId"] == "3"
    assert not [e for e in plan.get("extension") or [] if e["url"].endswith("/lasting-solution")]
    closed = client.get("/fhir/CarePlan/aino-plan/_history/2", headers=holder).json()
    assert closed["status"] == "completed"


def test_a_network_member_brings_the_case_back(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$bring-back", json=bring_back_body(), headers=PURPOSE
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["owner"] == {"reference": "Organization/org-tyokykytiimi"}
    assert len(bring_backs(client, as_org("tyokykytiimi"), "aino-plan")) == 1


def test_outside_the_plans_network_bring_back_is_refused(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("tyokykytiimi")
    plan = client.get("/fhir/CarePlan/aino-plan", headers=holder).json()
    plan["contributor"] = [
        c for c in plan["contributor"] if c["reference"] != "Organization/org-sote-keskus"
    ]
    assert client.put("/fhir/CarePlan/aino-plan", json=plan, headers=holder).status_code == 200
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$bring-back", json=bring_back_body(), headers=PURPOSE
    )
    assert resp.status_code == 403 and "plan-network" in resp.text
    assert bring_backs(client, holder, "aino-plan") == []
    kela = {**as_org("kela"), **PURPOSE}  # a contributor, but its scopes create no Tasks
    resp = client.post("/fhir/CarePlan/aino-plan/$bring-back", json=bring_back_body(), headers=kela)
    assert resp.status_code == 403
    hidden = as_org("sosiaalipalvelut")  # not among Aino's recipients
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$bring-back", json=bring_back_body(), headers=hidden
    )
    assert resp.status_code == 404
    assert bring_backs(client, holder, "aino-plan") == []


@pytest.mark.parametrize(
    "body, path",
    [
        (bring_back_body(None), "Parameters.parameter[reason]"),
        (bring_back_body("syy", "ensi viikolla"), "Parameters.parameter[date]"),
    ],
)
def test_bad_bring_back_input_is_400_and_changes_nothing(
    client: TestClient, loaded: Services, as_org: Any, body: dict, path: str
) -> None:
    holder = as_org("tyokykytiimi")
    resp = client.post("/fhir/CarePlan/aino-plan/$bring-back", json=body, headers=holder)
    assert resp.status_code == 400
    assert resp.json()["issue"][0]["expression"] == [path]
    assert bring_backs(client, holder, "aino-plan") == []


def test_a_revoked_plan_is_not_brought_back(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("typ")
    plan = client.get("/fhir/CarePlan/laura-plan", headers=holder).json()
    plan["status"] = "revoked"
    assert client.put("/fhir/CarePlan/laura-plan", json=plan, headers=holder).status_code == 200
    resp = client.post(
        "/fhir/CarePlan/laura-plan/$bring-back", json=bring_back_body(), headers=holder
    )
    assert resp.status_code == 409 and "plan-reopenable" in resp.text
    assert bring_backs(client, holder, "laura-plan") == []
