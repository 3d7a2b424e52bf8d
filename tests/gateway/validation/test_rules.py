"""Rules beyond the models: required bindings, reference targets, strict R4 JSON shape."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.validation.rules import rule_issues


def _paths(resource: dict[str, Any]) -> list[str]:
    return [i.expression[0] for i in rule_issues(resource["resourceType"], resource)]


def test_required_code_binding() -> None:
    assert _paths({"resourceType": "Task", "status": "bogus", "intent": "order"}) == ["Task.status"]
    assert _paths({"resourceType": "Task", "status": "ready", "intent": "order"}) == []


def test_nested_backbone_binding_has_indexed_path() -> None:
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/1"},
        "activity": [{"reference": {"reference": "Task/1"}}, {"detail": {"status": "nope"}}],
    }
    assert _paths(plan) == ["CarePlan.activity[1].detail.status"]


def test_binding_inside_a_datatype() -> None:
    patient = {"resourceType": "Patient", "telecom": [{"system": "pigeon", "value": "x"}]}
    assert _paths(patient) == ["Patient.telecom[0].system"]


@pytest.mark.parametrize(
    ("reference", "ok"),
    [
        ("Patient/1", True),
        ("Group/g-1/_history/2", True),
        ("http://other.example/fhir/Patient/7", True),
        ("urn:uuid:0b7e5d3c-8f0a-4a4e-9f7e-7c9b1e3e2a10", True),
        ("Patient?identifier=urn:oid:1.2.246.21|010101-123N", True),
        ("Practitioner/1", False),  # CarePlan.subject is Patient | Group
        ("http://other.example/fhir/Practitioner/7", False),
        ("Practitioner?identifier=x", False),
        ("Nope/1", False),  # no such resource type
        ("just-text", False),  # not Type/id
    ],
)
def test_reference_target_types(reference: str, ok: bool) -> None:
    plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan"}
    plan["subject"] = {"reference": reference}
    assert _paths(plan) == ([] if ok else ["CarePlan.subject"])


def test_reference_type_element_is_checked() -> None:
    task = {"resourceType": "Task", "status": "ready", "intent": "order"}
    task["for"] = {"type": "Patient", "identifier": {"value": "x"}}
    assert _paths(task) == []
    task["owner"] = {"type": "Goal", "identifier": {"value": "x"}}
    assert _paths(task) == ["Task.owner.type"]


def test_contained_references_and_resources() -> None:
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "contained": [
            {"resourceType": "Practitioner", "id": "p"},
            {
                "resourceType": "Goal",
                "id": "g",
                "lifecycleStatus": "x",
                "description": {"text": "d"},
                "subject": {"reference": "#p"},
            },
        ],
        "subject": {"reference": "#p"},  # contained Practitioner: not Patient | Group
        "goal": [{"reference": "#g"}, {"reference": "#missing"}],
    }
    assert sorted(_paths(plan)) == [
        "CarePlan.contained[1].lifecycleStatus",
        "CarePlan.contained[1].subject",
        "CarePlan.goal[1]",
        "CarePlan.subject",
    ]


def test_choice_and_extension_references() -> None:
    patient = {
        "resourceType": "Patient",
        "extension": [{"url": "http://e", "valueReference": {"reference": "Nope/1"}}],
        "_gender": {"extension": [{"url": "http://e", "valueQuantity": {"comparator": "~"}}]},
    }
    assert _paths(patient) == [
        "Patient.extension[0].valueReference",
        "Patient._gender.extension[0].valueQuantity.comparator",
    ]


@pytest.mark.parametrize(
    ("patient", "path"),
    [
        ({"gender": None}, "Patient.gender"),  # null outside an array
        ({"active": "true"}, "Patient.active"),  # string where JSON boolean
        ({"multipleBirthInteger": 2.0}, "Patient.multipleBirthInteger"),
        ({"name": []}, "Patient.name"),  # empty array
        ({"name": [{}]}, "Patient.name[0]"),  # empty object
        ({"name": [{"family": ""}]}, "Patient.name[0].family"),  # empty string
        ({"gender": ["male"]}, "Patient.gender"),  # array where one value
        ({"name": ["x"]}, "Patient.name[0]"),  # string where object
        ({"colour": "red"}, "Patient.colour"),  # not an R4 element
        ({"contained": [{"resourceType": "Nope"}]}, "Patient.contained[0].resourceType"),
        ({"text": {"status": "generated", "div": "<div>x</div>"}}, "Patient.text.div"),
    ],
)
def test_json_shape(patient: dict[str, Any], path: str) -> None:
    assert _paths({"resourceType": "Patient", **patient}) == [path]


def test_primitive_array_nulls_align_with_extensions() -> None:
    name = {"given": ["Aino", None], "_given": [None, {"extension": [{"url": "http://e",
        "valueString": "x"}]}]}  # fmt: skip
    assert _paths({"resourceType": "Patient", "name": [name]}) == []
