"""Our CodeSystems and ValueSets: Finnish displays with English designations, every code the
samples use exists, ValueSets expand, and the loader answers displays in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import fhir_profiles
from tests.fhir_profiles.samples import sample_resources

BASE = "https://fhir-plan-gateway.example"
CODE_SYSTEMS = (
    "coordinator-role",
    "professional-role",
    "network-organization-type",
    "service-kind",
    "handover-reason",
    "business-status",
    "plan-category",
    "task-type",
    "lasting-solution",
    "security-label",
    "data-origin",
    "feedback-stage",
    "peer-support-answer",
    "summary-section",
)


def codings(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        if isinstance(value.get("system"), str) and isinstance(value.get("code"), str):
            yield value["system"], value["code"]
        for item in value.values():
            yield from codings(item)
    elif isinstance(value, list):
        for item in value:
            yield from codings(item)


def test_every_planned_code_system_has_a_value_set_with_the_same_id() -> None:
    systems = fhir_profiles.code_systems()
    assert set(systems) == {f"{BASE}/CodeSystem/{cs}" for cs in CODE_SYSTEMS}
    for cs in CODE_SYSTEMS:
        assert fhir_profiles.expand(f"{BASE}/ValueSet/{cs}") == {
            (f"{BASE}/CodeSystem/{cs}", c["code"])
            for c in systems[f"{BASE}/CodeSystem/{cs}"]["concept"]
        }


@pytest.mark.parametrize("url", sorted(fhir_profiles.code_systems()))
def test_every_concept_has_a_finnish_display_and_an_english_designation(url: str) -> None:
    system = fhir_profiles.code_systems()[url]
    assert system["language"] == "fi"
    assert system["content"] == "complete"
    assert system["count"] == len(system["concept"])
    for concept in system["concept"]:
        english = [d["value"] for d in concept.get("designation", []) if d.get("language") == "en"]
        assert concept.get("display"), concept["code"]
        assert len(english) == 1 and english[0], concept["code"]
        assert fhir_profiles.display(url, concept["code"]) == concept["display"]
        assert fhir_profiles.display(url, concept["code"], "en") == english[0]


def test_every_local_code_in_the_samples_exists() -> None:
    systems = fhir_profiles.code_systems()
    used = {(s, c) for r in sample_resources() for s, c in codings(r) if s.startswith(BASE)}
    assert used, "the samples use local codes"
    missing = sorted(
        (s, c)
        for s, c in used
        if c not in {x["code"] for x in systems.get(s, {}).get("concept", [])}
    )
    assert missing == []


def test_displays_in_both_languages() -> None:
    role = f"{BASE}/CodeSystem/coordinator-role"
    assert fhir_profiles.display(role, "asiakasvastaava") == "Asiakasvastaava"
    assert fhir_profiles.display(role, "asiakasvastaava", "en") == "Named client coordinator"
    assert fhir_profiles.display(role, "no-such-code") is None
    assert fhir_profiles.display(role, "asiakasvastaava", "sv") is None
    assert fhir_profiles.display("http://loinc.org", "LA28865-6") is None


def test_client_security_labels_include_turvakielto_and_v3_confidentiality() -> None:
    codes = fhir_profiles.expand(f"{BASE}/ValueSet/client-security-label")
    v3 = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    assert {(f"{BASE}/CodeSystem/security-label", "turvakielto"), (v3, "R"), (v3, "V")} <= codes
    assert (f"{BASE}/CodeSystem/data-origin", "sample") not in codes


def test_expand_reads_core_value_sets_and_ignores_a_version_suffix() -> None:
    assert ("http://hl7.org/fhir/task-status", "rejected") in fhir_profiles.expand(
        "http://hl7.org/fhir/ValueSet/task-status"
    )
    plain = fhir_profiles.expand(f"{BASE}/ValueSet/business-status")
    assert fhir_profiles.expand(f"{BASE}/ValueSet/business-status|0.1.0") == plain


def test_expand_refuses_what_it_cannot_expand() -> None:
    with pytest.raises(KeyError):
        fhir_profiles.expand("http://example.org/ValueSet/unknown")
    with pytest.raises(ValueError):
        fhir_profiles._include({"system": "http://loinc.org", "filter": [{"op": "is-a"}]})
    with pytest.raises(LookupError):
        fhir_profiles._include({"system": "http://loinc.org"})
    listed = {"system": "http://loinc.org", "concept": [{"code": "34133-9"}]}
    assert fhir_profiles._include(listed) == {("http://loinc.org", "34133-9")}


def test_every_binding_in_our_profiles_expands() -> None:
    for url, sd in fhir_profiles.structure_definitions().items():
        for element in sd["differential"]["element"]:
            if binding := element.get("binding"):
                assert binding["strength"] == "required", (url, element["id"])
                assert fhir_profiles.expand(binding["valueSet"]), (url, element["id"])


def test_stage_feedback_questionnaire_asks_the_stage_from_feedback_stage() -> None:
    url = f"{BASE}/Questionnaire/stage-feedback"
    questionnaire = fhir_profiles.questionnaire(url)
    assert questionnaire is not None
    assert fhir_profiles.questionnaire(url + "|0.1.0") is questionnaire
    assert fhir_profiles.questionnaire(f"{BASE}/Questionnaire/none") is None
    items = {item["linkId"]: item for item in questionnaire["item"]}
    assert items["stage"]["answerValueSet"] == f"{BASE}/ValueSet/feedback-stage"
    assert items["stage"]["required"] and items["feedback"]["type"] == "text"
    for item in items.values():
        (translation,) = item["_text"]["extension"]
        assert {"url": "lang", "valueCode": "en"} in translation["extension"]
