"""Data only: FHIR definitions this gateway uses (R4 core subset, our profiles, CodeSystems,
SearchParameters, CapabilityStatement base), each defined once and loaded from here.

Our profiles, extensions, CodeSystems, ValueSets and Questionnaire are written in FSH (fsh/)
and compiled by SUSHI into profiles/ (`python -m fhir_profiles.build_profiles`; README.md):
`structure_definitions()`, `code_systems()`, `value_sets()`, `expand(url)`, `display(system,
code, lang)`, `questionnaire(url)` and `selection()` (which resources must conform to which
profile) read them. This package imports nothing of the project; it only reads its own JSON
files (build_profiles.py runs npm and SUSHI, and is never imported by the gateway).
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).parent
# Our canonical URL base (fsh/sushi-config.yaml `canonical`): CodeSystems, ValueSets,
# StructureDefinitions, OperationDefinitions and identifier systems live under it.
CANONICAL = "https://fhir-plan-gateway.example"


@cache
def load(relative: str) -> Any:
    """Parsed JSON of a data file in this package, e.g. `load("core/search-parameters.json")`.

    A `.json.gz` twin is read when the plain file is absent (large core subsets ship gzipped).
    """
    path = ROOT / relative
    if not path.exists() and (gz := path.with_name(path.name + ".gz")).exists():
        return orjson.loads(gzip.decompress(gz.read_bytes()))
    return orjson.loads(path.read_bytes())


# Our profiles and terminology, compiled from fsh/ by SUSHI (build_profiles.py) into profiles/.
PROFILES = ROOT / "profiles"
Coding = tuple[str, str]  # (system, code)


def _compiled(resource_type: str) -> dict[str, dict[str, Any]]:
    """Compiled resources of one type in profiles/, by canonical URL."""
    out = {}
    for path in sorted(PROFILES.glob(f"{resource_type}-*.json")):
        resource = load(f"profiles/{path.name}")
        out[resource["url"]] = resource
    return out


@cache
def structure_definitions() -> dict[str, dict[str, Any]]:
    """Our profiles and extensions (SUSHI's differential form) by URL. Do not mutate."""
    return _compiled("StructureDefinition")


@cache
def code_systems() -> dict[str, dict[str, Any]]:
    """Our CodeSystems by URL (Finnish displays, English designations). Do not mutate."""
    return _compiled("CodeSystem")


@cache
def value_sets() -> dict[str, dict[str, Any]]:
    """Our ValueSets by URL (compose only; `expand()` expands them). Do not mutate."""
    return _compiled("ValueSet")


@cache
def questionnaires() -> dict[str, dict[str, Any]]:
    """Our Questionnaires by URL."""
    return _compiled("Questionnaire")


def questionnaire(url: str) -> dict[str, Any] | None:
    """The Questionnaire with this canonical URL (a `|version` suffix is ignored), or None."""
    return questionnaires().get(url.split("|", 1)[0])


def selection() -> list[dict[str, str]]:
    """Which resources must conform to which profile: rows `{resourceType, when, profile}`,
    `when` a FHIRPath boolean on the resource; every matching row applies."""
    return load("profiles/selection.json")["rows"]


def _concepts(concepts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The concepts of a CodeSystem, nested ones included, in order."""
    out = []
    for concept in concepts:
        out.append(concept)
        out.extend(_concepts(concept.get("concept", [])))
    return out


def _include(part: dict[str, Any]) -> frozenset[Coding]:
    """The codes one compose.include (or exclude) names: the intersection of its system part
    (listed concepts or the whole CodeSystem) and its ValueSets."""
    if part.get("filter"):
        raise ValueError(f"ValueSet filters are not supported: {part['filter']!r}")
    sets = [expand(url) for url in part.get("valueSet", [])]
    if system := part.get("system"):
        if listed := part.get("concept"):
            sets.append(frozenset((system, c["code"]) for c in listed))
        elif system in code_systems():
            codes = _concepts(code_systems()[system].get("concept", []))
            sets.append(frozenset((system, c["code"]) for c in codes))
        else:
            raise LookupError(f"CodeSystem {system} is not ours: list its codes in the ValueSet")
    return frozenset.intersection(*sets) if sets else frozenset()


@cache
def expand(valueset_url: str) -> frozenset[Coding]:
    """(system, code) pairs in one of our ValueSets, or a core one with a required binding
    (core/bindings.json.gz `valueSets`). KeyError for a ValueSet known to neither."""
    url = valueset_url.split("|", 1)[0]
    if (ours := value_sets().get(url)) is None:
        core = load("core/bindings.json")["valueSets"].get(url)
        if core is None:
            raise KeyError(f"unknown ValueSet {valueset_url}")
        return frozenset((system, code) for system, code in core)
    compose = ours.get("compose", {})
    included = frozenset().union(*(_include(p) for p in compose.get("include", [])))
    excluded = frozenset().union(*(_include(p) for p in compose.get("exclude", [])))
    return included - excluded


@cache
def _displays() -> dict[tuple[str, str, str], str]:
    out = {}
    for url, system in code_systems().items():
        language = system.get("language", "fi")
        for concept in _concepts(system.get("concept", [])):
            if "display" in concept:
                out[(url, concept["code"], language)] = concept["display"]
            for designation in concept.get("designation", []):
                if "language" in designation and "value" in designation:
                    out.setdefault(
                        (url, concept["code"], designation["language"]), designation["value"]
                    )
    return out


def display(system: str, code: str, lang: str = "fi") -> str | None:
    """The display of one of our codes in Finnish (`fi`) or English (`en`); None if unknown."""
    return _displays().get((system, code, lang))


@cache
def load_topics_data() -> dict[str, dict[str, Any]]:
    """Our SubscriptionTopics (topics/*.json, R4B-shaped, kept as JSON: SubscriptionTopic is not
    an R4 resource, so SUSHI cannot compile them) by canonical URL. Do not mutate."""
    out = {}
    for path in sorted((ROOT / "topics").glob("SubscriptionTopic-*.json")):
        topic = load(f"topics/{path.name}")
        out[topic["url"]] = topic
    return out
