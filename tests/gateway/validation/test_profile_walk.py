"""The walker's reach: nested paths through arrays (counted per parent item), instance paths in
messages, value-discriminated and closed slicing, choice slices and complex extensions."""

from __future__ import annotations

from tests.gateway.validation.test_profile_rules import BASE, el, extension, problems, profile


def test_nested_min_applies_per_existing_parent_item() -> None:
    # participant.period 1..1 and participant.period.start 1..1: per participant present.
    sd = profile(
        "CareTeam",
        el("CareTeam.participant.period", min=1),
        el("CareTeam.participant.period.start", min=1),
    )
    assert problems({"resourceType": "CareTeam"}, sd) == []  # no participant: nothing to count
    team = {
        "resourceType": "CareTeam",
        "participant": [
            {"period": {"start": "2024-01-01"}},  # fine
            {"period": {"end": "2024-02-01"}},  # period without start
            {"role": [{"text": "x"}]},  # no period
        ],
    }
    assert problems(team, sd) == [
        "CareTeam.participant[1].period.start: cardinality 1..1 (found 0)",
        "CareTeam.participant[2].period: cardinality 1..1 (found 0)",
    ]


def test_path_through_single_valued_datatypes() -> None:
    sd = profile("Task", el("Task.restriction.period.end", min=1))  # the due date
    due = {"resourceType": "Task", "restriction": {"period": {"end": "2025-01-01"}}}
    assert problems(due, sd) == []
    no_end = {"resourceType": "Task", "restriction": {"period": {"start": "2025-01-01"}}}
    assert problems(no_end, sd) == ["Task.restriction.period.end: cardinality 1..1 (found 0)"]


def test_slice_by_fixed_system_value() -> None:
    sote = "urn:oid:1.2.246.537.6.202.2008"
    sd = profile(
        "Organization",
        el(
            "Organization.identifier",
            slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "open"},
        ),
        el("Organization.identifier:sote", sliceName="sote", min=1, max="1"),
        el("Organization.identifier:sote.system", fixedUri=sote),
        el("Organization.identifier:sote.value", min=1),
    )
    other = {"system": "https://example.test/ids", "value": "7"}  # open: others allowed
    ok = {"resourceType": "Organization", "identifier": [other, {"system": sote, "value": "1"}]}
    assert problems(ok, sd) == []
    assert problems({"resourceType": "Organization", "identifier": [other]}, sd) == [
        "Organization.identifier: slice sote cardinality 1..1 (found 0)"
    ]
    no_value = {"resourceType": "Organization", "identifier": [{"system": sote}]}
    assert problems(no_value, sd) == [
        "Organization.identifier[0].value: cardinality 1..1 (found 0)"
    ]


def test_closed_slicing_refuses_items_outside_every_slice() -> None:
    sd = profile(
        "Consent",
        el(
            "Consent.category",
            slicing={"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "closed"},
        ),
        el(
            "Consent.category:loinc",
            sliceName="loinc",
            patternCodeableConcept={"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
        ),
    )
    loinc = {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}
    assert problems({"resourceType": "Consent", "category": [loinc]}, sd) == []
    other = {"text": "something else"}
    assert problems({"resourceType": "Consent", "category": [loinc, other]}, sd) == [
        "Consent.category[1]: slicing closed: the item fits no slice"
    ]


def test_choice_slice_by_type() -> None:
    # SUSHI writes `value[x]:valueCoding` when one type of a choice gets its own rules.
    sd = profile(
        "Observation",
        el("Observation.value[x]:valueCoding", sliceName="valueCoding"),
        el("Observation.value[x]:valueCoding.system", fixedUri="https://example.test/cs"),
    )
    coded = {"resourceType": "Observation", "valueCoding": {"system": "https://example.test/cs"}}
    assert problems(coded, sd) == []
    assert problems({"resourceType": "Observation", "valueString": "x"}, sd) == []  # not the slice
    other = {"resourceType": "Observation", "valueCoding": {"system": "https://other.test"}}
    assert problems(other, sd) == [
        'Observation.valueCoding.system: fixed value "https://example.test/cs"'
    ]


def test_complex_extension_checks_its_parts() -> None:
    # peer-support-offer: `answer` 1..1 Coding, `date` 0..1 dateTime; no value[x] of its own.
    offer = extension(
        "offer",
        el("Extension.extension:answer", sliceName="answer", min=1, max="1"),
        el("Extension.extension:answer.url", fixedUri="answer"),
        el("Extension.extension:answer.value[x]", type=[{"code": "Coding"}]),
        el("Extension.extension:date", sliceName="date", max="1"),
        el("Extension.extension:date.url", fixedUri="date"),
        el("Extension.extension:date.value[x]", type=[{"code": "dateTime"}]),
        el("Extension.value[x]", max="0"),
    )
    slot = el(
        "CarePlan.extension:offer",
        sliceName="offer",
        max="1",
        type=[{"code": "Extension", "profile": [BASE + "offer"]}],
    )
    sd = profile("CarePlan", slot)
    answer = {"url": "answer", "valueCoding": {"code": "tarjottu"}}
    good = {"url": BASE + "offer", "extension": [answer, {"url": "date", "valueDateTime": "2025"}]}
    assert problems({"resourceType": "CarePlan", "extension": [good]}, sd, offer) == []
    bad = {
        "url": BASE + "offer",
        "extension": [{"url": "date", "valueString": "soon"}],  # no answer; date as a string
        "valueBoolean": True,  # a complex extension has no value of its own
    }
    assert problems({"resourceType": "CarePlan", "extension": [bad]}, sd, offer) == [
        "CarePlan.extension[0].extension: slice answer cardinality 1..1 (found 0)",
        "CarePlan.extension[0].extension[0].valueString: type: one of dateTime",
        "CarePlan.extension[0].value[x]: cardinality 0..0 (found 1)",
    ]


def test_derived_profile_brings_its_base_profile() -> None:
    parent = profile("Task", el("Task.intent", fixedCode="order"), id_="parent")
    child = profile("Task", el("Task.for", min=1), id_="child")
    child["baseDefinition"] = parent["url"]
    task = {"resourceType": "Task", "intent": "plan"}  # breaks both
    rules = sorted(problems(task, child, parent))
    assert rules == ["Task.for: cardinality 1..1 (found 0)", 'Task.intent: fixed value "order"']
