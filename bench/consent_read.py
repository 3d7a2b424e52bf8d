"""Read by id with authentication + consent + audit, against the bare baseline (issue 3).

    .venv/bin/python bench/consent_read.py [--database sqlite|postgres|both] [--resources 20000]
                                           [--seconds 10] [--rounds 2] [--quick] [--keep]

One run per database, in a fresh store: N CarePlans with their Patients and CareTeams
(bench/data.py, held by org-sote-keskus) and, per Patient, a patient-privacy Consent of which
org-sote-keskus is the custodian, permitting org-kela (recipient, purpose CAREMGT). Loaded
through the Repository before any server starts. Then three servers on the same database
(uvicorn, 2 workers each, 127.0.0.1):

- `baseline`: bench/baseline.py, `SELECT body FROM resources ...` returned (no auth);
- `trusted`: the gateway with `PLAN_GATEWAY_REQUIRE_AUTH=0` (no caller: no gate, no audit);
- `gateway`: the gateway as in production: bearer tokens, the consent gate, and one BALP read
  AuditEvent stored durably before every response.

Measured in alternating rounds (baseline, trusted, holder, partner, ...) with wrk, 32 connections,
`GET .../CarePlan/cp-<random>`:

- `holder`: the gateway as org-sote-keskus (the record holder: decided from the record alone);
- `partner`: the gateway as org-kela (permitted by the client's Consent: the Patient and Consents
  are loaded and decided on every read), with `X-Purpose-Of-Use: CAREMGT`.

Each gateway run gets a token issued just before it (tokens live 300 s). After each holder/partner
run the AuditEvents stored are counted against the responses wrk saw (they may exceed them by the
requests in flight when wrk stops). Prints rate, p50/p99 and the ratios to the baseline (goal
≥ 0.5) and to the trusted gateway; writes bench/results/consent_read.json (gitignored).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data, databases
from bench.auth import Bearer
from bench.load import LoadResult, Target, have_wrk, run
from bench.phases import summary
from bench.servers import Server, Servers, postgres_cpu

PARTNER_CLIENT, PARTNER_ORG = "kela", "org-kela"
PARTNER_SCOPE = "system/CarePlan.rs system/Patient.rs"
HOLDER_SCOPE = "system/*.cruds"
PURPOSE = "CAREMGT"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
RESULTS = Path(__file__).resolve().parent / "results" / "consent_read.json"
SIDES = ("baseline", "trusted", "holder", "partner")


def consent(n: int) -> dict[str, Any]:
    """Patient n's privacy Consent: the holder is its custodian, the partner a recipient."""
    return {
        "resourceType": "Consent",
        "id": f"consent-{n:07d}",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{data.patient_id(n)}"},
        "dateTime": "2025-01-15T09:30:00+02:00",
        "organization": [{"reference": f"Organization/{data.HOLDER}"}],
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": {
            "type": "permit",
            "period": {"start": "2025-01-01", "end": "2035-12-31"},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": f"Organization/{PARTNER_ORG}"},
                }
            ],
            "purpose": [{"system": ACT_REASON, "code": PURPOSE}],
        },
    }


# -- loading (through the Repository: trusted, before any server runs) --------------------------
_services = None


def _chunk(url: str, first: int, last: int, care_plans: int) -> int:
    global _services
    if _services is None:
        from gateway.app import build_services
        from gateway.settings import Settings

        _services = build_services(Settings(database_url=url))
    resources = [r for p in range(first, last) for r in (*data.group(p, care_plans), consent(p))]
    with _services.repo.writer() as session:
        for r in resources:
            session.write(r["resourceType"], r["id"], r, "PUT")
    return len(resources)


def load(url: str, care_plans: int, procs: int, full_analyze: bool) -> tuple[int, float]:
    from gateway.samples import SAMPLES_DIR, load_file

    start = time.perf_counter()
    _chunk(url, 0, 0, care_plans)  # creates the schema once, before parallel writers
    assert _services is not None
    load_file(_services, SAMPLES_DIR / "00-network.json")  # the Organizations
    patients = data.patients_for(care_plans)
    # spawn: a forked child would share this process's open database connection
    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [
            pool.submit(_chunk, url, p, min(p + 200, patients), care_plans)
            for p in range(0, patients, 200)
        ]
        done = sum(j.result() for j in jobs)
    databases.analyze(url)
    if full_analyze and url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("ANALYZE")  # PRAGMA optimize on a fresh connection gathers nothing
    return done, time.perf_counter() - start


def audit_events(url: str) -> int:
    assert _services is not None
    with _services.repo.reader() as session:
        rows = session.query("SELECT COUNT(*) FROM resources WHERE res_type = ?", ["AuditEvent"])
        return int(rows[0][0])


class PurposeBearer(Bearer):
    """Bearer headers plus the purpose of use the partner's Consent names."""

    def fresh(self) -> dict[str, str]:
        return {**super().fresh(), "X-Purpose-Of-Use": PURPOSE}


# -- measuring ---------------------------------------------------------------------------------
def probe(target: Target) -> None:
    import httpx

    path = target.path % (target.count - 1)
    headers = target.auth.fresh() if target.auth else {}
    r = httpx.get(target.base + path, headers=headers, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"probe {path} -> {r.status_code}: {r.text[:300]}")


def measure(
    targets: dict[str, Target], url: str, args: argparse.Namespace, client: str
) -> dict[str, Any]:
    for t in targets.values():
        probe(t)
        run(t, args.connections, args.warmup, client)
    got: dict[str, list[LoadResult]] = {k: [] for k in targets}
    audit: dict[str, list[tuple[int, int]]] = {"holder": [], "partner": []}
    for _ in range(args.rounds):
        for name, t in targets.items():
            before = audit_events(url) if name in audit else 0
            got[name].append(run(t, args.connections, args.seconds, client))
            if name in audit:
                time.sleep(0.5)  # let the requests in flight at wrk's stop finish
                audit[name].append((got[name][-1].ok, audit_events(url) - before))
    out: dict[str, Any] = {name: summary(rs) for name, rs in got.items()}
    base, trusted = out["baseline"]["rate"], out["trusted"]["rate"]
    for name in ("trusted", "holder", "partner"):
        out[name]["ratio_to_baseline"] = round(out[name]["rate"] / base, 3) if base else None
    for name in ("holder", "partner"):
        out[name]["ratio_to_trusted"] = round(out[name]["rate"] / trusted, 3) if trusted else None
        out[name]["audit"] = [{"responses": ok, "events": ev} for ok, ev in audit[name]]
    return out


def bench_database(kind: str, args: argparse.Namespace, client: str) -> dict[str, Any]:
    global _services
    tmp = Path(tempfile.mkdtemp(prefix=f"plan-gateway-consent-read-{kind}-"))
    out: dict[str, Any] = {"care_plans": args.resources, "client": client}
    out |= {"workers": args.workers, "analyze": args.analyze}
    try:
        dbs = databases.fresh(kind, tmp)
        resources, seconds = load(
            dbs.gateway, args.resources, 1 if kind == "sqlite" else 2, args.analyze
        )
        out["load"] = {"resources": resources, "seconds": round(seconds, 1)}
        print(f"  . loaded {resources:,} resources in {seconds:.1f}s", flush=True)
        key = str(tmp / "token-key.json")
        with Servers(tmp, workers=args.workers) as servers:
            env = {"PLAN_GATEWAY_DATABASE": dbs.gateway, "PLAN_GATEWAY_TOKEN_KEY_FILE": key}
            gw = servers.start(
                "gateway", "bench.serve_gateway:create",
                {**env, "PLAN_GATEWAY_REQUIRE_AUTH": "1"}, "/fhir/metadata",
            )  # fmt: skip
            trusted = servers.start(
                "trusted", "bench.serve_gateway:create",
                {**env, "PLAN_GATEWAY_REQUIRE_AUTH": "0"}, "/fhir/metadata",
            )  # fmt: skip
            bl_env = {
                "BENCH_READ_DATABASE": dbs.gateway,
                "BENCH_WRITE_DATABASE": dbs.baseline_write,
            }
            baseline = servers.start("baseline", "bench.baseline:create", bl_env, "/ping")
            db_cpu = (lambda: postgres_cpu(databases.PG_BENCH_DB)) if kind == "postgres" else None

            def target(server: Server, path: str, auth: Bearer | None = None) -> Target:
                return Target(server.base, path, args.resources, cpu=server.cpu,
                              db_cpu=db_cpu, auth=auth)  # fmt: skip

            fhir = "/fhir/CarePlan/cp-%07d"
            targets = {
                "baseline": target(baseline, "/read/CarePlan/cp-%07d"),
                "trusted": target(trusted, fhir),
                "holder": target(gw, fhir, Bearer(gw.base, "sote-keskus", HOLDER_SCOPE)),
                "partner": target(gw, fhir, PurposeBearer(gw.base, PARTNER_CLIENT, PARTNER_SCOPE)),
            }
            out |= measure(targets, dbs.gateway, args, client)
            for s in (gw, trusted):
                if "Traceback" in s.log.read_text(errors="replace"):
                    out.setdefault("errors", []).append(f"{s.name}: {s.tail()}")
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {str(e)[:800]}"
    finally:
        if _services is not None:
            _services.repo.close()
            _services = None
        databases.discard(kind, tmp, args.keep)
    return out


def print_database(kind: str, result: dict[str, Any]) -> None:
    print(f"\n=== {kind}: read by id, {result['care_plans']:,} CarePlans ({result['client']}, "
          f"{result['workers']} workers{', ANALYZE' if result['analyze'] else ''})")  # fmt: skip
    if "error" in result:
        print(f"  FAILED: {result['error']}")
        return
    print(f"  {'side':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>12}"
          f"{'÷ baseline':>12}{'÷ trusted':>11}  audit events / responses")  # fmt: skip
    for name in SIDES:
        r = result[name]
        cpu = r["server_cpu_ms"] + r["db_cpu_ms"]
        ratio = f"{r['ratio_to_baseline']:.3f}" if "ratio_to_baseline" in r else "—"
        vs_trusted = f"{r['ratio_to_trusted']:.3f}" if "ratio_to_trusted" in r else "—"
        audit = ", ".join(f"{a['events']}/{a['responses']}" for a in r.get("audit", []))
        print(f"  {name:<10}{r['rate']:>10.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{cpu:>12.3f}"
              f"{ratio:>12}{vs_trusted:>11}  {audit}")  # fmt: skip
        if r["failed"]:
            print(f"    ! {r['failed']} failed requests")
    for err in result.get("errors", []):
        print(f"  ! server error: {err}")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--resources", type=int, default=20_000, help="CarePlans (4 per Patient)")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="2,000 CarePlans, 3 s runs")
    p.add_argument("--client", choices=["wrk", "aiohttp"], help="default: wrk if installed")
    p.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    p.add_argument("--analyze", action="store_true",
                   help="SQLite: a full ANALYZE after the load (default: as bench/run.py, "
                        "PRAGMA optimize only)")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database")
    args = p.parse_args()
    if args.quick:
        args.resources, args.seconds, args.warmup = 2_000, 3, 1
    return args


def main() -> int:
    args = _args()
    client = args.client or ("wrk" if have_wrk() else "aiohttp")
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "args": vars(args), "databases": {}}  # fmt: skip
    for kind in kinds:
        print(f"--- {kind}: read with consent + audit (client {client}) ...", flush=True)
        results["databases"][kind] = bench_database(kind, args, client)
    for kind in kinds:
        print_database(kind, results["databases"][kind])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
