"""Issue 3: "after kill -9 of the server during 1,000 reads, audit events = successful responses".

A real gateway (uvicorn in its own process group) on a fresh database gets 1,000 reads by id,
32 at a time, each with its own X-Request-Id. Once about half have been answered, the whole
process group is killed with SIGKILL. Then, from the database as the kill left it (and a
restarted server on it):

- every read answered 200 has exactly one read AuditEvent carrying its request id;
- every other stored read event belongs to a request in flight at the kill (sent, unanswered);
  so read events <= responses + in flight;
- no request started after the kill has any event, and no request id has two.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.app import build_services
from gateway.audit import codes
from gateway.settings import Settings
from tests.conftest import BACKENDS
from tests.e2e.server import _wait_ready, fetch_token, free_port, fresh_database

pytestmark = pytest.mark.e2e
READS = 1000
CONCURRENCY = 32
KILL_AFTER = 500  # answered reads before the kill
PLANS = 5
CALLER = "sote-keskus"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def kill(self) -> None:
        """SIGKILL to the server's whole process group (it leads its own session)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def start(database_url: str, workdir: Path) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    log = workdir / f"server-{port}.log"
    env = {
        **os.environ,
        "PLAN_GATEWAY_DATABASE": database_url,
        "PLAN_GATEWAY_TOKEN_KEY_FILE": str(workdir / "token-key.json"),
        "PLAN_GATEWAY_REQUIRE_AUTH": "1",
    }
    env.pop("PLAN_GATEWAY_BASE_URL", None)
    cmd = [
        sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "300",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(proc, base, log)
    try:
        _wait_ready(proc, base, log)
    except BaseException:
        server.kill()
        raise
    return server


@pytest.fixture(params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path: Path, worker_id: str
) -> Iterator[tuple[str, Path]]:
    yield fresh_database(request.param, tmp_path, "auditkill", worker_id), tmp_path


@dataclass
class Run:
    """What the client saw of each request, by request id."""

    answered: set[str] = field(default_factory=set)  # 200 received in full
    in_flight: set[str] = field(default_factory=set)  # sent before the kill, never answered
    after_kill: set[str] = field(default_factory=set)  # started once the server was dead
    other: Counter[int] = field(default_factory=Counter)  # any other status (none expected)


async def fire(server: Server, token: str, ids: list[str]) -> Run:
    run = Run()
    killed = asyncio.Event()
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for n, rid in enumerate(ids):
        queue.put_nowait((n, rid))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n, rid = queue.get_nowait()
            before_kill = not killed.is_set()
            try:
                r = await client.get(
                    f"{server.base}/CarePlan/plan-{n % PLANS}", headers={"X-Request-Id": rid}
                )
            except httpx.TransportError:
                (run.in_flight if before_kill else run.after_kill).add(rid)
                continue
            if not before_kill:
                raise AssertionError(f"{rid} was answered by a killed server")
            if r.status_code != 200:
                run.other[r.status_code] += 1
                continue
            assert r.headers["x-request-id"] == rid
            assert orjson.loads(r.content)["id"] == f"plan-{n % PLANS}"
            run.answered.add(rid)
            if len(run.answered) >= KILL_AFTER and not killed.is_set():
                killed.set()  # before the kill: whatever starts now cannot reach the server
                server.kill()

    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return run


def read_events(database_url: str, workdir: Path) -> list[dict[str, Any]]:
    settings = Settings(database_url=database_url, token_key_file=str(workdir / "token-key.json"))
    services = build_services(settings)
    try:
        with services.repo.reader() as session:
            rows = session.query("SELECT body FROM resources WHERE res_type = ?", ["AuditEvent"])
            return [
                orjson.loads(bytes(r[0]) if isinstance(r[0], memoryview) else r[0]) for r in rows
            ]
    finally:
        services.repo.close()


def request_id_of(event: dict[str, Any]) -> str | None:
    for entity in event.get("entity", []):
        if entity.get("type", {}).get("code") == codes.REQUEST_ID_TYPE[1]:
            return str(entity["what"]["identifier"]["value"])
    return None


def is_read(event: dict[str, Any]) -> bool:
    return event["type"]["code"] == codes.REST[1] and event["subtype"][0]["code"] == "read"


def test_kill_during_reads(database: tuple[str, Path]) -> None:
    url, workdir = database
    started = time.monotonic()
    server = start(url, workdir)
    try:
        token = fetch_token(server.base.removesuffix("/fhir"), CALLER)
        auth = {"Authorization": f"Bearer {token}"}
        for n in range(PLANS):
            plan = {"resourceType": "CarePlan", "id": f"plan-{n}", "status": "active",
                    "intent": "plan", "subject": {"display": "test"}}  # fmt: skip
            headers = {**auth, "X-Request-Id": f"load-{n}"}
            r = httpx.put(
                f"{server.base}/CarePlan/plan-{n}", json=plan, headers=headers, timeout=30
            )
            assert r.status_code == 201, r.text
        ids = [f"kill-{n:04d}" for n in range(READS)]
        run = asyncio.run(fire(server, token, ids))
    finally:
        server.kill()
    assert "Traceback" not in server.log.read_text(), server.log.read_text()[-4000:]
    assert not run.other, run.other
    assert len(run.answered) >= KILL_AFTER
    assert run.after_kill, "every request was sent before the kill: nothing tested the cut-off"
    assert len(run.answered) + len(run.in_flight) + len(run.after_kill) == READS

    # the database as the kill left it (SQLite recovers its WAL on open)
    events = read_events(url, workdir)
    reads = Counter(request_id_of(e) for e in events if is_read(e))
    loads = [e for e in events if (request_id_of(e) or "").startswith("load-")]
    assert len(loads) == PLANS and not any(is_read(e) for e in loads)
    assert len(events) == sum(reads.values()) + PLANS, "only the loads and reads are audited"
    assert all(v == 1 for v in reads.values()), [k for k, v in reads.items() if v > 1]
    missing = run.answered - set(reads)
    assert not missing, f"{len(missing)} answered reads have no AuditEvent: {sorted(missing)[:5]}"
    surplus = set(reads) - run.answered
    assert surplus <= run.in_flight, sorted(surplus - run.in_flight)[:5]
    assert not set(reads) & run.after_kill
    assert sum(reads.values()) <= len(run.answered) + len(run.in_flight)

    # and the gateway starts again on it, audits on as before
    again = start(url, workdir)
    try:
        token = fetch_token(again.base.removesuffix("/fhir"), CALLER)
        headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "after-restart"}
        r = httpx.get(f"{again.base}/CarePlan/plan-0", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        again.kill()
    after = read_events(url, workdir)
    assert Counter(request_id_of(e) for e in after if is_read(e))["after-restart"] == 1
    assert len(after) == len(events) + 1
    print(
        f"answered {len(run.answered)}, in flight {len(run.in_flight)} "
        f"({len(surplus)} of them audited), after the kill {len(run.after_kill)}; "
        f"{time.monotonic() - started:.1f}s"
    )
