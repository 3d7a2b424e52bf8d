"""The coordination operations (issue 4's `$`-operations) end to end over HTTP, each as a ratio
to a plain read measured in the same run.

    .venv/bin/python bench/coordination.py [--quick] [--database sqlite|postgres|both]
                                           [--clients 2000] [--seconds 10] [--rounds 2]
                                           [--only follow-up [--only overlaps ...]]

One run per database, in a fresh store: N clients shaped like the sample client Aino
(bench/coordination_data.py; 200 with --quick, else 2,000), loaded in process through the
gateway's transaction interaction (validated against the profiles). Then the gateway (uvicorn,
2 workers, bearer tokens required as in production) acts as org-tyokykytiimi, the plans' holder,
with its coordinator's role and purpose CAREMGT. Measured in alternating rounds, 8 connections:

- with wrk (aiohttp when wrk is missing): the baseline `GET CarePlan/{id}`, then each read-only
  operation (`$who-should-coordinate`, `$coordinator`, `$overlaps`, `$follow-up` over all
  clients, `$client-plan` HTML and PDF), random clients of the first half;
- with a Python (aiohttp) client: the same baseline read, `$assign-responsibility` (each request
  on the next plan of the first half), and a handover cycle (`$handover` by the coordinator's
  organisation + `$accept-handover` by the receiver's, on the second half's clients).

`--only NAME` (repeatable) measures just those operations, beside the baseline read (and the
Python client's baseline when a loop is named).

Each operation's cost is printed as a multiple of a plain read: baseline req/s ÷ its req/s (same
client), and its CPU per request (gateway + PostgreSQL) ÷ the baseline's. The machine is shared:
read the ratios, not the absolute numbers. Writes bench/results/coordination.json (gitignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench import coordination_data as cd
from bench import databases
from bench.coordination_ops import BASELINE, READS, Ops
from bench.load import LoadResult, Target, have_wrk, run
from bench.phases import summary
from bench.servers import Servers, postgres_cpu

RESULTS = Path(__file__).resolve().parent / "results" / "coordination.json"
BASE_WRK, BASE_PY = "plain read", "plain read (py)"
LOOPS = ("assign-responsibility", "handover cycle")
Counter = Callable[[], float]  # CPU seconds so far (gateway processes, PostgreSQL backends)


def probe(ops: Ops, name: str, path: str) -> dict[str, Any]:
    """One request before measuring, in brief; {"error": ...} when it fails (then the operation
    is reported as failed and not measured; the others still are)."""
    url = ops.base + (path % 0 if "%" in path else path)
    r = httpx.get(url, headers=ops.holder.fresh(), timeout=120)
    if r.status_code != 200:
        return {"error": f"{path.split('?')[0]} -> {r.status_code}: {r.text[:300]}"}
    out: dict[str, Any] = {"bytes": len(r.content), "type": r.headers.get("content-type", "")}
    if name == "follow-up":
        out["items"] = len(_items(r.json()))
    if name.endswith("pdf") and not r.content.startswith(b"%PDF"):
        out["error"] = "the answer is not a PDF"
    return out


def _items(node: Any) -> set[str]:
    """The distinct `item` references anywhere in a $follow-up answer."""
    if isinstance(node, list):
        return set().union(*map(_items, node))
    if not isinstance(node, dict):
        return set()
    found = _items(node.get("parameter", [])) | _items(node.get("part", []))
    if node.get("name") == "item" and "valueReference" in node:
        found.add(node["valueReference"]["reference"])
    return found


def timed(fn: Callable[[], LoadResult], cpu: Counter, db: Counter) -> LoadResult:
    before, db_before = cpu(), db()
    result = fn()
    if result.ok:
        result.server_cpu_ms = (cpu() - before) * 1000 / result.ok
        result.db_cpu_ms = (db() - db_before) * 1000 / result.ok
    return result


def measure(
    ops: Ops, args: argparse.Namespace, client: str, cpu: Counter, db: Counter, failed: set[str]
) -> dict[str, Any]:
    def target(path: str) -> Target:
        count = ops.reads if "%" in path else 0  # a system-level operation names no client
        return Target(ops.base, path, count, cpu=cpu, db_cpu=db, auth=ops.holder)

    c = args.connections
    runs: dict[str, Callable[[float], LoadResult]] = {
        BASE_WRK: lambda s: run(target(BASELINE), c, s, client),
        **{k: (lambda s, p=p: run(target(p), c, s, client)) for k, p in READS.items()},
        BASE_PY: lambda s: timed(lambda: ops.run(ops.read, c, s), cpu, db),
        LOOPS[0]: lambda s: timed(lambda: ops.run(ops.assign, c, s), cpu, db),
        LOOPS[1]: lambda s: timed(lambda: ops.run(ops.handover_cycle, c, s), cpu, db),
    }
    runs = {k: fn for k, fn in runs.items() if k not in failed and k in selected(args)}
    got: dict[str, list[LoadResult]] = {k: [] for k in runs}
    for fn in runs.values():
        fn(args.warmup)
    for _ in range(args.rounds):
        for name, fn in runs.items():
            got[name].append(fn(args.seconds))
    out = {name: summary(rs) for name, rs in got.items()}
    for name, r in out.items():
        base = out[BASE_PY if name in LOOPS or name == BASE_PY else BASE_WRK]
        r["x_read"] = round(base["rate"] / r["rate"], 2) if r["rate"] else None
        cpu_ms = r["server_cpu_ms"] + r["db_cpu_ms"]
        base_cpu = base["server_cpu_ms"] + base["db_cpu_ms"]
        r["x_read_cpu"] = round(cpu_ms / base_cpu, 2) if base_cpu else None
    return out


def bench_database(kind: str, args: argparse.Namespace, client: str) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"plan-gateway-coordination-{kind}-"))
    out: dict[str, Any] = {"clients": args.clients, "client": client}
    try:
        dbs = databases.fresh(kind, tmp)
        resources, seconds = cd.load(dbs.gateway, args.clients, 1 if kind == "sqlite" else 2)
        out["load"] = {"resources": resources, "seconds": round(seconds, 1)}
        print(f"  . loaded {resources:,} resources in {seconds:.1f}s", flush=True)
        with Servers(tmp) as servers:
            env = {
                "PLAN_GATEWAY_DATABASE": dbs.gateway,
                "PLAN_GATEWAY_REQUIRE_AUTH": "1",  # as in production
                "PLAN_GATEWAY_TOKEN_KEY_FILE": str(tmp / "token-key.json"),
            }
            gw = servers.start("gateway", "bench.serve_gateway:create", env, "/fhir/metadata")
            db_cpu = (lambda: postgres_cpu(databases.PG_BENCH_DB)) if kind == "postgres" else None
            half = args.clients // 2
            ops = Ops(gw.base, half, half, args.clients - half)
            reads = {k: p for k, p in {BASE_WRK: BASELINE, **READS}.items() if k in selected(args)}
            out["probe"] = {k: probe(ops, k, p) for k, p in reads.items()}
            failed = {k for k, p in out["probe"].items() if "error" in p}
            if BASE_WRK in failed:
                raise RuntimeError(f"the baseline read fails: {out['probe'][BASE_WRK]['error']}")
            out |= measure(ops, args, client, gw.cpu, db_cpu or (lambda: 0.0), failed)
            out["failures"] = ops.failures
            if "Traceback" in gw.log.read_text(errors="replace"):
                out["server_error"] = gw.tail(30)
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {str(e)[:800]}"
    finally:
        cd.close()
        databases.discard(kind, tmp, args.keep)
    return out


def print_database(kind: str, r: dict[str, Any]) -> None:
    print(f"\n=== {kind}: coordination operations, {r['clients']:,} clients "
          f"({r['client']} for GETs, python client for the loops)")  # fmt: skip
    if "error" in r:
        print(f"  FAILED: {r['error']}")
        return
    print(f"  {'operation':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>12}"
          f"{'× a plain read':>16}{'× (cpu)':>9}")  # fmt: skip  # noqa: RUF001
    for name in (BASE_WRK, *READS, BASE_PY, *LOOPS):
        if name not in r and name not in r["probe"]:
            continue  # not selected (--only)
        if name not in r:
            print(f"  {name:<24}FAILED: {r['probe'][name]['error'][:200]}")
            continue
        s = r[name]
        cpu = s["server_cpu_ms"] + s["db_cpu_ms"]
        print(f"  {name:<24}{s['rate']:>9.1f}{s['p50_ms']:>9.1f}{s['p99_ms']:>9.1f}{cpu:>12.2f}"
              f"{_x(s['x_read']):>16}{_x(s['x_read_cpu']):>9}"
              + (f"  ! {s['failed']} failed" if s["failed"] else ""))  # fmt: skip
    if "items" in r["probe"].get("follow-up", {}):
        expected = cd.FOLLOW_UP_ITEMS * r["clients"]
        print(f"  $follow-up reported {r['probe']['follow-up']['items']:,} items of {expected:,}")
    for f in r.get("failures", []):
        print(f"  ! {f}")
    if "server_error" in r:
        print("  ! gateway log:\n    " + r["server_error"].replace("\n", "\n    "))


def selected(args: argparse.Namespace) -> set[str]:
    """The runs to measure: all, or the `--only` ones plus the baseline read(s) they need."""
    if not args.only:
        return {BASE_WRK, *READS, BASE_PY, *LOOPS}
    return {BASE_WRK, *args.only} | ({BASE_PY} if set(args.only) & set(LOOPS) else set())


def _x(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--clients", type=int, help="clients (default 2000; --quick 200)")
    p.add_argument("--seconds", type=float, help="per measured run (default 10; --quick 3)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=float, help="per item before the rounds (default 2; quick 1)")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="200 clients, 3 s runs (< 3 min per db)")
    p.add_argument("--client", choices=["wrk", "aiohttp"], help="GETs; default wrk if installed")
    p.add_argument(
        "--only",
        action="append",
        choices=[*READS, *LOOPS],
        metavar="NAME",
        help=f"only this operation (repeatable): {', '.join([*READS, *LOOPS])}",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database")
    args = p.parse_args()
    args.clients = args.clients or (200 if args.quick else 2_000)
    args.seconds = args.seconds or (3 if args.quick else 10)
    args.warmup = args.warmup or (1 if args.quick else 2)
    return args


def main() -> int:
    args = _args()
    client = args.client or ("wrk" if have_wrk() else "aiohttp")
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "args": vars(args), "databases": {}}  # fmt: skip
    for kind in kinds:
        print(f"--- {kind}: coordination operations ({args.clients:,} clients) ...", flush=True)
        started = time.perf_counter()
        results["databases"][kind] = bench_database(kind, args, client)
        results["databases"][kind]["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    for kind in kinds:
        print_database(kind, results["databases"][kind])
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
