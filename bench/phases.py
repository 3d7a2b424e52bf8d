"""The measured phases. Each returns a dict for results/latest.json and never raises: a phase
that fails (e.g. search or transactions not implemented yet) reports its error and the run goes on.

The gateway requires bearer tokens (as in production); every gateway run sends one issued just
before it (bench/auth.py). Gateway and baseline are measured in alternating rounds (B, G, B, G,
...) so that the noise of a shared machine falls on both; the ratio is gateway ok-requests/s over
baseline ok-requests/s.
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
from bench.auth import Bearer
from bench.load import LoadResult, Target, run


@dataclass
class Endpoint:
    """A server under test: its base URL and the CPU seconds used so far by its processes and by
    the database server (PostgreSQL; SQLite runs inside the server processes)."""

    base: str
    cpu: Callable[[], float]
    db_cpu: Callable[[], float]
    auth: Bearer | None = None  # the gateway's bearer tokens; the baselines take none


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


def guarded(
    name: str, phase: Callable[[], dict[str, Any]], server_log: Callable[[], str]
) -> dict[str, Any]:
    """Run one phase; on failure record the error and the gateway log's last lines."""
    started = time.perf_counter()
    try:
        result = phase()
    except Exception as e:  # report and continue with the other phases
        detail = traceback.format_exception_only(type(e), e)[-1].strip()
        result = {"error": detail[:500], "server_log": server_log()}
    result["phase_seconds"] = round(time.perf_counter() - started, 1)
    if "error" in result:
        print(f"  ! {name} FAILED: {result['error']}", flush=True)
        if result["server_log"]:
            print(
                "    gateway log, last lines:\n    " + result["server_log"].replace("\n", "\n    ")
            )
    else:
        print(f"  . {name} done in {result['phase_seconds']}s", flush=True)
    return result


def probe(side: Endpoint, method: str, path: str, body: bytes | None = None) -> httpx.Response:
    """One request before a phase, so a failure is reported with the server's own words."""
    resp = httpx.request(
        method, side.base + path, content=body, timeout=60,
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                 **(side.auth() if side.auth else {})},
    )  # fmt: skip
    if resp.status_code >= 400:
        try:
            issues = resp.json().get("issue", [])
            why = "; ".join(i.get("diagnostics", "") for i in issues) or resp.text[:300]
        except ValueError:
            why = resp.text[:300]
        raise RuntimeError(f"{method} {path.split('?')[0]} -> {resp.status_code}: {why}")
    return resp


def summary(results: list[LoadResult]) -> dict[str, Any]:
    """Rate, latency and CPU of one side's runs (medians; the rate over all of them)."""
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
        "db_cpu_ms": round(statistics.median(r.db_cpu_ms for r in results), 3),
    }


def _cpu_ms(side: dict[str, Any]) -> float:
    return float(side["server_cpu_ms"] + side["db_cpu_ms"])


def compare(plan: Plan, gateway: Target, baseline: Target, connections: int) -> dict[str, Any]:
    for t in (baseline, gateway):
        run(t, connections, plan.warmup, plan.client)
    got: dict[str, list[LoadResult]] = {"baseline": [], "gateway": []}
    for _ in range(plan.rounds):
        got["baseline"].append(run(baseline, connections, plan.seconds, plan.client))
        got["gateway"].append(run(gateway, connections, plan.seconds, plan.client))
    out = {name: summary(rs) for name, rs in got.items()}
    base_rate = out["baseline"]["rate"]
    out["ratio"] = round(out["gateway"]["rate"] / base_rate, 3) if base_rate else None
    # Baseline CPU per request over the gateway's (server + database): less sensitive to a noisy
    # neighbour than throughput.
    out["cpu_ratio"] = round(_cpu_ms(out["baseline"]) / _cpu_ms(out["gateway"]), 3)
    return out


def ceiling(plan: Plan, baseline: Endpoint) -> dict[str, Any]:
    r = run(Target(baseline.base, "/ping"), plan.connections, plan.seconds, plan.client)
    return {"trivial": summary([r])}


def read(plan: Plan, gateway: Endpoint, baseline: Endpoint, care_plans: int) -> dict[str, Any]:
    probe(gateway, "GET", "/fhir/CarePlan/" + data.care_plan_id(care_plans - 1))
    g = Target(
        gateway.base,
        "/fhir/CarePlan/cp-%07d",
        care_plans,
        cpu=gateway.cpu,
        db_cpu=gateway.db_cpu,
        auth=gateway.auth,
    )
    b = Target(
        baseline.base,
        "/read/CarePlan/cp-%07d",
        care_plans,
        cpu=baseline.cpu,
        db_cpu=baseline.db_cpu,
    )
    return compare(plan, g, b, plan.connections)


def create(plan: Plan, gateway: Endpoint, baseline: Endpoint) -> dict[str, Any]:
    body = orjson.dumps(data.create_body())
    probe(gateway, "POST", "/fhir/CarePlan", body)
    probe(baseline, "POST", "/create/CarePlan", body)
    g = Target(
        gateway.base,
        "/fhir/CarePlan",
        method="POST",
        bodies=[body],
        cpu=gateway.cpu,
        db_cpu=gateway.db_cpu,
        auth=gateway.auth,
    )
    b = Target(
        baseline.base,
        "/create/CarePlan",
        method="POST",
        bodies=[body],
        cpu=baseline.cpu,
        db_cpu=baseline.db_cpu,
    )
    return compare(plan, g, b, plan.connections)


def search(plan: Plan, gateway: Endpoint, care_plans: int) -> dict[str, Any]:
    patients = data.patients_for(care_plans)
    path = "/fhir/CarePlan?patient=Patient/pat-%07d&_include=CarePlan:care-team"
    bundle = probe(gateway, "GET", path % (patients // 2)).json()
    modes = [e.get("search", {}).get("mode") for e in bundle.get("entry", [])]
    shape = {"match": modes.count("match"), "include": modes.count("include")}
    expected = {"match": data.PLANS_PER_PATIENT, "include": 1}
    if shape != expected:
        raise RuntimeError(f"probe bundle has {shape}, expected {expected}")
    t = Target(
        gateway.base, path, patients, cpu=gateway.cpu, db_cpu=gateway.db_cpu, auth=gateway.auth
    )
    run(t, plan.connections, plan.warmup, plan.client)
    result = summary([run(t, plan.connections, plan.seconds, plan.client)])
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
    probe(gateway, "POST", "/fhir", raw[0])
    t = Target(
        gateway.base,
        "/fhir",
        method="POST",
        bodies=raw,
        cpu=gateway.cpu,
        db_cpu=gateway.db_cpu,
        auth=gateway.auth,
    )
    r = run(t, plan.txn_connections, plan.txn_seconds, "aiohttp")
    rate = r.rate * entries
    cpu_per_resource_ms = (r.server_cpu_ms + r.db_cpu_ms) / entries
    return {
        "gateway": {
            **summary([r]),
            "resources_per_s": round(rate, 1),
            "entries": entries,
            "cpu_ms_per_resource": round(cpu_per_resource_ms, 3),  # server + database
        },
        "baseline": {
            "validation_per_core": round(validate, 1),
            "rate": round(2 * validate, 1),
            "server_cpu_ms": round(1000 / validate, 3),
            "db_cpu_ms": 0.0,
        },
        "ratio": round(rate / (2 * validate), 3),
        # Validation CPU per resource over the gateway's whole CPU per resource.
        "cpu_ratio": round((1000 / validate) / cpu_per_resource_ms, 3),
    }
