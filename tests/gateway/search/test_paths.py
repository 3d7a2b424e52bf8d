"""Unit tests: compiled expression walkers (fast path) and the fhirpathpy fallback."""

from __future__ import annotations

from gateway.search.paths import compile_expression


def test_union_of_paths_collects_every_member() -> None:
    walk = compile_expression("CarePlan.basedOn | CarePlan.partOf", "CarePlan")
    plan = {"basedOn": [{"reference": "CarePlan/a"}], "partOf": [{"reference": "CarePlan/b"}]}
    assert walk(plan) == [{"reference": "CarePlan/a"}, {"reference": "CarePlan/b"}]


def test_where_resolve_keeps_only_references_of_that_type() -> None:
    walk = compile_expression("CarePlan.subject.where(resolve() is Patient)", "CarePlan")
    assert walk({"subject": {"reference": "Patient/1"}}) == [{"reference": "Patient/1"}]
    assert walk({"subject": {"reference": "Group/1"}}) == []
    absolute = {"subject": {"reference": "http://x/fhir/Patient/1"}}
    assert walk(absolute) == [absolute["subject"]]


def test_where_equals_filters_contact_points() -> None:
    walk = compile_expression("Patient.telecom.where(system='email')", "Patient")
    telecom = [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b.fi"}]
    assert walk({"telecom": telecom}) == [telecom[1]]


def test_cast_of_choice_element_picks_that_type_only() -> None:
    walk = compile_expression("(Goal.start as date)", "Goal")
    assert walk({"startDate": "2024-01-01"}) == ["2024-01-01"]
    assert walk({"startCodeableConcept": {"text": "x"}}) == []


def test_uncast_choice_element_walks_every_choice_key() -> None:
    walk = compile_expression("ServiceRequest.occurrence", "ServiceRequest")
    assert walk({"occurrencePeriod": {"start": "2024"}}) == [{"start": "2024"}]
    assert walk({"occurrenceDateTime": "2024-05-01"}) == ["2024-05-01"]


def test_resource_level_expression_applies_to_any_type() -> None:
    walk = compile_expression("Resource.meta.tag", "Task")
    assert walk({"meta": {"tag": [{"code": "x"}]}}) == [{"code": "x"}]


def test_unusual_expression_falls_back_to_fhirpath() -> None:
    walk = compile_expression("Patient.deceased.exists() and Patient.deceased != false", "Patient")
    assert walk({"resourceType": "Patient", "deceasedBoolean": True}) == [True]
    assert walk({"resourceType": "Patient"}) == [False]


def test_fallback_never_raises_on_engine_gaps() -> None:
    expr = "QuestionnaireResponse.item.where(hasExtension('http://x')).answer.value"
    walk = compile_expression(expr, "QuestionnaireResponse")
    item = {"linkId": "1", "extension": [{"url": "http://x", "valueBoolean": True}]}
    assert walk({"resourceType": "QuestionnaireResponse", "item": [item]}) == []
