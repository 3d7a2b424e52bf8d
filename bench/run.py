"""Benchmark the gateway against bare baselines in one run, on SQLite and/or PostgreSQL.

    .venv/bin/python bench/run.py [--database sqlite|postgres|both] [--resources 100000] [--quick]

Starts the gateway (bearer tokens required, as in production) and the baseline service as real
uvicorn servers (2 workers each, 127.0.0.1),
loads CarePlans with their Patients and CareTeams into a fresh database, measures each phase and
prints ratios; writes bench/results/latest.json. Stops every server it started. See README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import databases, phases, report
from bench.auth import Bearer
from bench.load import have_wrk
from bench.servers import Servers, postgres_cpu


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--resources", type=int, help="CarePlans to load (default 100000; quick 5000)")
    p.add_argument("--quick", action="store_true", help="5k CarePlans, short phases (< 2 min)")
    p.add_argument("--client", choices=["wrk", "aiohttp"], help="default: wrk if installed")
    p.add_argument("--load", choices=["auto", "repository"], default="auto",
                   help="auto: HTTP transactions if fast enough, else the Repository")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database")
    p.add_argument("--no-auth", action="store_true",
                   help="for comparison only: the gateway in its unsafe mode without bearer "
                        "tokens (no caller: no consent gate, no audit)")  # fmt: skip
    return p.parse_args()


def _plan(args: argparse.Namespace) -> phases.Plan:
    client = args.client or ("wrk" if have_wrk() else "aiohttp")
    if args.quick:
        return phases.Plan(client, seconds=2, rounds=2, warmup=1, txn_seconds=4)
    return phases.Plan(client)


def bench_database(kind: str, args: argparse.Namespace, plan: phases.Plan) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"plan-gateway-bench-{kind}-"))
    care_plans = args.resources or (5_000 if args.quick else 100_000)
    out: dict[str, Any] = {"client": plan.client, "care_plans": care_plans}
    try:
        dbs = databases.fresh(kind, tmp)
        with Servers(tmp) as servers:
            env = {
                "PLAN_GATEWAY_DATABASE": dbs.gateway,
                # As in production: every FHIR request carries a bearer token.
                "PLAN_GATEWAY_REQUIRE_AUTH": "0" if args.no_auth else "1",
                "PLAN_GATEWAY_TOKEN_KEY_FILE": str(tmp / "token-key.json"),
            }
            gw = servers.start("gateway", "bench.serve_gateway:create", env, "/fhir/metadata")
            bearer = None if args.no_auth else Bearer(gw.base)
            budget = 0 if args.load == "repository" else (10 if args.quick else 300)
            procs = 1 if kind == "sqlite" else 2
            probe = 2 if args.quick else 8
            load = databases.load(dbs.gateway, gw.base, care_plans, procs, budget, probe, bearer)
            out["load"] = load.as_dict()
            print(f"  . loaded {load.resources:,} resources in {load.seconds:.1f}s", flush=True)
            env = {"BENCH_READ_DATABASE": dbs.gateway, "BENCH_WRITE_DATABASE": dbs.baseline_write}
            bl_server = servers.start("baseline", "bench.baseline:create", env, "/ping")
            db_cpu = (lambda: postgres_cpu(databases.PG_BENCH_DB)) if kind == "postgres" else None
            db_cpu = db_cpu or (lambda: 0.0)
            g = phases.Endpoint(gw.base, gw.cpu, db_cpu, bearer)
            b = phases.Endpoint(bl_server.base, bl_server.cpu, db_cpu)
            run_phases(out, plan, g, b, care_plans, gw.tail)
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {str(e)[:800]}"
    finally:
        databases.discard(kind, tmp, args.keep)
    return out


def run_phases(
    out: dict[str, Any],
    plan: phases.Plan,
    g: phases.Endpoint,
    b: phases.Endpoint,
    n: int,
    log: Callable[[], str],
) -> None:
    out["ceiling"] = phases.guarded("ceiling", lambda: phases.ceiling(plan, b), log)
    out["read"] = phases.guarded("read", lambda: phases.read(plan, g, b, n), log)
    out["create"] = phases.guarded("create", lambda: phases.create(plan, g, b), log)
    out["search"] = phases.guarded("search", lambda: phases.search(plan, g, n), log)
    out["transaction"] = phases.guarded("transaction", lambda: phases.transaction(plan, g), log)


def main() -> int:
    args = _args()
    plan = _plan(args)
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": vars(args),
        "plan": plan.__dict__,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "databases": {},
    }
    for kind in kinds:
        print(f"--- {kind}: benchmarking (client {plan.client}) ...", flush=True)
        started = time.perf_counter()
        results["databases"][kind] = bench_database(kind, args, plan)
        results["databases"][kind]["seconds"] = round(time.perf_counter() - started, 1)
    for kind in kinds:
        report.print_database(kind, results["databases"][kind])
    print(f"\nwrote {report.write_json(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
