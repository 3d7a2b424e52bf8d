"""The cost of validation on write against our profiles: µs per validation of a sample CareTeam,
CarePlan and Patient (samples/bundles), structure-only (fhir.resources + rules.py) against the
full write validator (structure + profiles), in alternating rounds of the same run; and profiles
with every invariant in fhirpathpy (profile_native's fast path off) beside the default; last,
µs per resource over the transaction Bundle that bench/run.py's ingest phase posts.

    .venv/bin/python bench/profile_validation.py [--rounds 5] [--n 300]

Read the ratios: the machine is shared, absolute numbers move from run to run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fhir_profiles
from bench import data
from gateway.validation import profile_native
from gateway.validation.profiles import Catalog, default_catalog, profile_issues
from gateway.validation.rules import rule_issues
from gateway.validation.validator import Validator, structure_issues

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "bundles"


def sample(resource_type: str) -> dict[str, Any]:
    """The first sample resource of this type (from samples/bundles)."""
    for path in sorted(SAMPLES.glob("*.json")):
        for entry in orjson.loads(path.read_bytes()).get("entry", []):
            if entry["resource"]["resourceType"] == resource_type:
                return dict(entry["resource"])
    raise SystemExit(f"no sample {resource_type} in {SAMPLES}")


def structure_only(resource: dict[str, Any]) -> None:
    rtype = resource["resourceType"]
    assert not structure_issues(rtype, resource) and not rule_issues(rtype, resource)


def _per_call_us(fn: Callable[[Any], Any], resource: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn(resource)
    return (time.perf_counter() - start) / n * 1e6


def _each(fn: Callable[[dict[str, Any]], Any]) -> Callable[[list[dict[str, Any]]], None]:
    def run(resources: list[dict[str, Any]]) -> None:
        for r in resources:
            fn(r)

    return run


def measure_bundle(rounds: int) -> dict[str, float]:
    """µs per resource over bench/data's ingest transaction (Patients, CareTeams, CarePlans)."""
    resources = [e["resource"] for e in data.post_bundle(data.BUNDLE_GROUPS, 0)["entry"]]
    validator, slow = Validator(), fhirpath_only_catalog()
    kinds = {
        "structure only": _each(structure_only),
        "profiles only": _each(profile_issues),
        "profiles only, fhirpathpy": _each(lambda r: profile_issues(r, slow)),
        "full (structure + profiles)": _each(lambda r: validator.validate_resource(r, r.get("id"))),
    }
    for fn in kinds.values():
        fn(resources)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for name, fn in kinds.items():
            times[name].append(_per_call_us(fn, resources, 5) / len(resources))
    return {name: statistics.median(v) for name, v in times.items()}


def report(result: dict[str, float]) -> None:
    base = result["structure only"]
    for name, us in result.items():
        print(f"  {name:<28} {us:8.1f} µs   x{us / base:.2f}")
    fast, slow = result["profiles only"], result["profiles only, fhirpathpy"]
    print(f"  native invariants: profiles only x{fast / slow:.2f} of fhirpathpy's time")


def fhirpath_only_catalog() -> Catalog:
    """Our profiles compiled with no native invariant: each one evaluated by fhirpathpy."""
    default = default_catalog()  # compiled first: it keeps the native forms
    saved = dict(profile_native.NATIVE)
    profile_native.NATIVE.clear()
    try:
        catalog = Catalog(default.definitions.values(), default.expand, fhir_profiles.selection())
        for url in catalog.definitions:
            catalog.tree(url)
        return catalog
    finally:
        profile_native.NATIVE.update(saved)


def measure(resource: dict[str, Any], rounds: int, n: int) -> dict[str, float]:
    validator = Validator()
    slow = fhirpath_only_catalog()
    kinds: dict[str, Callable[[dict[str, Any]], Any]] = {
        "structure only": structure_only,
        "profiles only": profile_issues,
        "profiles only, fhirpathpy": lambda r: profile_issues(r, slow),
        "full (structure + profiles)": lambda r: validator.validate_resource(r, r.get("id")),
    }
    for fn in kinds.values():  # warm-up: compile everything once, as a server process does
        fn(resource)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for name, fn in kinds.items():
            times[name].append(_per_call_us(fn, resource, n))
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=300, help="validations per round")
    args = parser.parse_args()
    catalog = default_catalog()
    for rtype in ("CareTeam", "CarePlan", "Patient"):
        resource = sample(rtype)
        applied, problems = catalog.applicable(resource)
        issues = profile_issues(resource)
        print(f"{rtype} {resource.get('id')}: profiles {applied or 'none'}, issues {len(issues)}")
        for issue in issues + problems:
            print("   ", issue.diagnostics)
        report(measure(resource, args.rounds, args.n))
    print(f"ingest transaction of bench/run.py ({data.BUNDLE_GROUPS * 6} resources), per resource:")
    report(measure_bundle(args.rounds))


if __name__ == "__main__":
    main()
