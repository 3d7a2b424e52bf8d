"""selection.json: every row's FHIRPath compiles with fhirpathpy and selects exactly the sample
resources it should; every profile is reachable by its content and by meta.profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import fhir_profiles
from tests.fhir_profiles.samples import MODELS, Resource, evaluate, is_true, sample_resources

BASE = "https://fhir-plan-gateway.example"
SD = f"{BASE}/StructureDefinition/"
ROWS = fhir_profiles.selection()


def coded(value: Any, system: str, code: str | None = None) -> bool:
    concepts = value if isinstance(value, list) else [value] if value else []
    return any(
        c.get("system") == system and (code is None or c.get("code") == code)
        for concept in concepts
        for c in concept.get("coding", [])
    )


def identified(r: Resource, system: str) -> bool:
    return any(i.get("system") == system for i in r.get("identifier", []))


def plan_based(r: Resource) -> bool:
    return any(b.get("reference", "").startswith("CarePlan/") for b in r.get("basedOn", []))


# The same rules in plain Python, to cross-check the FHIRPath (by profile id).
EXPECTED: dict[str, Callable[[Resource], bool]] = {
    "fi-client": lambda r: identified(r, "urn:oid:1.2.246.21"),
    "fi-organization": lambda r: identified(r, "urn:oid:1.2.246.537.6.202.2008"),
    "fi-practitioner": lambda r: identified(r, "urn:oid:1.2.246.537.26"),
    "fi-professional-role": lambda r: (
        coded(r.get("code"), f"{BASE}/CodeSystem/professional-role")
        or identified(r, "urn:oid:1.2.246.537.26")
    ),
    "client-network": lambda r: coded(r.get("category"), "http://loinc.org", "LA28865-6"),
    "client-plan": lambda r: coded(
        r.get("category"), f"{BASE}/CodeSystem/plan-category", "asiakassuunnitelma"
    ),
    "client-goal": lambda r: any(
        e["url"] == f"{SD}client-own-words" for e in r.get("extension", [])
    ),
    "responsibility-request": lambda r: (
        coded(r.get("code"), f"{BASE}/CodeSystem/service-kind") and plan_based(r)
    ),
    "network-responsibility": lambda r: (
        coded(r.get("code"), "http://hl7.org/fhir/CodeSystem/task-code", "fulfill")
        and plan_based(r)
    ),
    "coordinator-handover": lambda r: coded(
        r.get("code"), f"{BASE}/CodeSystem/task-type", "coordinator-handover"
    ),
    "sharing-consent": lambda r: coded(
        r.get("scope"), "http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"
    ),
    "client-feedback": lambda r: (
        r.get("questionnaire", "").split("|")[0] == f"{BASE}/Questionnaire/stage-feedback"
    ),
    "final-summary": lambda r: coded(r.get("type"), "http://loinc.org", "34133-9"),
}
# Sample resources each content row must select (the samples may grow, never lose these).
KNOWN = {
    "fi-client": {"aino", "mikko", "laura"},
    "fi-organization": {"org-sote-keskus", "org-kela", "org-typ", "org-jarjesto"},
    "fi-practitioner": {"prac-satu-malli", "prac-heikki-esimerkki"},
    "fi-professional-role": {"role-tyokykykoordinaattori", "role-jarjesto-vertaistuki"},
    "client-network": {"aino-careteam", "mikko-careteam", "laura-careteam"},
    "client-plan": {"aino-plan", "mikko-plan", "laura-plan"},
    "responsibility-request": {"mikko-sr-kuntouttava", "aino-sr-seuranta"},
    "network-responsibility": {"mikko-task-kuntouttava", "aino-task-seuranta"},
    "sharing-consent": {"aino-consent", "mikko-consent", "laura-consent"},
}


def content_rows() -> list[dict[str, str]]:
    return [row for row in ROWS if not row["when"].startswith("meta.profile")]


def test_rows_name_our_profiles_for_their_resource_type() -> None:
    definitions = fhir_profiles.structure_definitions()
    for row in ROWS:
        assert set(row) == {"resourceType", "when", "profile"}
        assert definitions[row["profile"]]["type"] == row["resourceType"]
    profiles = {u for u, sd in definitions.items() if sd["type"] != "Extension"}
    assert {row["profile"] for row in content_rows()} == profiles
    assert {row["profile"] for row in ROWS if row not in content_rows()} == profiles


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
@pytest.mark.parametrize("row", content_rows(), ids=lambda row: row["profile"].rsplit("/")[-1])
def test_content_row_selects_the_expected_sample_resources(
    row: dict[str, str], model: dict[str, Any] | None
) -> None:
    profile = row["profile"].removeprefix(SD)
    of_type = [r for r in sample_resources() if r["resourceType"] == row["resourceType"]]
    selected = {r["id"] for r in of_type if is_true(evaluate(r, row["when"], model))}
    assert selected == {r["id"] for r in of_type if EXPECTED[profile](r)}
    assert KNOWN.get(profile, set()) <= selected
    for r in of_type:
        assert evaluate(r, row["when"], model) in ([True], [False]), r["id"]


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r not in content_rows()], ids=lambda r: r["profile"].rsplit("/")[-1]
)
def test_meta_profile_row_selects_a_resource_that_claims_the_profile(row: dict[str, str]) -> None:
    claims = {"resourceType": row["resourceType"], "meta": {"profile": [row["profile"]]}}
    versioned = {
        "resourceType": row["resourceType"],
        "meta": {"profile": [row["profile"] + "|0.1.0"]},
    }
    other = {"resourceType": row["resourceType"], "meta": {"profile": [row["profile"] + "-x"]}}
    assert is_true(evaluate(claims, row["when"]))
    assert is_true(evaluate(versioned, row["when"]))
    assert not is_true(evaluate(other, row["when"]))
    assert not any(is_true(evaluate(r, row["when"])) for r in sample_resources())


def test_a_handover_and_a_feedback_are_selected_by_content() -> None:
    handover = {
        "resourceType": "Task",
        "code": {
            "coding": [{"system": f"{BASE}/CodeSystem/task-type", "code": "coordinator-handover"}]
        },
    }
    feedback = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{BASE}/Questionnaire/stage-feedback",
    }
    chosen = {
        (r["resourceType"], r["profile"].removeprefix(SD))
        for r in content_rows()
        for resource in (handover, feedback)
        if r["resourceType"] == resource["resourceType"] and is_true(evaluate(resource, r["when"]))
    }
    assert chosen == {
        ("Task", "coordinator-handover"),
        ("QuestionnaireResponse", "client-feedback"),
    }
