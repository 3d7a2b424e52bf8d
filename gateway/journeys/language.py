"""The steps of a scripted client journey (samples/journeys/<name>/steps.json) and their tiny
language: reading and checking a steps file, `{{name}}` substitution, captures and expectations.

Pure functions over parsed JSON, no I/O but `read_journey`, no clock (`today` is passed in).
Errors name the place in the steps file (`steps[3].request.url`), never a response's content.

The language, whole:
- `{{name}}` in any string of a step's `request` is replaced by a value captured earlier, or by
  `{{today}}`, `{{today+14d}}`, `{{today-30d}}` (an ISO date relative to the replay day).
- `"capture": {"name": "<FHIRPath>"}` takes the first value of the expression on the JSON answer.
- `"expect": {"status": 200 | [200, 201], "contains": "text" | [...], "holds": ["<FHIRPath>"]}`:
  the status (default 200 or 201), text the answer must contain, FHIRPath expressions that must
  each be true on the JSON answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fhirpathpy import evaluate
from fhirpathpy.models import models

STEPS_FILE = "steps.json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
STEP_KEYS = {"title", "as", "actingRole", "purpose", "request", "expect", "capture"}
REQUEST_KEYS = {"method", "url", "body", "headers"}
EXPECT_KEYS = {"status", "contains", "holds"}
JOURNEY_KEYS = {"title", "client", "done", "steps"}
DONE_KEYS = {"as", "purpose", "search"}
DEFAULT_STATUS = (200, 201)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*)([+-]\d{1,4}d)?\s*\}\}")


class JourneyError(ValueError):
    """A steps file or a step that cannot be run; the message names where."""


@dataclass(frozen=True)
class Journey:
    """A journey directory: its bundles (loaded first, in name order) and its steps.

    `client` is the journey's Patient reference: when it exists but `done` finds nothing, an
    earlier replay stopped part-way. `done` is the search, as one organisation, that finds the
    journey's final effect: when it matches, the journey has been replayed and is skipped.
    """

    name: str
    path: Path
    title: str
    client: str
    done: dict[str, Any]
    steps: list[dict[str, Any]]
    bundles: list[Path] = field(default_factory=list)


def read_journey(path: Path) -> Journey:
    """The journey in directory `path` (its steps.json and bundles/*.json), checked."""
    try:
        doc = json.loads((path / STEPS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise JourneyError(f"{path.name}/{STEPS_FILE}: cannot be read: {e}") from None
    return replace(parse_journey(doc, path), bundles=sorted((path / "bundles").glob("*.json")))


def parse_journey(doc: Any, path: Path) -> Journey:
    """A parsed steps file checked for shape: unknown keys, missing fields and bad types."""
    _keys(doc, JOURNEY_KEYS, {"title", "client", "done", "steps"}, "")
    if not (isinstance(doc["client"], str) and doc["client"].startswith("Patient/")):
        raise JourneyError("client: a Patient reference, e.g. Patient/x")
    _keys(doc["done"], DONE_KEYS, {"as", "search"}, "done")
    if not isinstance(doc["steps"], list) or not doc["steps"]:
        raise JourneyError("steps: a non-empty list")
    for n, step in enumerate(doc["steps"]):
        check_step(step, f"steps[{n}]")
    return Journey(path.name, path, str(doc["title"]), doc["client"], doc["done"], doc["steps"])


def check_step(step: Any, where: str) -> None:
    _keys(step, STEP_KEYS, {"title", "as", "request"}, where)
    for name in ("title", "as", "purpose"):
        if name in step and not isinstance(step[name], str):
            raise JourneyError(f"{where}.{name}: a string")
    role = step.get("actingRole")
    if role is not None and not (isinstance(role, str) and role.startswith("PractitionerRole/")):
        raise JourneyError(f"{where}.actingRole: a PractitionerRole reference")
    request = step["request"]
    _keys(request, REQUEST_KEYS, {"method", "url"}, f"{where}.request")
    if request["method"] not in METHODS:
        raise JourneyError(f"{where}.request.method: one of {', '.join(METHODS)}")
    url = request["url"]
    if not isinstance(url, str) or url.startswith(("/", "http:", "https:")):
        raise JourneyError(f"{where}.request.url: a path relative to the FHIR base")
    _check_expect(step.get("expect", {}), f"{where}.expect")
    captures = step.get("capture", {})
    if not isinstance(captures, dict) or not all(isinstance(v, str) for v in captures.values()):
        raise JourneyError(f"{where}.capture: an object of name: FHIRPath")


def _check_expect(expect: Any, where: str) -> None:
    _keys(expect, EXPECT_KEYS, set(), where)
    if not all(isinstance(s, int) for s in as_list(expect.get("status", 200))):
        raise JourneyError(f"{where}.status: a status code or a list of them")
    for name in ("contains", "holds"):
        if not all(isinstance(v, str) for v in as_list(expect.get(name, []))):
            raise JourneyError(f"{where}.{name}: a string or a list of strings")


def _keys(value: Any, allowed: set[str], required: set[str], where: str) -> None:
    if not isinstance(value, dict):
        raise JourneyError(f"{where or 'steps file'}: an object")
    prefix = f"{where}." if where else ""
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise JourneyError(f"{prefix}{unknown[0]}: not a known field")
    missing = sorted(required - set(value))
    if missing:
        raise JourneyError(f"{prefix}{missing[0]}: required")


def substitute(value: Any, variables: dict[str, str], today: date, where: str = "") -> Any:
    """`value` with every `{{name}}` replaced (recursively through lists and objects)."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: _resolve(m, variables, today, where), value)
    if isinstance(value, list):
        return [substitute(v, variables, today, f"{where}[{n}]") for n, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: substitute(v, variables, today, f"{where}.{k}") for k, v in value.items()}
    return value


def _resolve(match: re.Match[str], variables: dict[str, str], today: date, where: str) -> str:
    name, shift = match.group(1), match.group(2)
    if name == "today":
        days = int(shift[:-1]) if shift else 0
        return (today + timedelta(days=days)).isoformat()
    if shift:
        raise JourneyError(f"{where}: only {{{{today}}}} takes a +Nd/-Nd shift")
    if name not in variables:
        raise JourneyError(f"{where}: '{{{{{name}}}}}' was not captured by an earlier step")
    return variables[name]


def fhirpath(body: Any, expression: str, where: str) -> list[Any]:
    """The values of a FHIRPath expression on a JSON answer (R4 model, so `value` choices work)."""
    if not isinstance(body, dict):
        return []
    try:
        return list(evaluate(body, expression, model=models["r4"]))
    except Exception as e:  # fhirpathpy raises bare exceptions for syntax errors
        raise JourneyError(f"{where}: the FHIRPath does not evaluate: {type(e).__name__}") from None


def capture(body: Any, captures: dict[str, str], where: str) -> dict[str, str]:
    """name -> the first (primitive) value of each expression; an error when one finds nothing."""
    out: dict[str, str] = {}
    for name, expression in captures.items():
        found = fhirpath(body, expression, f"{where}.capture.{name}")
        if not found or isinstance(found[0], (dict, list)):
            raise JourneyError(f"{where}.capture.{name}: '{expression}' found no value")
        out[name] = str(found[0])
    return out


def problems(status: int, text: str, body: Any, expect: dict[str, Any], where: str) -> list[str]:
    """What in an answer differs from the step's expectation (empty: as expected). The lines
    name the expectation, never the answer's content."""
    wanted = as_list(expect.get("status", list(DEFAULT_STATUS)))
    if status not in wanted:
        return [f"{where}.status: expected {' or '.join(map(str, wanted))}, got {status}"]
    out = []
    for needle in as_list(expect.get("contains", [])):
        if needle not in text:
            out.append(f"{where}.contains: '{needle}' is not in the answer")
    for expression in as_list(expect.get("holds", [])):
        if fhirpath(body, expression, f"{where}.holds") != [True]:
            out.append(f"{where}.holds: '{expression}' is not true")
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
