"""The R4 core tables in fhir_profiles/core/ hold what the rules rely on."""

from __future__ import annotations

from fhir_profiles import load
from gateway.fhir_api.context import RESOURCE_TYPES
from gateway.validation.definitions import plans


def test_bindings_come_from_the_core_value_sets() -> None:
    bindings = load("core/bindings.json")
    task_status = bindings["valueSets"][bindings["elements"]["Task.status"]]
    assert ["http://hl7.org/fhir/task-status", "in-progress"] in task_status
    assert "http://hl7.org/fhir/ValueSet/mimetypes" in bindings["skipped"]  # BCP-13: not expandable


def test_reference_targets() -> None:
    references = load("core/references.json")
    assert references["CarePlan.subject"] == ["Group", "Patient"]
    assert references["Task.focus"] == []  # Reference(Any)


def test_every_served_type_has_a_plan() -> None:
    assert all(plans()[t] for t in RESOURCE_TYPES)
