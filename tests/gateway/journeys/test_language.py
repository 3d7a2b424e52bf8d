"""The journey step language: substitution, captures, expectations and the steps-file checks."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.journeys.language import (
    JourneyError,
    capture,
    parse_journey,
    problems,
    substitute,
)

TODAY = date(2026, 11, 22)
TASK = {"resourceType": "Task", "id": "t1", "status": "requested"}
SEARCH = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": TASK}]}
ROLE = "PractitionerRole/r1"
ANSWER = {
    "resourceType": "Parameters",
    "parameter": [{"name": "coordinator", "valueReference": {"reference": ROLE}}],
}


def step(**more: Any) -> dict[str, Any]:
    return {"title": "t", "as": "org", "request": {"method": "GET", "url": "Task"}, **more}


def journey(**more: Any) -> dict[str, Any]:
    doc = {
        "title": "j",
        "client": "Patient/p",
        "done": {"as": "org", "search": "Composition?subject=Patient/p"},
        "steps": [step()],
    }
    return {**doc, **more}


def test_substitute_fills_captures_and_dates_through_lists_and_objects() -> None:
    body = {
        "url": "Task/{{task}}",
        "list": ["{{today}}", "{{ today+14d }}", "{{today-1d}}"],
        "n": 3,
    }
    out = substitute(body, {"task": "t1"}, TODAY)
    assert out == {
        "url": "Task/t1",
        "list": ["2026-11-22", "2026-12-06", "2026-11-21"],
        "n": 3,  # non-strings untouched
    }


def test_substitute_refuses_an_uncaptured_name_and_a_shift_on_a_capture() -> None:
    with pytest.raises(JourneyError, match=r"request\.url: '\{\{task\}\}' was not captured"):
        substitute("Task/{{task}}", {}, TODAY, "request.url")
    with pytest.raises(JourneyError, match="only"):
        substitute("{{task+1d}}", {"task": "t1"}, TODAY)


def test_capture_takes_the_first_value_of_a_fhirpath() -> None:
    assert capture(TASK, {"task": "Task.id"}, "steps[0]") == {"task": "t1"}
    found = capture(SEARCH, {"task": "Bundle.entry.resource.ofType(Task).id"}, "steps[0]")
    assert found == {"task": "t1"}
    assert capture(ANSWER, {"c": "parameter.where(name = 'coordinator').value.reference"}, "s")
    with pytest.raises(JourneyError, match=r"steps\[2\]\.capture\.task: 'Task\.owner' found"):
        capture(TASK, {"task": "Task.owner"}, "steps[2]")
    with pytest.raises(JourneyError, match="found no value"):  # not a primitive
        capture(TASK, {"task": "Task"}, "steps[2]")


def test_problems_checks_status_text_and_fhirpath_without_echoing_the_answer() -> None:
    assert problems(200, "", ANSWER, {}, "s") == []  # default: 200 or 201
    assert problems(409, "", None, {}, "s") == ["s.status: expected 200 or 201, got 409"]
    assert problems(409, "", None, {"status": 409}, "s") == []
    holds = [f"Parameters.parameter.where(name = 'coordinator').value.reference = '{ROLE}'"]
    assert problems(200, "", ANSWER, {"holds": holds}, "s") == []
    other = [holds[0].replace("r1", "r2")]
    assert problems(200, "", ANSWER, {"holds": other}, "s") == [
        f"s.holds: '{other[0]}' is not true"
    ]
    assert problems(200, "<p>Riitta</p>", None, {"contains": "Riitta"}, "s") == []
    assert problems(200, "<p>x</p>", None, {"contains": ["Riitta"]}, "s") == [
        "s.contains: 'Riitta' is not in the answer"
    ]
    # An answer that is not JSON makes every FHIRPath false, never an error.
    assert problems(200, "<p/>", None, {"holds": holds}, "s") == [
        f"s.holds: '{holds[0]}' is not true"
    ]


def test_a_fhirpath_that_does_not_parse_is_a_journey_error() -> None:
    with pytest.raises(JourneyError, match=r"s\.holds: the FHIRPath does not evaluate"):
        problems(200, "", ANSWER, {"holds": ["parameter.where("]}, "s")


def test_parse_journey_accepts_a_well_formed_file() -> None:
    parsed = parse_journey(journey(), Path("/x/eura"))
    assert (parsed.name, parsed.client, len(parsed.steps)) == ("eura", "Patient/p", 1)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (journey(extra=1), r"^extra: not a known field"),
        ({**journey(), "done": {"as": "org"}}, r"^done\.search: required"),
        (journey(client="p"), r"^client: a Patient reference"),
        (journey(steps=[]), r"^steps: a non-empty list"),
        (journey(steps=[step(asOrg="x")]), r"^steps\[0\]\.asOrg: not a known field"),
        (journey(steps=[{"title": "t", "as": "o"}]), r"^steps\[0\]\.request: required"),
        (
            journey(steps=[step(request={"method": "GET", "url": "http://x/Task"})]),
            r"^steps\[0\]\.request\.url: a path relative",
        ),
        (
            journey(steps=[step(request={"method": "FETCH", "url": "Task"})]),
            r"^steps\[0\]\.request\.method: one of",
        ),
        (journey(steps=[step(actingRole="role-x")]), r"actingRole: a PractitionerRole reference"),
        (journey(steps=[step(expect={"status": "200"})]), r"expect\.status: a status code"),
        (journey(steps=[step(expect={"holds": [1]})]), r"expect\.holds: a string or a list"),
        (journey(steps=[step(expect={"body": {}})]), r"expect\.body: not a known field"),
        (journey(steps=[step(capture={"t": 1})]), r"capture: an object of name: FHIRPath"),
    ],
)
def test_parse_journey_names_what_is_wrong(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(JourneyError, match=message):
        parse_journey(doc, Path("/x/eura"))
