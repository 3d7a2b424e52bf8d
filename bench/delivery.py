"""Partner delivery end to end (issue 6): how fast the relay (gateway/delivery/relay.py) drains
the outbox to a rest-hook receiver, against a bare aiohttp client in the same run, and what the
outbox costs a write.

    .venv/bin/python bench/delivery.py [--database sqlite|postgres|both] [--events 2000]
                                       [--subscriptions 8] [--changes 1000] [--rounds 2]
                                       [--payload id-only|full-resource]

Per database, in a fresh store: a gateway (uvicorn, 1 worker, bearer tokens required, relay off)
takes the writes; a receiver (aiohttp.web in its own process) answers every POST 200 and counts
requests, bytes and events. Kela subscribes S times (task-responsibility, Task?owner=org-kela,
max-count 20) and Kela Pori S times (Task?owner=org-kela-pori, max-count 1), all to the receiver.

- drain, per round: N/S Task changes (transaction Bundles of 50 PUTs as sote-keskus, each Task for
  one of 100 Patients, so every push is audited) fill the outbox with N events; then a Relay in
  this process (a thread, as in the gateway, the heap frozen as there) is started and timed
  until the receiver has all N and the outbox has nothing left to send. One unmeasured round
  first, then ANALYZE (as autovacuum would soon do: PostgreSQL plans a fresh table blind).
  Baseline, in alternating order: aiohttp.ClientSession POSTs as many bodies of the same mean
  size to the same receiver, S at a time (the relay's concurrency: one batch per stream).
  Printed: notifications/s, events/s, CPU per notification (this process, plus the PostgreSQL
  backends for the relay), and the relay ÷ baseline ratio of notifications/s (goal ≥ 0.5).
  "max-count 20" batches events; "max-count 1" is one event per push.
- write cost: K Task changes owned by org-typ (no subscription matches) and K owned by org-kela
  (S match), alternating, through the same gateway: µs per change and the ratio.

PostgreSQL: the database plan_gateway_bench_delivery (not bench/databases.py's, so it can run
beside the other benches), dropped and recreated, dropped at the end. The machine is shared:
read the ratios. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402

from bench.auth import Bearer  # noqa: E402
from bench.servers import Servers, free_port, postgres_cpu  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "plan_gateway_bench_delivery"
TOPIC = "https://fhir-plan-gateway.example/SubscriptionTopic/task-responsibility"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-"
BATCHED, SINGLE, QUIET = "kela", "kela-pori", "typ"  # owners: max-count 20, max-count 1, none
BUNDLE = 50


# -- the receiver (a subprocess) -----------------------------------------------------------------
def receive(port: int) -> None:
    from aiohttp import web

    seen = {"requests": 0, "bytes": 0, "events": 0}
    waiting: list[tuple[int, asyncio.Future[None]]] = []

    async def notify(request: web.Request) -> web.Response:
        body = await request.read()
        seen["requests"] += 1
        seen["bytes"] += len(body)
        seen["events"] += body.count(b'"notification-event"')
        for entry in [w for w in waiting if w[0] <= seen["events"]]:
            waiting.remove(entry)
            if not entry[1].done():
                entry[1].set_result(None)
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(seen)

    async def wait(request: web.Request) -> web.Response:
        """Answers once `events` have come (or after `timeout` s): the bench waits on this
        instead of polling, so its waiting costs the measured process nothing."""
        target = int(request.query["events"])
        if seen["events"] < target:
            done = asyncio.get_running_loop().create_future()
            waiting.append((target, done))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done, float(request.query.get("timeout", "600")))
        return web.json_response(seen)

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_get("/wait", wait)
    app.router.add_post("/{tail:.*}", notify)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Receiver:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(workdir / "receiver.log", "wb")  # noqa: SIM115 (kept open for the child)
        cmd = [sys.executable, __file__, "--serve-receiver", str(self.port)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.stats()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the receiver did not start")

    def stats(self) -> dict[str, int]:
        return dict(self.client.get(f"{self.url}/stats").json())

    def wait(self, events: int, timeout: float) -> dict[str, int]:
        """The counts once the receiver has `events` events, or after `timeout` seconds."""
        params = {"events": str(events), "timeout": str(timeout)}
        answer = self.client.get(f"{self.url}/wait", params=params, timeout=timeout + 10)
        return dict(answer.json())

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


# -- the store, the gateway and the subscriptions -------------------------------------------------
def fresh_database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'gateway.db'}"
    drop_postgres()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{PG_DB}"


def drop_postgres() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


def registrations(tmp: Path, receiver: Receiver) -> Path:
    """The demo registrations, Kela's and Kela Pori's delivery endpoint being the receiver."""
    from gateway.settings import ORGANISATIONS_DIR

    folder = tmp / "organisations"
    folder.mkdir()
    for path in ORGANISATIONS_DIR.glob("*.json"):
        doc = json.loads(path.read_text())
        if doc["client_id"] in (BATCHED, SINGLE):
            doc["delivery"] = {"endpoints": [f"{receiver.url}/"], "purpose": "CAREMGT"}
        (folder / path.name).write_text(json.dumps(doc))
    return folder


def environment(database: str, tmp: Path, organisations: Path) -> dict[str, str]:
    return {
        "PLAN_GATEWAY_DATABASE": database,
        "PLAN_GATEWAY_REQUIRE_AUTH": "1",
        "PLAN_GATEWAY_TOKEN_KEY_FILE": str(tmp / "token-key.json"),
        "PLAN_GATEWAY_ID_KEY_FILE": str(tmp / "id-key.hex"),
        "PLAN_GATEWAY_ORGANISATIONS": str(organisations),
        "PLAN_GATEWAY_DELIVERY_TEST_MODE": "1",
        "PLAN_GATEWAY_DELIVERY_RELAY": "0",  # this process relays, when measured
    }


def subscribe(
    root: str, receiver: Receiver, org: str, count: int, max_count: int, payload: str
) -> None:
    headers = Bearer(root, org, "system/Subscription.cruds").fresh()
    for n in range(count):
        sub = {
            "resourceType": "Subscription",
            "id": f"bench-{org}-{n}",
            "status": "requested",
            "reason": "bench",
            "criteria": TOPIC,
            "_criteria": {
                "extension": [
                    {
                        "url": BACKPORT + "filter-criteria",
                        "valueString": f"Task?owner=Organization/org-{org}",
                    }
                ]
            },
            "channel": {
                "type": "rest-hook",
                "endpoint": f"{receiver.url}/{org}/{n}",
                "payload": "application/fhir+json",
                "_payload": {
                    "extension": [{"url": BACKPORT + "payload-content", "valueCode": payload}]
                },
                "header": ["Authorization: Bearer partner-secret"],
                "extension": [{"url": BACKPORT + "max-count", "valuePositiveInt": max_count}],
            },
        }
        r = httpx.put(
            f"{root}/fhir/Subscription/{sub['id']}", json=sub, headers=headers, timeout=60
        )
        if r.status_code not in (200, 201):
            raise RuntimeError(f"Subscription answered {r.status_code}: {r.text[:300]}")


def change_tasks(root: str, writer: Bearer, owner: str, count: int, tag: str) -> float:
    """`count` Task changes (create or update) owned by org-`owner`, in Bundles of 50 PUTs;
    returns the seconds the gateway took."""
    elapsed = 0.0
    with httpx.Client(timeout=120) as client:
        for first in range(0, count, BUNDLE):
            entries = []
            for n in range(first, min(first + BUNDLE, count)):
                task = {
                    "resourceType": "Task", "id": f"bench-{owner}-{n}", "status": "requested",
                    "intent": "order", "description": f"bench change {tag}",
                    "for": {"reference": f"Patient/bench-client-{n % 100}"},
                    "requester": {"reference": "Organization/org-sote-keskus"},
                    "owner": {"reference": f"Organization/org-{owner}"},
                }  # fmt: skip
                entries.append(
                    {"resource": task, "request": {"method": "PUT", "url": f"Task/{task['id']}"}}
                )
            body = orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
            headers = {"Content-Type": "application/fhir+json", **writer()}
            start = time.perf_counter()
            r = client.post(f"{root}/fhir", content=body, headers=headers)
            elapsed += time.perf_counter() - start
            if r.status_code != 200:
                raise RuntimeError(f"transaction answered {r.status_code}: {r.text[:300]}")
    return elapsed


# -- the relay (this process) and the baseline -----------------------------------------------------
def services(database: str, tmp: Path, organisations: Path) -> Any:
    from gateway.app import build_services
    from gateway.settings import Settings

    settings = Settings(
        database_url=database,
        token_key_file=str(tmp / "token-key.json"),
        id_key_file=str(tmp / "id-key.hex"),
        organisations_dir=str(organisations),
        delivery_test_mode=True,
    )
    svc = build_services(settings)
    gc.collect()  # as the gateway process does (gateway.app.server_app): the heap built so far
    gc.freeze()  # is kept out of the collector's way, else every full collection walks it
    return svc


def relay_drain(svc: Any, receiver: Receiver, events: int, pg: str | None) -> dict[str, float]:
    """Start a relay and time it until the receiver has `events` more events and the outbox
    holds nothing more to send (every outcome recorded)."""
    from gateway.delivery.relay import Relay

    before = receiver.stats()
    relay = Relay(svc)
    cpu, db_cpu, wall = time.process_time(), postgres_cpu(pg) if pg else 0.0, time.perf_counter()
    relay.start()
    # One blocking request until the receiver has them all (a poll every few ms, an HTTP client
    # in this process, took GIL time and CPU from the relay being measured), then a cheap poll
    # of the outbox until every outcome is recorded.
    now = receiver.wait(before["events"] + events, 600)
    deadline = time.perf_counter() + 60
    while now["events"] - before["events"] < events or pending(svc):
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"the relay delivered {now['events'] - before['events']} of {events}"
            )
        time.sleep(0.002)
        if now["events"] - before["events"] < events:
            now = receiver.stats()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu + ((postgres_cpu(pg) - db_cpu) if pg else 0.0)
    relay.stop()
    got = {k: receiver.stats()[k] - before[k] for k in now}
    if got["events"] != events:
        raise RuntimeError(f"the receiver got {got['events']} events for {events}")
    return {
        "notifications": got["requests"], "events": got["events"], "wall": wall, "cpu": cpu,
        "size": got["bytes"] / max(got["requests"], 1),
    }  # fmt: skip


def pending(svc: Any) -> bool:
    with svc.repo.reader() as session:
        return bool(
            session.query("SELECT 1 FROM outbox WHERE sent_us IS NULL AND dead_us IS NULL LIMIT 1")
        )


async def _post_all(url: str, body: bytes, count: int, concurrency: int) -> None:
    headers = {"Content-Type": "application/fhir+json", "Authorization": "Bearer partner-secret"}
    left = iter(range(count))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in left:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"the receiver answered {response.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def baseline(receiver: Receiver, shape: dict[str, float], concurrency: int) -> dict[str, float]:
    """As many POSTs of as many bytes as the relay's drain `shape` sent, `concurrency` at once."""
    count, size = int(shape["notifications"]), int(shape["size"])
    body = b'{"resourceType":"Bundle","type":"history","pad":"' + b"x" * max(size - 52, 0) + b'"}'
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(_post_all(f"{receiver.url}/baseline", body, count, concurrency))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"notifications": count, "wall": wall, "cpu": cpu}


# -- one database -------------------------------------------------------------------------------
def run_database(kind: str, opts: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    receiver = Receiver(tmp)
    pg = PG_DB if kind == "postgres" else None
    try:
        database = fresh_database(kind, tmp)
        organisations = registrations(tmp, receiver)
        with Servers(tmp, workers=1) as servers:
            gw = servers.start(
                "gateway",
                "bench.serve_gateway:create",
                environment(database, tmp, organisations),
                "/fhir/metadata",
            )
            writer = Bearer(gw.base)
            S = opts.subscriptions
            subscribe(gw.base, receiver, BATCHED, S, 20, opts.payload)
            subscribe(gw.base, receiver, SINGLE, S, 1, opts.payload)
            svc = services(database, tmp, organisations)
            handshakes(svc, receiver, 2 * S)
            drains = measure_drains(gw.base, writer, svc, receiver, pg, opts)
            writes = write_cost(gw.base, writer, opts)
            svc.repo.close()
    finally:
        receiver.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        if kind == "postgres":
            drop_postgres()
    report(kind, opts, drains, writes)


def handshakes(svc: Any, receiver: Receiver, count: int) -> None:
    """Rounds of the relay until the subscriptions' handshakes are delivered (not timed)."""
    from gateway.delivery.relay import Relay

    relay = Relay(svc)
    while receiver.stats()["requests"] < count:
        relay.run_once()


def measure_drains(
    root: str,
    writer: Bearer,
    svc: Any,
    receiver: Receiver,
    pg: str | None,
    opts: argparse.Namespace,
) -> dict[str, list[dict[str, float]]]:
    """Per round and owner: fill the outbox, then the relay and the baseline (alternating which
    goes first; a baseline sends as many bodies of the same size as the relay's last drain)."""
    S = opts.subscriptions
    for owner in (BATCHED, SINGLE):  # warm-up (not measured): caches, and the tables' statistics
        change_tasks(root, writer, owner, opts.events // S, f"{owner}-warm")
        relay_drain(svc, receiver, opts.events // S * S, None)
    analyze(svc)
    out: dict[str, list[dict[str, float]]] = {}
    for r in range(opts.rounds):
        for owner in (BATCHED, SINGLE):
            relays, bases = out.setdefault(owner, []), out.setdefault("base-" + owner, [])
            change_tasks(root, writer, owner, opts.events // S, f"{owner}-{r}")
            early = r % 2 == 1 and relays
            if early:
                bases.append(baseline(receiver, relays[-1], S))
            relays.append(relay_drain(svc, receiver, opts.events // S * S, pg))
            if not early:
                bases.append(baseline(receiver, relays[-1], S))
    return out


def analyze(svc: Any) -> None:
    """Table statistics now, as autovacuum would gather them within a minute or so (PostgreSQL
    plans a fresh table's queries blind: the outbox claim scanned ~100x longer before)."""
    with svc.repo.writer() as session:
        session.execute("ANALYZE")


def write_cost(root: str, writer: Bearer, opts: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per change: K changes of Tasks no subscription watches, then K watched by S."""
    change_tasks(root, writer, QUIET, opts.changes, "warm")  # creates them (not measured)
    out: dict[str, list[float]] = {QUIET: [], BATCHED: []}
    for r in range(opts.rounds):
        for owner in (QUIET, BATCHED) if r % 2 == 0 else (BATCHED, QUIET):
            out[owner].append(
                change_tasks(root, writer, owner, opts.changes, f"cost-{r}") / opts.changes
            )
    return out


def report(
    kind: str,
    opts: argparse.Namespace,
    drains: dict[str, list[dict]],
    writes: dict[str, list[float]],
) -> None:
    S = opts.subscriptions
    changes = opts.events // S
    print(
        f"\n{kind}: {opts.events} events per round ({changes} Task changes x {S} subscriptions), "
        f"{opts.payload}, {opts.rounds} rounds, {S} at a time, medians"
    )
    print(
        f"{'':<22}{'notif/s':>9}{'events/s':>10}{'bytes':>7}{'CPU us/notif':>13}{'x baseline':>11}"
    )
    for owner, label in ((BATCHED, "max-count 20"), (SINGLE, "max-count 1")):
        relay, base = drains[owner], drains["base-" + owner]
        rate = statistics.median(d["notifications"] / d["wall"] for d in relay)
        events = statistics.median(d["events"] / d["wall"] for d in relay)
        size = statistics.median(d["size"] for d in relay)
        cpu = statistics.median(d["cpu"] / d["notifications"] * 1e6 for d in relay)
        base_rate = statistics.median(d["notifications"] / d["wall"] for d in base)
        base_cpu = statistics.median(d["cpu"] / d["notifications"] * 1e6 for d in base)
        ratio = rate / base_rate
        print(f"relay, {label:<15}{rate:>9,.0f}{events:>10,.0f}{size:>7,.0f}", end="")
        print(f"{cpu:>13,.0f}{ratio:>10.3f}x")
        print(f"aiohttp, {label:<13}{base_rate:>9,.0f}{'':>10}{size:>7,.0f}{base_cpu:>13,.0f}")
    quiet, watched = (statistics.median(writes[o]) * 1e6 for o in (QUIET, BATCHED))
    print(
        f"write cost per Task change (bundles of {BUNDLE}): {quiet:,.0f} us with no subscription "
        f"matching, {watched:,.0f} us with {S} matching: +{watched - quiet:,.0f} us "
        f"({watched / quiet:.2f}x), {(watched - quiet) / S:,.0f} us per outbox event"
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    args.add_argument("--events", type=int, default=2000, help="events per drain round")
    args.add_argument("--subscriptions", type=int, default=8)
    args.add_argument("--changes", type=int, default=1000, help="Task changes per write-cost round")
    args.add_argument("--rounds", type=int, default=2)
    args.add_argument("--payload", choices=("id-only", "full-resource"), default="id-only")
    args.add_argument("--serve-receiver", type=int, help=argparse.SUPPRESS)
    opts = args.parse_args()
    if opts.serve_receiver:
        return receive(opts.serve_receiver)
    os.environ.pop("PLAN_GATEWAY_BASE_URL", None)
    for kind in ("sqlite", "postgres") if opts.database == "both" else (opts.database,):
        run_database(kind, opts)


if __name__ == "__main__":
    main()
