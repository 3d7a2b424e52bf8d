"""Issue 6 fault tests: partner delivery with real processes, failing partners and killed relays.

1. `test_fan_out_survives_kills`: a real gateway (uvicorn subprocess, relay on, lease 5 s) and
   five partner rest-hook receivers (aiohttp, in this process), each failing 30 % of requests
   (half 500, half an answer later than the subscription's backport-timeout: applied, but too
   late for the relay). Each partner subscribes to the Tasks it owns; 1,000 Tasks are written
   in transaction bundles of PUTs (client-chosen ids: a bundle retried after a kill is safe; one
   that had landed makes new versions and legitimate new events) while the gateway is killed
   (SIGKILL, its whole process group) 20 times at random moments and restarted on the same
   database. After draining: no Task version lost, none applied twice, and each subscription's
   event numbers are 1..N with N its $status events-since-subscription-start.
2. `test_two_relays_never_send_one_event_at_once`: two gateway processes on one database, both
   relaying (each must send a share: their sockets are looked up in /proc), the writes split
   between them, small batches (max-count 2) and partners failing 10 % (500): every event
   delivered once, and no event number is ever in flight at a receiver twice at one moment.

Receivers de-duplicate by (subscription, event number), as the Backport IG asks of them; "applied
twice" is what de-duplication cannot hide: one number carrying two different events, or one
Task version told under two numbers. A partner never fails more than 3 times in a row, so the
drain stays bounded with the production backoff (2, 4, 8 s, ±20 %). Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from fhir_profiles import CANONICAL
from gateway.app import build_services
from gateway.settings import ORGANISATIONS_DIR, Settings
from tests.conftest import BACKENDS
from tests.e2e.server import _wait_ready, fetch_token, free_port, fresh_database

pytestmark = pytest.mark.e2e
PARTNERS = ("kela", "tyollisyyspalvelut", "jarjesto", "kela-pori", "pori-tyollisyys")
WRITER = "sote-keskus"  # system/*.cruds: the requester of every Task
TOPIC = f"{CANONICAL}/SubscriptionTopic/task-responsibility"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-"
LEASE_S = 5  # the relay's claim: past the longest send timeout here (2 s)
FAIL = 0.30  # of the receivers' answers
MAX_FAILS_IN_A_ROW = 3
DRAIN_S = 120.0


# -- the partners' receivers (this process) ---------------------------------------------------
@dataclass(frozen=True)
class Told:
    """One notification as a receiver read it."""

    subscription: str
    kind: str
    events: tuple[tuple[int, str, str], ...]  # (event number, event id, focus)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Told:
        params = body["entry"][0]["resource"]["parameter"]
        first = {p["name"]: p for p in params}
        events = []
        for p in params:
            if p["name"] == "notification-event":
                parts = {q["name"]: q for q in p["part"]}
                focus = parts["focus"]["valueReference"]["reference"].split("/fhir/", 1)[1]
                number = int(parts["event-number"]["valueString"])
                events.append((number, p["extension"][0]["valueUuid"], focus))
        subscription = first["subscription"]["valueReference"]["reference"].rsplit("/", 1)[1]
        return cls(subscription, first["type"]["valueCode"], tuple(events))


@dataclass
class Partner:
    """One partner's receiver: it applies each (subscription, event number) once and counts
    what de-duplication hides (duplicates) and what it cannot (conflicts, out of order)."""

    name: str
    rng: random.Random
    slow: bool  # some failures answer after the timeout (else all are 500s)
    fail: float = FAIL
    late_s: float = 3.0  # how late a slow answer comes (the timeouts here are 1-2 s)
    applied: dict[str, dict[int, tuple[str, str]]] = field(default_factory=dict)
    foci: dict[str, dict[str, int]] = field(default_factory=dict)  # sub -> focus -> number
    answers: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)
    in_flight: Counter[tuple[str, int]] = field(default_factory=Counter)
    overlaps: int = 0
    handshakes: int = 0
    fails_in_a_row: int = 0
    peers: Counter[int] = field(default_factory=Counter)  # requests by the sender's port

    def fate(self) -> str:
        fail = self.rng.random() < self.fail and self.fails_in_a_row < MAX_FAILS_IN_A_ROW
        self.fails_in_a_row = self.fails_in_a_row + 1 if fail else 0
        if not fail:
            return "ok"
        return "late" if self.slow and self.rng.random() < 0.5 else "500"

    async def handle(self, request: web.Request) -> web.Response:
        told = Told.of(orjson.loads(await request.read()))
        self.peers[request.transport.get_extra_info("peername")[1]] += 1  # type: ignore[union-attr]
        fate = self.fate()
        self.answers[fate] += 1
        if fate == "500":
            return web.Response(status=500)
        keys = [(told.subscription, n) for n, _, _ in told.events]
        self.overlaps += sum(1 for k in keys if self.in_flight[k])
        self.in_flight.update(keys)
        try:
            await asyncio.sleep(self.late_s if fate == "late" else self.rng.random() * 0.02)
        finally:
            self.in_flight.subtract(keys)
        self.apply(told)
        return web.Response(status=200)

    def apply(self, told: Told) -> None:
        if told.kind == "handshake":
            self.handshakes += 1
        applied = self.applied.setdefault(told.subscription, {})
        foci = self.foci.setdefault(told.subscription, {})
        for number, event_id, focus in told.events:
            if number in applied:
                self.duplicates += 1
                if applied[number] != (event_id, focus):
                    self.conflicts.append(f"{told.subscription} #{number}: two events")
                continue
            if number - 1 not in applied and number > 1:
                self.conflicts.append(f"{told.subscription} #{number} before #{number - 1}")
            if focus in foci:
                self.conflicts.append(f"{focus} applied as #{foci[focus]} and #{number}")
            applied[number], foci[focus] = (event_id, focus), number


class Receivers:
    """The partners' aiohttp.web servers, each on its own loopback port, on one loop in a
    thread of their own."""

    def __init__(self, partners: list[Partner]) -> None:
        self.partners = partners
        self.ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._runners: list[web.AppRunner] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Receivers:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        for partner in self.partners:
            app = web.Application()
            app.router.add_post("/{tail:.*}", partner.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._runners.append(runner)
            self.ports[partner.name] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/notify"


# -- the gateway processes ----------------------------------------------------------------------
@dataclass
class Gateway:
    """One gateway process on a fixed loopback port, restartable on the same database."""

    database: str
    workdir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.workdir / f"server-{self.port}-{len(self.logs)}.log"
        self.logs.append(log)
        cmd = [
            sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "300",
        ]  # fmt: skip
        env = {**os.environ, **self.env}
        env.pop("PLAN_GATEWAY_BASE_URL", None)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        _wait_ready(self.proc, self.base, log)

    def kill(self) -> None:
        """SIGKILL to the whole process group (the gateway leads its own session)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=80)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    def tracebacks(self) -> list[str]:
        return [p.name for p in self.logs if "Traceback" in p.read_text()]


def registrations(workdir: Path, receivers: Receivers) -> Path:
    """The demo registrations, each partner's delivery endpoint being its receiver."""
    folder = workdir / "organisations"
    folder.mkdir()
    for path in ORGANISATIONS_DIR.glob("*.json"):
        doc = json.loads(path.read_text())
        if doc["client_id"] in receivers.ports:
            port = receivers.ports[doc["client_id"]]
            doc["delivery"] = {"endpoints": [f"http://127.0.0.1:{port}/"], "purpose": "CAREMGT"}
        (folder / path.name).write_text(json.dumps(doc))
    return folder


def gateway_env(workdir: Path, organisations: Path, database: str) -> dict[str, str]:
    return {
        "PLAN_GATEWAY_DATABASE": database,
        "PLAN_GATEWAY_TOKEN_KEY_FILE": str(workdir / "token-key.json"),
        "PLAN_GATEWAY_ID_KEY_FILE": str(workdir / "id-key.hex"),
        "PLAN_GATEWAY_ORGANISATIONS": str(organisations),
        "PLAN_GATEWAY_REQUIRE_AUTH": "1",
        "PLAN_GATEWAY_DELIVERY_RELAY": "1",
        "PLAN_GATEWAY_DELIVERY_TEST_MODE": "1",
        "PLAN_GATEWAY_DELIVERY_LEASE_S": str(LEASE_S),
        # Every claim counts as an attempt, so rows claimed by a gateway that was then killed
        # back off long on their next failure (2^attempts s): with the production cap (600 s)
        # a loaded machine could outwait the drain. The backoff itself is tested elsewhere.
        "PLAN_GATEWAY_DELIVERY_BACKOFF_CAP_S": "4",
    }


# -- what the test does through the FHIR API ----------------------------------------------------
def subscription(endpoint: str, org: str, n: int, max_count: int | None) -> dict[str, Any]:
    """Task?owner=<org>: payload, timeout and max-count vary by partner."""
    payload = ("full-resource", "id-only")[n % 2]
    extensions = [
        {"url": BACKPORT + "timeout", "valueUnsignedInt": 1 + n % 2},
        {"url": BACKPORT + "max-count", "valuePositiveInt": max_count or (20, 10)[n % 2]},
    ]
    criteria = f"Task?owner=Organization/{org}"
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "fault test",
        "criteria": TOPIC,
        "_criteria": {
            "extension": [{"url": BACKPORT + "filter-criteria", "valueString": criteria}]
        },
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {
                "extension": [{"url": BACKPORT + "payload-content", "valueCode": payload}]
            },
            "extension": extensions,
        },
    }


def subscribe(gw: Gateway, receivers: Receivers, max_count: int | None = None) -> dict[str, str]:
    """partner -> its Subscription id."""
    subs = {}
    for n, name in enumerate(PARTNERS):
        headers = {"Authorization": f"Bearer {fetch_token(gw.root, name)}"}
        org = f"org-{name}"
        body = {"id": f"sub-{name}", **subscription(receivers.url(name), org, n, max_count)}
        r = httpx.put(f"{gw.base}/Subscription/sub-{name}", json=body, headers=headers, timeout=30)
        assert r.status_code == 201, r.text
        subs[name] = r.json()["id"]
    return subs


def task_id(n: int) -> str:
    return f"ft-{PARTNERS[n % len(PARTNERS)]}-{n:04d}"


def task_bundle(first: int, count: int) -> dict[str, Any]:
    entries = []
    for n in range(first, first + count):
        task = {
            "resourceType": "Task",
            "id": task_id(n),
            "status": "requested",
            "intent": "order",
            "description": f"fault test {n}",
            "requester": {"reference": f"Organization/org-{WRITER}"},
            "owner": {"reference": f"Organization/org-{PARTNERS[n % len(PARTNERS)]}"},
        }
        entries.append(
            {"resource": task, "request": {"method": "PUT", "url": f"Task/{task_id(n)}"}}
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@dataclass
class Writes:
    done: int = 0
    retried: int = 0  # bundles sent again after no answer (a kill)


def write_tasks(bases: list[str], tasks: int, size: int, pause: float, out: Writes) -> None:
    """Write `tasks` Tasks in bundles of `size`, through the gateways in turn, each bundle until
    one is answered 200 (a gateway killed mid-request: the same PUTs again)."""
    token = ""
    with httpx.Client(timeout=60) as client:
        for i, first in enumerate(range(0, tasks, size)):
            base = bases[i % len(bases)]
            while True:
                try:
                    token = token or fetch_token(base.removesuffix("/fhir"), WRITER)
                    headers = {"Authorization": f"Bearer {token}"}
                    r = client.post(base, json=task_bundle(first, size), headers=headers)
                except (httpx.TransportError, AssertionError):  # down, or starting
                    out.retried += 1
                    time.sleep(0.2)
                    continue
                if r.status_code == 401:
                    token = ""
                    continue
                assert r.status_code == 200, r.text
                break
            out.done += size
            time.sleep(pause)


def status(gw: Gateway, partner: str, sub: str, token: str) -> tuple[int, bool]:
    """(events-since-subscription-start, whether anything waits) from $status."""
    r = httpx.get(
        f"{gw.base}/Subscription/{sub}/$status",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    params = r.json()["entry"][0]["resource"]["parameter"]
    total = int(
        next(p["valueString"] for p in params if p["name"] == "events-since-subscription-start")
    )
    errors = [p["valueCodeableConcept"]["text"] for p in params if p["name"] == "error"]
    return total, any("waiting" in e or "dead" in e for e in errors)


def drain(
    gw: Gateway, partners: list[Partner], subs: dict[str, str], senders: Senders | None = None
) -> dict[str, int]:
    """Wait until every partner has applied 1..N of its subscription and nothing waits."""
    tokens = {p.name: fetch_token(gw.root, p.name) for p in partners}
    deadline = time.monotonic() + DRAIN_S
    while True:
        if senders is not None:
            senders.look()
        totals, done = {}, True
        for p in partners:
            total, waiting = status(gw, p.name, subs[p.name], tokens[p.name])
            totals[p.name] = total
            done &= not waiting and len(p.applied.get(subs[p.name], {})) >= total
        if done or time.monotonic() > deadline:
            return totals
        time.sleep(1.0)


class Senders:
    """Which gateway process sent what: the local ports of each one's TCP sockets (from /proc,
    looked at while the drain waits: the relay's client keeps its connections a while)."""

    def __init__(self, gateways: list[Gateway]) -> None:
        self.gateways = gateways
        self.ports: list[set[int]] = [set() for _ in gateways]

    def look(self) -> None:
        for n, gw in enumerate(self.gateways):
            if gw.proc is not None:
                self.ports[n] |= tcp_ports(gw.proc.pid)

    def shares(self, partners: list[Partner]) -> list[int]:
        """Requests each gateway sent (those on connections never seen open are not counted)."""
        sent = Counter[int]()
        for p in partners:
            sent.update(p.peers)
        return [sum(sent[port] for port in ports) for ports in self.ports]


def tcp_ports(pid: int) -> set[int]:
    """The local ports of the IPv4 TCP sockets process `pid` holds."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports = set()
    with contextlib.suppress(OSError), open(f"/proc/{pid}/net/tcp") as table:
        for line in table.readlines()[1:]:
            cols = line.split()
            if cols[9] in inodes:
                ports.add(int(cols[1].split(":")[1], 16))
    return ports


def stored_versions(database: str, workdir: Path, organisations: Path) -> dict[str, set[str]]:
    """owner -> every "Task/<id>/_history/<v>" the database holds (each must be told once)."""
    settings = Settings(
        database_url=database,
        token_key_file=str(workdir / "token-key.json"),
        id_key_file=str(workdir / "id-key.hex"),
        organisations_dir=str(organisations),
    )
    services = build_services(settings)
    try:
        with services.repo.reader() as session:
            rows = session.query(
                "SELECT res_id, version FROM history WHERE res_type = ? AND res_id LIKE ?",
                ("Task", "ft-%"),
            )
    finally:
        services.repo.close()
    out: dict[str, set[str]] = {name: set() for name in PARTNERS}
    for res_id, version in rows:
        owner = str(res_id)[3:].rsplit("-", 1)[0]
        out[owner].add(f"Task/{res_id}/_history/{version}")
    return out


def check(
    partners: list[Partner],
    subs: dict[str, str],
    totals: dict[str, int],
    stored: dict[str, set],
    tasks: int = 1000,
) -> None:
    for p in partners:
        applied = p.applied.get(subs[p.name], {})
        assert not p.conflicts, (p.name, p.conflicts[:5])
        assert sorted(applied) == list(range(1, totals[p.name] + 1)), (p.name, "gaps")
        told = {focus for _, focus in applied.values()}
        lost = stored[p.name] - told
        assert not lost, (p.name, f"{len(lost)} Task versions never told", sorted(lost)[:5])
        assert told == stored[p.name], (p.name, sorted(told - stored[p.name])[:5])
        ids = {f.split("/")[1] for f in told}
        assert len(ids) == tasks // len(PARTNERS), (p.name, "Tasks never told")


def report(partners: list[Partner], writes: Writes, kills: int, started: float) -> None:
    for p in partners:
        events = sum(len(a) for a in p.applied.values())
        print(
            f"  {p.name}: {events} events applied, {p.duplicates} duplicates hidden, "
            f"{p.handshakes} handshakes, answers {dict(p.answers)}, overlaps {p.overlaps}"
        )
    print(
        f"  writes {writes.done} Tasks ({writes.retried} bundle sends retried), {kills} kills, "
        f"{time.monotonic() - started:.1f}s"
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def setting_up(
    backend: str, tmp_path: Path, worker_id: str, purpose: str, slow: bool, seed: int
) -> Iterator[tuple[list[Partner], Receivers, Path, str]]:
    rng = random.Random(seed)
    partners = [Partner(name, random.Random(rng.random()), slow) for name in PARTNERS]
    with Receivers(partners) as receivers:
        organisations = registrations(tmp_path, receivers)
        database = fresh_database(backend, tmp_path, purpose, worker_id)
        yield partners, receivers, organisations, database
    shutil.rmtree(tmp_path / "organisations", ignore_errors=True)


TASKS = 1000  # the fan-out
RACE_TASKS = 400  # the two-relay race: enough claims to race for, in a third of the time
KILLS = 20


def test_fan_out_survives_kills(backend: str, tmp_path: Path, worker_id: str) -> None:
    seed = random.randrange(10**6)
    print(f"\n{backend}: seed {seed}")
    rng = random.Random(seed)
    started = time.monotonic()
    with setting_up(backend, tmp_path, worker_id, "dfaults", True, seed) as setup:
        partners, receivers, organisations, database = setup
        gw = Gateway(database, tmp_path, gateway_env(tmp_path, organisations, database))
        gw.start()
        try:
            subs = subscribe(gw, receivers)
            writes = Writes()
            writer = threading.Thread(
                target=write_tasks, args=([gw.base], TASKS, 10, 0.3, writes), daemon=True
            )
            writer.start()
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.3, 2.5))
                gw.kill()
                gw.start()
            writer.join(DRAIN_S)
            assert writes.done == TASKS, "the writer did not finish"
            totals = drain(gw, partners, subs)
        finally:
            gw.stop()
        report(partners, writes, KILLS, started)
        assert not gw.tracebacks(), gw.tracebacks()
        check(partners, subs, totals, stored_versions(database, tmp_path, organisations))
        assert sum(p.duplicates for p in partners) > 0, "no redelivery: nothing was tested"


def test_two_relays_never_send_one_event_at_once(
    backend: str, tmp_path: Path, worker_id: str
) -> None:
    """Small batches (max-count 2) and few failures (10 %, 500s only: a late answer would still
    be in flight when its own relay retries) make many claims for the two relays to race for."""
    seed = random.randrange(10**6)
    print(f"\n{backend}: seed {seed}")
    started = time.monotonic()
    with setting_up(backend, tmp_path, worker_id, "drelays", False, seed) as setup:
        partners, receivers, organisations, database = setup
        for p in partners:
            p.fail = 0.1
        env = gateway_env(tmp_path, organisations, database)
        gateways = [Gateway(database, tmp_path, env), Gateway(database, tmp_path, env)]
        senders = Senders(gateways)
        try:
            for gw in gateways:
                gw.start()
            subs = subscribe(gateways[0], receivers, max_count=2)
            writes = Writes()
            writer = threading.Thread(
                target=write_tasks,
                args=([g.base for g in gateways], RACE_TASKS, 10, 0.1, writes),
            )
            writer.start()
            while writer.is_alive():
                senders.look()
                writer.join(0.5)
            totals = drain(gateways[1], partners, subs, senders)
        finally:
            for gw in gateways:
                gw.stop()
        report(partners, writes, 0, started)
        shares = senders.shares(partners)
        print(f"  requests sent by gateway A, B: {shares}")
        for gw in gateways:
            assert not gw.tracebacks(), gw.tracebacks()
        stored = stored_versions(database, tmp_path, organisations)
        check(partners, subs, totals, stored, RACE_TASKS)
        assert sum(p.overlaps for p in partners) == 0
        assert all(shares), "one relay sent nothing: nothing raced"
