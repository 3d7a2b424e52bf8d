"""Every invariant of our profiles compiles with fhirpathpy, holds on the sample resources its
profile applies to, and fails on a minimal broken example of what it forbids."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import fhir_profiles
from tests.fhir_profiles.samples import (
    MODELS,
    Resource,
    evaluate,
    is_true,
    of_type,
    sample_resources,
)

BASE = "https://fhir-plan-gateway.example"
SD = f"{BASE}/StructureDefinition/"
COORDINATOR = {
    "coding": [{"system": f"{BASE}/CodeSystem/coordinator-role", "code": "asiakasvastaava"}]
}


def invariants() -> dict[str, tuple[str, str]]:
    """key -> (resource type, FHIRPath) of every invariant in our StructureDefinitions."""
    out = {}
    for sd in fhir_profiles.structure_definitions().values():
        for element in sd["differential"]["element"]:
            for constraint in element.get("constraint", []):
                assert element["path"] == sd["type"], "invariants sit on the resource"
                assert constraint["severity"] == "error"
                out[constraint["key"]] = (sd["type"], constraint["expression"])
    return out


INVARIANTS = invariants()


def selected(profile_url: str) -> list[Resource]:
    """Sample resources the selection table puts under `profile_url`."""
    rows = [r for r in fhir_profiles.selection() if r["profile"] == profile_url]
    return [
        resource
        for row in rows
        for resource in of_type(row["resourceType"])
        if is_true(evaluate(resource, row["when"]))
    ]


def holds(key: str, resource: Resource, model: dict[str, Any] | None = None) -> bool:
    result = evaluate(resource, INVARIANTS[key][1], model)
    assert result in ([True], [False]), (key, result)
    return result == [True]


def test_the_planned_invariants_exist() -> None:
    assert {"cn-1", "cn-2", "ho-1", "hetu-1", "sote-1", "terhikki-1", "cf-1", "cf-2"} <= set(
        INVARIANTS
    )


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
@pytest.mark.parametrize("key", sorted(INVARIANTS))
def test_invariant_evaluates_on_every_sample_of_its_type(key: str, model: Any) -> None:
    resource_type, _ = INVARIANTS[key]
    for resource in of_type(resource_type):
        holds(key, resource, model)


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
def test_invariants_hold_on_the_samples_their_profiles_select(model: Any) -> None:
    checked = 0
    for url, sd in fhir_profiles.structure_definitions().items():
        keys = [c["key"] for e in sd["differential"]["element"] for c in e.get("constraint", [])]
        for resource in selected(url):
            for key in keys:
                assert holds(key, resource, model), (key, resource["id"])
                checked += 1
    assert checked >= len(sample_resources()) // 4


def careteam() -> Resource:
    return copy.deepcopy(next(r for r in of_type("CareTeam") if r["id"] == "aino-careteam"))


def coordinators(team: Resource) -> list[dict[str, Any]]:
    codes = {(c["system"], c["code"]) for c in COORDINATOR["coding"]}
    return [
        p
        for p in team["participant"]
        if any((c["system"], c["code"]) in codes for r in p["role"] for c in r["coding"])
    ]


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
def test_cn1_exactly_one_open_coordinator_in_an_active_network(model: Any) -> None:
    team = careteam()
    assert holds("cn-1", team, model)
    (first,) = coordinators(team)
    second = {
        "role": [COORDINATOR],
        "member": {"reference": "PractitionerRole/role-terveydenhoitaja"},
        "period": {"start": "2026-10-01"},
    }
    team["participant"].append(second)
    assert not holds("cn-1", team, model)  # two coordinators
    first["period"]["end"] = "2026-10-01"
    assert holds("cn-1", team, model)  # a dated change: the old one ended, one open
    second["period"]["end"] = "2026-11-01"
    assert not holds("cn-1", team, model)  # nobody coordinates
    team["status"] = "inactive"
    assert holds("cn-1", team, model)  # only an active network needs a coordinator


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
def test_cn2_the_coordinator_is_a_practitioner_role(model: Any) -> None:
    team = careteam()
    (first,) = coordinators(team)
    for reference, ok in [
        ("https://other.example/fhir/PractitionerRole/x1/_history/2", True),
        ("Practitioner/prac-satu-malli", False),
        ("Patient/aino", False),
        ("PractitionerRoles/x", False),
    ]:
        first["member"] = {"reference": reference}
        assert holds("cn-2", team, model) is ok, reference
    first["member"] = {"type": "PractitionerRole", "identifier": {"value": "x"}}
    assert holds("cn-2", team, model)


def handover(**extra: Any) -> Resource:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": f"{BASE}/CodeSystem/task-type", "code": "coordinator-handover"}]
        },
        **extra,
    }


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
def test_ho1_a_rejected_handover_says_why(model: Any) -> None:
    assert holds("ho-1", handover(), model)
    assert not holds("ho-1", handover(status="rejected"), model)
    assert holds("ho-1", handover(status="rejected", statusReason={"text": "Ei resursseja"}), model)


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
@pytest.mark.parametrize(
    ("hetu", "ok"),
    [
        ("220784-913Y", True),  # a sample client
        ("010594Y9032", True),  # new century sign (2023 reform)
        ("131052-308T", True),
        ("220784-913X", False),  # wrong check character
        ("220784913Y", False),  # no century sign
        ("220784-913y", False),
        ("", False),
    ],
)
def test_hetu1_format_and_check_character(hetu: str, ok: bool, model: Any) -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:oid:1.2.246.21", "value": hetu},
            {"system": "urn:x", "value": "1"},
        ],
    }
    assert holds("hetu-1", patient, model) is ok


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
def test_sote1_and_terhikki1_identifier_formats(model: Any) -> None:
    org = {
        "resourceType": "Organization",
        "identifier": [{"system": "urn:oid:1.2.246.537.6.202.2008", "value": "1.2.246.10.1"}],
    }
    assert holds("sote-1", org, model)
    org["identifier"][0]["value"] = "sote-keskus"
    assert not holds("sote-1", org, model)
    assert not holds(
        "sote-1",
        {"resourceType": "Organization", "meta": {"profile": [f"{SD}fi-organization"]}},
        model,
    )
    prac = {
        "resourceType": "Practitioner",
        "identifier": [{"system": "urn:oid:1.2.246.537.26", "value": "10099990011"}],
    }
    assert holds("terhikki-1", prac, model)
    prac["identifier"][0]["value"] = "123"
    assert not holds("terhikki-1", prac, model)


def feedback(*items: dict[str, Any]) -> Resource:
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{BASE}/Questionnaire/stage-feedback",
        "status": "completed",
        "item": list(items),
    }


STAGE = {
    "linkId": "stage",
    "answer": [
        {"valueCoding": {"system": f"{BASE}/CodeSystem/feedback-stage", "code": "suunnitelma"}}
    ],
}
TEXT = {"linkId": "feedback", "answer": [{"valueString": "Suunnitelma tuntuu omalta."}]}


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
def test_cf1_cf2_stage_feedback_answers(model: Any) -> None:
    assert holds("cf-1", feedback(STAGE, TEXT), model) and holds(
        "cf-2", feedback(STAGE, TEXT), model
    )
    assert not holds("cf-1", feedback(TEXT), model)
    other_stage = {
        "linkId": "stage",
        "answer": [{"valueCoding": {"system": "urn:x", "code": "suunnitelma"}}],
    }
    assert not holds("cf-1", feedback(other_stage, TEXT), model)
    assert not holds("cf-1", feedback(STAGE, STAGE, TEXT), model)
    assert not holds(
        "cf-2", feedback(STAGE, {"linkId": "feedback", "answer": [{"valueInteger": 3}]}), model
    )
