"""Which profiles apply (the selection table's FHIRPath `when`, and our URLs in meta.profile),
and the hook in the write validator: one 400 OperationOutcome listing every profile issue."""

from __future__ import annotations

import pytest

from gateway.errors import Category, FhirError
from gateway.validation import profiles
from gateway.validation.profiles import Catalog, profile_issues
from gateway.validation.validator import Validator
from tests.gateway.validation.test_profile_rules import CODES, el, profile

NETWORK = profile("CareTeam", el("CareTeam.subject", min=1), id_="network")
SELECTION = [
    {
        "resourceType": "CareTeam",
        "when": "category.coding.where(system = 'http://loinc.org' and code = 'LA28865-6')"
        ".exists()",
        "profile": NETWORK["url"],
    }
]
CATEGORY = [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}]


def _catalog() -> Catalog:
    return Catalog([NETWORK], CODES.get, SELECTION)


def test_selected_by_its_when_expression_whatever_it_claims() -> None:
    team = {"resourceType": "CareTeam", "category": CATEGORY}  # selected, no subject
    [issue] = profile_issues(team, _catalog())
    assert issue.expression == ("CareTeam.subject",)
    assert issue.diagnostics == (
        f"profile TestNetwork ({NETWORK['url']}): CareTeam.subject: cardinality 1..1 (found 0)"
    )
    assert profile_issues({"resourceType": "CareTeam"}, _catalog()) == []  # not selected


def test_unknown_profile_urls_are_ignored_ours_are_enforced() -> None:
    elsewhere = {"resourceType": "CareTeam", "meta": {"profile": ["http://other.test/SD/x"]}}
    assert profile_issues(elsewhere, _catalog()) == []
    ours = {"resourceType": "CareTeam", "meta": {"profile": [NETWORK["url"] + "|0.1.0"]}}
    assert [i.expression for i in profile_issues(ours, _catalog())] == [("CareTeam.subject",)]


def test_claiming_a_profile_of_another_resource_type_is_an_issue() -> None:
    task = {"resourceType": "Task", "meta": {"profile": [NETWORK["url"]]}}
    [issue] = profile_issues(task, _catalog())
    assert issue.expression == ("Task.meta.profile[0]",)
    assert "is for CareTeam, not Task" in issue.diagnostics


def test_selected_and_claimed_profile_is_checked_once() -> None:
    team = {"resourceType": "CareTeam", "category": CATEGORY, "meta": {"profile": [NETWORK["url"]]}}
    assert len(profile_issues(team, _catalog())) == 1


def test_validator_refuses_with_every_profile_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    strict = profile(
        "CareTeam", el("CareTeam.subject", min=1), el("CareTeam.name", min=1), id_="network"
    )
    catalog = Catalog([strict], CODES.get, SELECTION)
    monkeypatch.setattr(profiles, "default_catalog", lambda: catalog)
    team = {"resourceType": "CareTeam", "category": CATEGORY}
    with pytest.raises(FhirError) as caught:
        Validator().validate_resource(team, None)
    assert caught.value.category is Category.INVALID and caught.value.status == 400
    expressions = [i.expression[0] for i in caught.value.issues]
    assert sorted(expressions) == ["CareTeam.name", "CareTeam.subject"]
    outcome = caught.value.outcome()["issue"]
    assert {i["code"] for i in outcome} == {"required"}
    fine = team | {"subject": {"reference": "Patient/1"}, "name": "Verkosto"}
    assert Validator().validate_resource(fine, None)["name"] == "Verkosto"


def test_structure_problems_come_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiles, "default_catalog", _catalog)
    team = {"resourceType": "CareTeam", "category": CATEGORY, "colour": "red"}
    with pytest.raises(FhirError) as caught:
        Validator().validate_resource(team, None)
    assert [i.expression for i in caught.value.issues] == [("CareTeam.colour",)]
