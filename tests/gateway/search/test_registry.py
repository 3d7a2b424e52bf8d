"""Unit tests: the SearchParameter registry built from the R4 core definitions."""

from __future__ import annotations

from gateway.search.registry import params_for

REQUIRED = {
    "CarePlan": [
        "identifier",
        "patient",
        "subject",
        "status",
        "category",
        "date",
        "care-team",
        "goal",
        "intent",
        "based-on",
        "part-of",
    ],
    "Task": ["owner", "requester", "focus", "based-on", "part-of", "period", "code", "status"],
    "CareTeam": ["participant", "patient", "category", "date"],
    "Consent": ["actor", "organization", "patient", "period"],
}


def test_required_parameters_and_common_ones_exist() -> None:
    for rtype, codes in REQUIRED.items():
        params = params_for(rtype)
        for code in [*codes, "_id", "_lastUpdated", "_tag", "_profile", "_security"]:
            assert code in params, (rtype, code)


def test_multi_base_expression_is_split_per_type() -> None:
    patient = params_for("CarePlan")["patient"]
    assert patient.expression == "CarePlan.subject.where(resolve() is Patient)"
    assert patient.base == "CarePlan"
    assert "care plan" in patient.description.lower()


def test_types_not_served_have_no_parameters_of_their_own() -> None:
    assert "code" not in params_for("Observation")
