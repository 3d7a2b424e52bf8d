"""Fresh benchmark databases and the bulk load of Patients, CareTeams and CarePlans.

SQLite: files in a new temp directory. PostgreSQL: the dedicated database `plan_gateway_bench`,
dropped and recreated (never any other database). The load goes through the gateway's HTTP
transaction API when it is there and fast enough, otherwise through the Repository directly.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import psycopg

from bench import data

Auth = Callable[[], dict[str, str]]  # bearer headers for the gateway (bench.auth.Bearer)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "plan_gateway_bench"
PG_BENCH = f"postgresql://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


@dataclass
class Databases:
    gateway: str  # URL the gateway and the read baseline use
    baseline_write: str  # URL the create baseline inserts into


def fresh(kind: str, tmp: Path) -> Databases:
    if kind == "sqlite":
        return Databases(f"sqlite:///{tmp / 'gateway.db'}", f"sqlite:///{tmp / 'baseline.db'}")
    drop_postgres()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    return Databases(PG_BENCH, PG_BENCH)  # baseline_resources is its own table


def drop_postgres() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")


def discard(kind: str, tmp: Path, keep: bool) -> None:
    """After a run: remove its temporary folder and benchmark database (unless `keep`), never
    failing the run over a database that will not drop."""
    if keep:
        print(f"  kept {tmp}" + (f" and {PG_BENCH}" if kind == "postgres" else ""))
        return
    shutil.rmtree(tmp, ignore_errors=True)
    if kind == "postgres":
        try:
            drop_postgres()
        except Exception as e:
            print(f"  (could not drop {PG_BENCH_DB}: {e})")


@dataclass
class LoadReport:
    resources: int = 0
    seconds: float = 0.0
    via: dict[str, int] = field(default_factory=dict)  # "http-transaction" / "repository" -> count
    note: str = ""

    def as_dict(self) -> dict:
        rate = self.resources / self.seconds if self.seconds else 0
        return {**self.__dict__, "rate": round(rate, 1)}


def _groups(first: int, last: int, care_plans: int) -> list[dict]:
    return [r for p in range(first, last) for r in data.group(p, care_plans)]


# -- through the Repository (one process per core; each builds its own services) ------------
_services = None


def _repo_chunk(url: str, first: int, last: int, care_plans: int) -> int:
    global _services
    if _services is None:
        from gateway.app import build_services
        from gateway.settings import Settings

        _services = build_services(Settings(database_url=url))
    resources = _groups(first, last, care_plans)
    with _services.repo.writer() as session:
        for r in resources:
            session.write(r["resourceType"], r["id"], r, "PUT")
    return len(resources)


def load_repo(url: str, first: int, patients: int, care_plans: int, procs: int) -> int:
    step = 200  # patients per transaction (~1,200 resources)
    with ProcessPoolExecutor(procs) as pool:
        jobs = [
            pool.submit(_repo_chunk, url, p, min(p + step, patients), care_plans)
            for p in range(first, patients, step)
        ]
        return sum(job.result() for job in jobs)


# -- through the gateway's HTTP API ------------------------------------------------------------
async def _post_bundles(
    base: str, starts: list[int], patients: int, care_plans: int, auth: Auth | None
) -> int:
    sem, done = asyncio.Semaphore(4), 0
    async with aiohttp.ClientSession() as session:

        async def one(p: int) -> None:
            nonlocal done
            bundle = data.put_bundle(_groups(p, min(p + data.BUNDLE_GROUPS, patients), care_plans))
            async with sem, session.post(
                base + "/fhir", data=orjson.dumps(bundle),
                headers={"Content-Type": "application/fhir+json", **(auth() if auth else {})},
            ) as resp:  # fmt: skip
                text = await resp.text()
                if resp.status != 200:
                    raise RuntimeError(f"transaction answered {resp.status}: {text[:300]}")
            done += len(bundle["entry"])

        await asyncio.gather(*(one(p) for p in starts))
    return done


def load(
    url: str,
    gateway_base: str,
    care_plans: int,
    procs: int,
    budget_s: float,
    probe_bundles: int,
    auth: Auth | None,
) -> LoadReport:
    """Probe HTTP transactions on the first bundles; keep using them if the whole load would fit
    in `budget_s`, else load the rest through the Repository. `auth()` gives the bearer headers
    (refreshed as the load goes on: tokens live 300 s)."""
    patients = data.patients_for(care_plans)
    report, start = LoadReport(), time.perf_counter()
    probed = min(patients, probe_bundles * data.BUNDLE_GROUPS)
    probe = list(range(0, probed, data.BUNDLE_GROUPS))
    try:
        n = asyncio.run(_post_bundles(gateway_base, probe, patients, care_plans, auth))
        report.via["http-transaction"] = n
        per_patient = (time.perf_counter() - start) / probed
        next_p = probed
        if per_patient * patients <= budget_s:
            rest = list(range(next_p, patients, data.BUNDLE_GROUPS))
            report.via["http-transaction"] += asyncio.run(
                _post_bundles(gateway_base, rest, patients, care_plans, auth)
            )
            next_p = patients
        else:
            report.note = f"HTTP transactions too slow ({1 / per_patient:.0f} patients/s)"
    except RuntimeError as e:
        report.note = f"HTTP transactions unavailable: {str(e)[:200]}"
        next_p = 0
    if next_p < patients:
        report.via["repository"] = load_repo(url, next_p, patients, care_plans, procs)
    report.resources = sum(report.via.values())
    report.seconds = time.perf_counter() - start
    analyze(url)
    return report


def analyze(url: str) -> None:
    """Planner statistics after a bulk load, as autovacuum (PostgreSQL) or `PRAGMA optimize`
    (SQLite) would gather them on a running system; without them a fresh database plans
    `_include` lookups from the wrong index."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
    else:
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("PRAGMA optimize")
