"""The sample resources (samples/bundles/*.json) the profile tests run against."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fhirpathpy import compile as fhirpath
from fhirpathpy.models import models

BUNDLES = Path(__file__).parents[2] / "samples" / "bundles"
MODELS = {"no model": None, "r4 model": models["r4"]}
Resource = dict[str, Any]


@cache
def sample_resources() -> tuple[Resource, ...]:
    """Every resource of every sample transaction Bundle, in file order."""
    out = []
    for path in sorted(BUNDLES.glob("*.json")):
        out.extend(e["resource"] for e in json.loads(path.read_text("utf-8"))["entry"])
    return tuple(out)


def of_type(resource_type: str) -> list[Resource]:
    return [r for r in sample_resources() if r["resourceType"] == resource_type]


def evaluate(resource: Resource, expression: str, model: dict[str, Any] | None = None) -> list:
    """The FHIRPath result on `resource` (compiled fresh: errors surface at compile time)."""
    return fhirpath(expression, model)(resource, {})


def is_true(result: list) -> bool:
    return result == [True]
