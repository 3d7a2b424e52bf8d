"""Client participation: the pure `participation_summary`, the plain-REST shapes it reads (the
client's own goal, the actors the client chose, stage feedback) and `$peer-support`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.coordination.participation_summary import (
    CHOSEN_BY_CLIENT,
    CLIENT_OWN_WORDS,
    FEEDBACK_STAGE,
    PEER_SUPPORT_ANSWER,
    PEER_SUPPORT_OFFER,
    STAGE_FEEDBACK,
    participation_summary,
)
from gateway.fhir_api.context import Services
from gateway.samples import load_samples

PURPOSE = {"X-Purpose-Of-Use": "CAREMGT"}
PLAN = {"resourceType": "CarePlan", "id": "p", "subject": {"reference": "Patient/c"}}


def stage_feedback(rid: str, stage: str, text: str, authored: str) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "questionnaire": STAGE_FEEDBACK,
        "status": "completed",
        "subject": {"reference": "Patient/aino"},
        "basedOn": [{"reference": "CarePlan/aino-plan"}],
        "source": {"reference": "Patient/aino"},
        "authored": authored,
        "item": [
            {
                "linkId": "stage",
                "answer": [{"valueCoding": {"system": FEEDBACK_STAGE, "code": stage}}],
            },
            {"linkId": "feedback", "answer": [{"valueString": text}]},
        ],
    }


# -- the pure summary ----------------------------------------------------------------------------
def test_own_words_come_from_the_extension_or_from_the_client_expressing_the_goal() -> None:
    goals = [
        {
            "resourceType": "Goal",
            "id": "g1",
            "description": {"text": "Haluan töihin"},
            "expressedBy": {"reference": "Patient/c"},
        },  # no extension: the client expressed it
        {
            "resourceType": "Goal",
            "id": "g2",
            "description": {"text": "Kuntoutus"},
            "expressedBy": {"reference": "Patient/c"},
            "extension": [{"url": CLIENT_OWN_WORDS, "valueBoolean": False}],
        },  # extension wins
        {
            "resourceType": "Goal",
            "id": "g3",
            "description": {"text": "Opiskelu"},
            "extension": [{"url": CLIENT_OWN_WORDS, "valueBoolean": True}],
            "lifecycleStatus": "completed",
            "achievementStatus": {"coding": [{"code": "achieved"}]},
        },
    ]
    summary = participation_summary(PLAN, goals, None, [])
    assert [g["own_words"] for g in summary["goals"]] == [True, False, True]
    assert [g["goal"] for g in summary["own_goals"]] == ["Goal/g1", "Goal/g3"]
    assert summary["goals"][2] == {
        "goal": "Goal/g3",
        "text": "Opiskelu",
        "own_words": True,
        "lifecycle": "completed",
        "achievement": "achieved",
    }
    assert summary["client"] == "Patient/c"


def test_chosen_actors_are_the_current_participants_the_client_chose() -> None:
    chosen = [{"url": CHOSEN_BY_CLIENT, "valueBoolean": True}]
    team = {
        "resourceType": "CareTeam",
        "participant": [
            {
                "member": {"reference": "PractitionerRole/a", "display": "A"},
                "extension": chosen,
                "role": [{"coding": [{"code": "jarjestotyontekija"}]}],
                "period": {"start": "2026"},
            },
            {
                "member": {"reference": "PractitionerRole/b"},
                "extension": chosen,
                "period": {"start": "2026", "end": "2026-12-01"},
            },  # no longer in the network
            {
                "member": {"reference": "PractitionerRole/c"},
                "extension": [{"url": CHOSEN_BY_CLIENT, "valueBoolean": False}],
            },
            {"member": {"reference": "PractitionerRole/d"}},
        ],
    }
    assert participation_summary(PLAN, [], team, [])["chosen_actors"] == [
        {"member": "PractitionerRole/a", "display": "A", "role": "jarjestotyontekija"}
    ]


def test_feedback_is_the_stage_feedback_oldest_first_and_the_peer_support_offer() -> None:
    other = {"resourceType": "QuestionnaireResponse", "id": "x", "questionnaire": "urn:other"}
    later = stage_feedback("q2", "seuranta", "Hyvä", "2027-02-01")
    earlier = stage_feedback("q1", "suunnitelma", "Sain sanoa", "2026-09-14")
    plan = {
        **PLAN,
        "extension": [
            {
                "url": PEER_SUPPORT_OFFER,
                "extension": [
                    {
                        "url": "answer",
                        "valueCoding": {"system": PEER_SUPPORT_ANSWER, "code": "ei-nyt"},
                    },
                    {"url": "date", "valueDateTime": "2026-09-14"},
                    {"url": "offeredBy", "valueReference": {"reference": "PractitionerRole/o"}},
                ],
            }
        ],
    }
    summary = participation_summary(plan, [], None, [later, other, earlier])
    assert summary["feedback"] == [
        {
            "response": "QuestionnaireResponse/q1",
            "stage": "suunnitelma",
            "text": "Sain sanoa",
            "authored": "2026-09-14",
        },
        {
            "response": "QuestionnaireResponse/q2",
            "stage": "seuranta",
            "text": "Hyvä",
            "authored": "2027-02-01",
        },
    ]
    assert summary["peer_support"] == {
        "answer": "ei-nyt",
        "date": "2026-09-14",
        "offered_by": "PractitionerRole/o",
    }
    assert participation_summary(PLAN, [], None, [])["peer_support"] is None


# -- plain REST: the shapes are accepted, and written only by those who may ------------------------
@pytest.fixture
def loaded(services: Services) -> Services:
    load_samples(services)
    return services


def test_the_holder_records_the_clients_own_goal_and_chosen_actor(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("tyokykytiimi")
    goal = client.get("/fhir/Goal/aino-goal-1", headers=holder).json()
    goal["extension"] = [{"url": CLIENT_OWN_WORDS, "valueBoolean": True}]
    assert client.put("/fhir/Goal/aino-goal-1", json=goal, headers=holder).status_code == 200
    team = client.get("/fhir/CareTeam/aino-careteam", headers=holder).json()
    team["participant"][4]["extension"] = [{"url": CHOSEN_BY_CLIENT, "valueBoolean": True}]
    resp = client.put("/fhir/CareTeam/aino-careteam", json=team, headers=holder)
    assert resp.status_code == 200, resp.text
    stored = client.get("/fhir/CareTeam/aino-careteam", headers=holder).json()
    summary = participation_summary(
        {**PLAN, "subject": {"reference": "Patient/aino"}}, [goal], stored, []
    )
    assert summary["chosen_actors"][0]["member"] == "PractitionerRole/role-jarjesto-vertaistuki"


def test_the_plans_holder_creates_stage_feedback_for_the_client(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    qr = stage_feedback("ignored", "suunnitelma", "Suunnitelma on minun näköiseni.", "2026-09-14")
    del qr["id"]
    resp = client.post("/fhir/QuestionnaireResponse", json=qr, headers=as_org("tyokykytiimi"))
    assert resp.status_code == 201, resp.text
    found = client.get(
        "/fhir/QuestionnaireResponse?based-on=CarePlan/aino-plan", headers=as_org("tyokykytiimi")
    )
    assert len(found.json()["entry"]) == 1


def test_an_organisation_the_client_did_not_permit_cannot_record_feedback(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    # Mikko's consent denies employment services: it may not tie a record to him.
    qr = stage_feedback("ignored", "suunnitelma", "Palaute", "2026-10-05")
    del qr["id"]
    qr["subject"] = qr["source"] = {"reference": "Patient/mikko"}
    qr["basedOn"] = [{"reference": "CarePlan/mikko-plan"}]
    headers = {**as_org("tyollisyyspalvelut"), **PURPOSE}
    resp = client.post("/fhir/QuestionnaireResponse", json=qr, headers=headers)
    assert resp.status_code == 403, resp.text
    found = client.get(
        "/fhir/QuestionnaireResponse?subject=Patient/mikko", headers=as_org("sosiaalipalvelut")
    )
    assert not found.json().get("entry")


# -- $peer-support ------------------------------------------------------------------------------
def offer(code: str | None, offered_by: str | None = None, date: str | None = None) -> dict:
    params: list[dict[str, Any]] = []
    if code:
        params.append(
            {"name": "answer", "valueCoding": {"system": PEER_SUPPORT_ANSWER, "code": code}}
        )
    if offered_by:
        params.append({"name": "offered-by", "valueReference": {"reference": offered_by}})
    if date:
        params.append({"name": "date", "valueDateTime": date})
    return {"resourceType": "Parameters", "parameter": params}


def offers(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in plan.get("extension") or [] if e["url"] == PEER_SUPPORT_OFFER]


def test_peer_support_offer_and_answer_replace_the_earlier_one_keeping_history(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("tyokykytiimi", acting_role="role-tyokykykoordinaattori")
    url = "/fhir/CarePlan/aino-plan/$peer-support"
    first = offer(
        "tarjottu", "PractitionerRole/role-jarjesto-vertaistuki", "2026-09-14T11:00:00+03:00"
    )
    resp = client.post(url, json=first, headers=holder)
    assert resp.status_code == 200, resp.text
    assert resp.json()["meta"]["versionId"] == "2"
    assert client.post(url, json=offer("hyvaksytty"), headers=holder).status_code == 200
    plan = client.get("/fhir/CarePlan/aino-plan", headers=holder).json()
    (current,) = offers(plan)
    parts = {p["url"]: p for p in current["extension"]}
    assert parts["answer"]["valueCoding"]["code"] == "hyvaksytty"
    assert parts["answer"]["valueCoding"]["display"] == "Hyväksytty"
    assert "offeredBy" not in parts
    earlier = client.get("/fhir/CarePlan/aino-plan/_history/2", headers=holder).json()
    (kept,) = offers(earlier)
    assert {p["url"]: p for p in kept["extension"]}["offeredBy"]["valueReference"] == {
        "reference": "PractitionerRole/role-jarjesto-vertaistuki"
    }
    prov = client.get("/fhir/Provenance?target=CarePlan/aino-plan/_history/3", headers=holder)
    targets = [t["reference"] for e in prov.json()["entry"] for t in e["resource"]["target"]]
    assert "CarePlan/aino-plan/_history/3" in targets


def test_a_network_member_records_the_offer(client: TestClient, loaded: Services) -> None:
    # org-sote-keskus is a contributor to Aino's plan (and permitted by her consent).
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$peer-support", json=offer("ei-nyt"), headers=PURPOSE
    )
    assert resp.status_code == 200, resp.text


def test_an_organisation_outside_the_plans_network_is_refused(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    holder = as_org("tyokykytiimi")
    plan = client.get("/fhir/CarePlan/aino-plan", headers=holder).json()
    plan["contributor"] = [
        c for c in plan["contributor"] if c["reference"] != "Organization/org-sote-keskus"
    ]
    assert client.put("/fhir/CarePlan/aino-plan", json=plan, headers=holder).status_code == 200
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$peer-support", json=offer("ei-nyt"), headers=PURPOSE
    )
    assert resp.status_code == 403
    assert "plan-network" in resp.json()["issue"][0]["diagnostics"]
    after = client.get("/fhir/CarePlan/aino-plan", headers=holder).json()
    assert after["meta"]["versionId"] == "2" and not offers(after)


def test_a_partner_without_plan_write_scope_is_refused(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    headers = {**as_org("jarjesto"), **PURPOSE}
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$peer-support", json=offer("ei-nyt"), headers=headers
    )
    assert resp.status_code == 403


@pytest.mark.parametrize(
    "body, path",
    [
        (offer(None), "Parameters.parameter[answer]"),
        (offer("ehkä"), "Parameters.parameter[answer]"),
        (offer("ei-nyt", "Organization/org-jarjesto"), "Parameters.parameter[offered-by]"),
        (offer("ei-nyt", "PractitionerRole/nobody"), "Parameters.parameter[offered-by]"),
        (offer("ei-nyt", date="eilen"), "Parameters.parameter[date]"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter_and_changes_nothing(
    client: TestClient, loaded: Services, as_org: Any, body: dict, path: str
) -> None:
    holder = as_org("tyokykytiimi")
    resp = client.post("/fhir/CarePlan/aino-plan/$peer-support", json=body, headers=holder)
    assert resp.status_code == 400, resp.text
    assert resp.json()["issue"][0]["expression"] == [path]
    plan = client.get("/fhir/CarePlan/aino-plan", headers=holder).json()
    assert plan["meta"]["versionId"] == "1"


def test_a_closed_plan_takes_no_offer(client: TestClient, loaded: Services, as_org: Any) -> None:
    holder = as_org("typ")
    plan = client.get("/fhir/CarePlan/laura-plan", headers=holder).json()
    plan["status"] = "completed"
    assert client.put("/fhir/CarePlan/laura-plan", json=plan, headers=holder).status_code == 200
    resp = client.post(
        "/fhir/CarePlan/laura-plan/$peer-support", json=offer("ei-nyt"), headers=holder
    )
    assert resp.status_code == 409 and "plan-open" in resp.text
