"""One test per rule kind of the StructureDefinition walker, each with a passing and a failing
instance, against minimal hand-written differentials shaped as SUSHI writes them."""

from __future__ import annotations

import re
from typing import Any

from gateway.validation.profiles import Catalog, profile_issues

BASE = "https://example.test/StructureDefinition/"
CORE = "http://hl7.org/fhir/StructureDefinition/"
VS = "https://example.test/ValueSet/"


def profile(type_: str, *elements: dict[str, Any], id_: str = "p") -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "url": BASE + id_,
        "name": f"Test{id_.title()}",
        "kind": "resource",
        "type": type_,
        "derivation": "constraint",
        "baseDefinition": CORE + type_,
        "differential": {"element": [{"id": type_, "path": type_}, *elements]},
    }


def el(id_: str, **rules: Any) -> dict[str, Any]:
    """A differential element; its path is the id without slice names."""
    return {"id": id_, "path": re.sub(r":[^.]*", "", id_), **rules}


def extension(id_: str, *elements: dict[str, Any]) -> dict[str, Any]:
    sd = profile("Extension", el("Extension.url", fixedUri=BASE + id_), *elements, id_=id_)
    sd["kind"] = "complex-type"
    return sd


CODES = {
    VS + "status": frozenset({("https://example.test/cs", "a"), ("https://example.test/cs", "b")})
}


def problems(resource: dict[str, Any], sd: dict[str, Any], *more: dict[str, Any]) -> list[str]:
    """`path: rule` of each issue when `resource` claims `sd` (the first profile given)."""
    catalog = Catalog([sd, *more], CODES.get)
    claimed = {**resource, "meta": {"profile": [sd["url"]]}}
    out = []
    for issue in profile_issues(claimed, catalog):
        label, _, rest = issue.diagnostics.partition(": ")
        # every issue names the profile (or the extension) whose rule it breaks
        assert any(d["name"] in label and d["url"] in label for d in (sd, *more))
        assert rest.startswith(issue.expression[0] + ": ")  # ... and the instance path
        out.append(rest)
    return out


def test_min_cardinality() -> None:
    sd = profile("CarePlan", el("CarePlan.subject", min=1))  # subject 1..1
    ok = {"resourceType": "CarePlan", "subject": {"reference": "Patient/1"}}
    assert problems(ok, sd) == []
    missing = {"resourceType": "CarePlan"}  # no subject
    assert problems(missing, sd) == ["CarePlan.subject: cardinality 1..1 (found 0)"]


def test_max_cardinality() -> None:
    sd = profile("CarePlan", el("CarePlan.careTeam", max="1"))  # careTeam 0..1 (base 0..*)
    one = {"resourceType": "CarePlan", "careTeam": [{"reference": "CareTeam/1"}]}
    assert problems(one, sd) == []
    two = {"resourceType": "CarePlan", "careTeam": [{"reference": "CareTeam/1"}] * 2}
    assert problems(two, sd) == ["CarePlan.careTeam: cardinality 0..1 (found 2)"]


def test_fixed_value() -> None:
    sd = profile("Task", el("Task.intent", fixedCode="order"))
    assert problems({"resourceType": "Task", "intent": "order"}, sd) == []
    assert problems({"resourceType": "Task", "intent": "plan"}, sd) == [
        'Task.intent: fixed value "order"'
    ]


def test_pattern_codeable_concept_is_contained() -> None:
    pattern = {"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}
    sd = profile("CareTeam", el("CareTeam.category", patternCodeableConcept=pattern))
    # More codings and a text are fine: the instance contains the pattern.
    other = {"system": "https://example.test/cs", "code": "x"}
    ok = {"coding": [other, pattern["coding"][0] | {"display": "Client network"}], "text": "t"}
    assert problems({"resourceType": "CareTeam", "category": [ok]}, sd) == []
    wrong = {"coding": [{"system": "http://loinc.org", "code": "LA27976-2"}]}  # another code
    assert problems({"resourceType": "CareTeam", "category": [wrong]}, sd) == [
        f"CareTeam.category[0]: pattern {_json(pattern)}"
    ]


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def test_required_binding_on_code() -> None:
    sd = profile(
        "Task", el("Task.status", binding={"strength": "required", "valueSet": VS + "status"})
    )
    assert problems({"resourceType": "Task", "status": "a"}, sd) == []
    assert problems({"resourceType": "Task", "status": "c"}, sd) == [
        f"Task.status: binding (required) to {VS}status"
    ]


def test_required_binding_on_codeable_concept_needs_one_coding_in_the_set() -> None:
    binding = {"strength": "required", "valueSet": VS + "status|1.0.0"}  # version ignored
    sd = profile("Task", el("Task.businessStatus", binding=binding))
    ok = {
        "coding": [{"system": "x", "code": "a"}, {"system": "https://example.test/cs", "code": "a"}]
    }
    assert problems({"resourceType": "Task", "businessStatus": ok}, sd) == []
    text_only = {"text": "waiting"}  # no coding at all
    wrong_system = {"coding": [{"system": "x", "code": "a"}]}  # the code, but not its system
    for bad in (text_only, wrong_system):
        assert problems({"resourceType": "Task", "businessStatus": bad}, sd) == [
            f"Task.businessStatus: binding (required) to {VS}status"
        ]


def test_preferred_binding_and_unknown_value_set_are_not_checked() -> None:
    preferred = el("Task.status", binding={"strength": "preferred", "valueSet": VS + "status"})
    unknown = el("Task.code", binding={"strength": "required", "valueSet": VS + "nowhere"})
    sd = profile("Task", preferred, unknown)
    task = {"resourceType": "Task", "status": "zzz", "code": {"text": "anything"}}
    assert problems(task, sd) == []


def test_reference_target_profile_restricts_the_type() -> None:
    owner = el(
        "Task.owner",
        type=[{"code": "Reference", "targetProfile": [CORE + "Organization", BASE + "role"]}],
    )
    role = profile("PractitionerRole", id_="role")  # our profile: stands for PractitionerRole
    sd = profile("Task", owner)
    for ok in ("Organization/o1", "PractitionerRole/r1", "urn:uuid:2b5c2f7e"):
        assert problems({"resourceType": "Task", "owner": {"reference": ok}}, sd, role) == []
    bad = {"resourceType": "Task", "owner": {"reference": "Patient/p1"}}
    assert problems(bad, sd, role) == [
        "Task.owner: type Reference(Organization|PractitionerRole), not Patient"
    ]


def test_choice_type_restriction() -> None:
    sd = profile("Goal", el("Goal.start[x]", type=[{"code": "date"}]))  # startDate only
    assert problems({"resourceType": "Goal", "startDate": "2024-01-01"}, sd) == []
    concept = {"resourceType": "Goal", "startCodeableConcept": {"text": "soon"}}
    assert problems(concept, sd) == ["Goal.startCodeableConcept: type: one of date"]


def test_extension_slice_counts_by_url_and_checks_the_value_type() -> None:
    review = extension("review", el("Extension.value[x]", type=[{"code": "date"}]))
    slot = el(
        "CarePlan.extension:review",
        sliceName="review",
        min=1,
        max="1",
        type=[{"code": "Extension", "profile": [BASE + "review"]}],
    )
    sd = profile("CarePlan", slot)
    other = {"url": "https://elsewhere.test/x", "valueString": "not ours"}  # open slicing
    ok = {
        "resourceType": "CarePlan",
        "extension": [other, {"url": BASE + "review", "valueDate": "2025-01-01"}],
    }
    assert problems(ok, sd, review) == []
    assert problems({"resourceType": "CarePlan", "extension": [other]}, sd, review) == [
        "CarePlan.extension: slice review cardinality 1..1 (found 0)"
    ]
    wrong_type = {"url": BASE + "review", "valueString": "soon"}
    assert problems({"resourceType": "CarePlan", "extension": [wrong_type]}, sd, review) == [
        "CarePlan.extension[0].valueString: type: one of date"
    ]


def test_invariant_at_the_root() -> None:
    rule = {
        "key": "ho-1",
        "severity": "error",
        "human": "a rejected handover has a reason",
        "expression": "status = 'rejected' implies statusReason.exists()",
    }
    warning = rule | {"key": "w-1", "severity": "warning", "expression": "false"}  # not checked
    sd = profile("Task")
    sd["differential"]["element"][0]["constraint"] = [rule, warning]
    reason = {"text": "no capacity"}
    assert (
        problems({"resourceType": "Task", "status": "rejected", "statusReason": reason}, sd) == []
    )
    assert problems({"resourceType": "Task", "status": "rejected"}, sd) == [
        "Task: invariant ho-1: a rejected handover has a reason"
    ]


def test_invariant_on_an_element_runs_per_item_with_resource_in_scope() -> None:
    rule = {
        "key": "p-1",
        "severity": "error",
        "human": "a member of an active team has a start",
        "expression": "%resource.status != 'active' or period.start.exists()",
    }
    sd = profile("CareTeam", el("CareTeam.participant", constraint=[rule]))
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "participant": [{"period": {"start": "2024"}}, {"period": {"end": "2024"}}],
    }
    assert problems(team, sd) == ["CareTeam.participant[1]: invariant p-1: " + rule["human"]]
    assert problems(team | {"status": "inactive"}, sd) == []


def test_an_invariant_that_cannot_be_evaluated_fails_closed() -> None:
    rule = {"key": "x-1", "severity": "error", "human": "adds a number", "expression": "name + 1"}
    sd = profile("CareTeam")
    sd["differential"]["element"][0]["constraint"] = [rule]
    # fhirpathpy raises on string + integer: an issue (never a 500), naming the invariant.
    assert problems({"resourceType": "CareTeam", "name": "Verkosto"}, sd) == [
        "CareTeam: invariant x-1: adds a number"
    ]
