"""The measured phases. Each returns a dict for results/latest.json and never raises: a phase
that fails (e.g. search or transactions not implemented yet) reports its error and the run goes on.

Gateway and baseline are measured in alternating rounds (B, G, B, G, ...) so that the noise of a
shared machine falls on both; the ratio is gateway ok-requests/s over baseline ok-requests/s.
"""

from __future__ import annotations

import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from fhir.resources.R4B import get_fhir_model_class

from bench import data
from bench.load import LoadResult, Target, run


@dataclass
class Endpoint:
    """A server under test: its base URL and the CPU seconds its side has used so far (server
    processes, plus the PostgreSQL server on PostgreSQL)."""

    base: str
    cpu: Callable[[], float]


@dataclass
class Plan:
    """How long and how hard to push (set by --quick or the full defaults)."""

    client: str
    connections: int = 32
    seconds: float = 10
    rounds: int = 2
    warmup: float = 2
    txn_seconds: float = 15
    txn_connections: int = 4


def guarded(name: str, phase: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = phase()
    except Exception as e:  # report and continue with the other phases
        detail = traceback.format_exception_only(type(e), e)[-1].strip()
        result = {"error": detail[:500]}
    result["phase_seconds"] = round(time.perf_counter() - started, 1)
    if "error" in result:
        print(f"  ! {name} FAILED: {result['error']}", flush=True)
    else:
        print(f"  . {name} done in {result['phase_seconds']}s", flush=True)
    return result


def probe(base: str, method: str, path: str, body: bytes | None = None) -> httpx.Response:
    """One request before a phase, so a failure is reported with the server's own words."""
    resp = httpx.request(
        method, base + path, content=body, timeout=60,
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
    )  # fmt: skip
    if resp.status_code >= 400:
        try:
            issues = resp.json().get("issue", [])
            why = "; ".join(i.get("diagnostics", "") for i in issues) or resp.text[:300]
        except ValueError:
            why = resp.text[:300]
        raise RuntimeError(f"{method} {path.split('?')[0]} -> {resp.status_code}: {why}")
    return resp


def _summary(results: list[LoadResult]) -> dict[str, Any]:
    seconds = sum(r.seconds for r in results)
    ok = sum(r.ok for r in results)
    return {
        "rate": round(ok / seconds, 1) if seconds else 0.0,
        "ok": ok,
        "failed": sum(r.requests - r.ok for r in results),
        "p50_ms": round(statistics.median(r.p50_ms for r in results), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in results), 2),
        "client_cpu": round(statistics.mean(r.client_cpu for r in results), 2),
        "server_cpu_ms": round(statistics.median(r.server_cpu_ms for r in results), 3),
    }


def compare(plan: Plan, gateway: Target, baseline: Target, connections: int) -> dict[str, Any]:
    for t in (baseline, gateway):
        run(t, connections, plan.warmup, plan.client)
    got: dict[str, list[LoadResult]] = {"baseline": [], "gateway": []}
    for _ in range(plan.rounds):
        got["baseline"].append(run(baseline, connections, plan.seconds, plan.client))
        got["gateway"].append(run(gateway, connections, plan.seconds, plan.client))
    out = {name: _summary(rs) for name, rs in got.items()}
    base_rate = out["baseline"]["rate"]
    out["ratio"] = round(out["gateway"]["rate"] / base_rate, 3) if base_rate else None
    # Baseline CPU per request over the gateway's: less sensitive to a noisy neighbour.
    out["cpu_ratio"] = round(out["baseline"]["server_cpu_ms"] / out["gateway"]["server_cpu_ms"], 3)
    return out


def ceiling(plan: Plan, baseline: Endpoint) -> dict[str, Any]:
    r = run(Target(baseline.base, "/ping"), plan.connections, plan.seconds, plan.client)
    return {"trivial": _summary([r])}


def read(plan: Plan, gateway: Endpoint, baseline: Endpoint, care_plans: int) -> dict[str, Any]:
    probe(gateway.base, "GET", "/fhir/CarePlan/" + data.care_plan_id(care_plans - 1))
    g = Target(gateway.base, "/fhir/CarePlan/cp-%07d", care_plans, cpu=gateway.cpu)
    b = Target(baseline.base, "/read/CarePlan/cp-%07d", care_plans, cpu=baseline.cpu)
    return compare(plan, g, b, plan.connections)


def create(plan: Plan, gateway: Endpoint, baseline: Endpoint) -> dict[str, Any]:
    body = orjson.dumps(data.create_body())
    probe(gateway.base, "POST", "/fhir/CarePlan", body)
    probe(baseline.base, "POST", "/create/CarePlan", body)
    g = Target(gateway.base, "/fhir/CarePlan", method="POST", bodies=[body], cpu=gateway.cpu)
    b = Target(baseline.base, "/create/CarePlan", method="POST", bodies=[body], cpu=baseline.cpu)
    return compare(plan, g, b, plan.connections)


def search(plan: Plan, gateway: Endpoint, care_plans: int) -> dict[str, Any]:
    patients = data.patients_for(care_plans)
    path = "/fhir/CarePlan?patient=Patient/pat-%07d&_include=CarePlan:care-team"
    bundle = probe(gateway.base, "GET", path % (patients // 2)).json()
    modes = [e.get("search", {}).get("mode") for e in bundle.get("entry", [])]
    shape = {"match": modes.count("match"), "include": modes.count("include")}
    expected = {"match": data.PLANS_PER_PATIENT, "include": 1}
    if shape != expected:
        raise RuntimeError(f"probe bundle has {shape}, expected {expected}")
    t = Target(gateway.base, path, patients, cpu=gateway.cpu)
    run(t, plan.connections, plan.warmup, plan.client)
    result = _summary([run(t, plan.connections, plan.seconds, plan.client)])
    return {"gateway": result, "probe": shape}


def validation_rate(bundles: list[dict[str, Any]], seconds: float) -> float:
    """Resources/s that fhir.resources validates on one core, in this process."""
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    models = {r["resourceType"]: get_fhir_model_class(r["resourceType"]) for r in resources}
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for r in resources:
            models[r["resourceType"]].model_validate(r)
        done += len(resources)
    return done / (time.perf_counter() - start)


def transaction(plan: Plan, gateway: Endpoint) -> dict[str, Any]:
    bundles = [data.post_bundle(data.BUNDLE_GROUPS, seed) for seed in range(24)]
    raw = [orjson.dumps(b) for b in bundles]
    entries = len(bundles[0]["entry"])
    validate = validation_rate(bundles[:4], max(1.0, plan.warmup))
    probe(gateway.base, "POST", "/fhir", raw[0])
    t = Target(gateway.base, "/fhir", method="POST", bodies=raw, cpu=gateway.cpu)
    r = run(t, plan.txn_connections, plan.txn_seconds, "aiohttp")
    rate = r.rate * entries
    cpu_per_resource_ms = r.server_cpu_ms / entries
    return {
        "gateway": {
            **_summary([r]),
            "resources_per_s": round(rate, 1),
            "entries": entries,
            "server_cpu_ms": round(cpu_per_resource_ms, 3),  # per resource, not per bundle
        },
        "baseline": {
            "validation_per_core": round(validate, 1),
            "rate": round(2 * validate, 1),
            "server_cpu_ms": round(1000 / validate, 3),
        },
        "ratio": round(rate / (2 * validate), 3),
        # Validation CPU per resource over the gateway's whole CPU per resource.
        "cpu_ratio": round((1000 / validate) / cpu_per_resource_ms, 3),
    }
