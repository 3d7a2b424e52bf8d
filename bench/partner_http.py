"""Which HTTP client pushes notifications fastest: ~2 KB notification Bundles POSTed to a bare
aiohttp.web receiver (its own process, answering 200 with a small body) by httpx.AsyncClient,
aiohttp.ClientSession, httpx's sync Client in threads and our PartnerClient
(adapters/partner_fhir/client.py), each at a few concurrencies, in alternating rounds.
Prints pushes/s, p50 and p99 latency, the client's CPU per push and the ratio to aiohttp at the
same concurrency (the baseline of this run). It never leaves 127.0.0.1.

    .venv/bin/python bench/partner_http.py [--seconds 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.partner_fhir.client import PartnerClient  # noqa: E402
from bench.servers import free_port  # noqa: E402

HEADERS = {"Content-Type": "application/fhir+json", "Authorization": "Bearer bench"}
Push = Callable[[], Awaitable[int]]


def notification() -> bytes:
    """A ~2 KB history Bundle shaped like a Backport IG id-only event notification."""
    status = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": "Subscription/bench"}},
            {"name": "topic", "valueCanonical": "https://example/SubscriptionTopic/task-status"},
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": "event-notification"},
            {"name": "events-since-subscription-start", "valueString": "42"},
        ],
    }
    event = {"name": "notification-event", "part": [{"name": "event-number", "valueString": "42"}]}
    status["parameter"].extend([event] * 20)  # an id-only batch of 20 events
    entry = {"fullUrl": "https://gw.example/fhir/Task/t-1", "request": {"method": "PUT"}}
    body = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": status}, entry]}
    return orjson.dumps(body)


# -- the receiver (a subprocess) -----------------------------------------------------------------
def receive(port: int) -> None:
    from aiohttp import web

    async def notify(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/notify", notify)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/notify", content=b"{}").raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the receiver did not start")


# -- the async clients: `concurrency` workers pushing until the deadline -------------------------
async def _drive(push: Push, concurrency: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failed
        while (start := time.perf_counter()) < deadline:
            status = await push()
            latencies.append(time.perf_counter() - start)
            failed += not 200 <= status < 300

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failed


async def _httpx_async(url: str, body: bytes, n: int, seconds: float) -> tuple[list[float], int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def push() -> int:
            return (await client.post(url, content=body, headers=HEADERS)).status_code

        return await _drive(push, n, seconds)


async def _aiohttp(url: str, body: bytes, n: int, seconds: float) -> tuple[list[float], int]:
    connector = aiohttp.TCPConnector(limit=n)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def push() -> int:
            async with session.post(url, data=body, headers=HEADERS) as response:
                await response.read()
                return response.status

        return await _drive(push, n, seconds)


async def _partner(url: str, body: bytes, n: int, seconds: float) -> tuple[list[float], int]:
    async with PartnerClient(max_connections=n, per_host=n) as client:
        headers = ("Authorization: Bearer bench",)

        async def push() -> int:
            return (await client.push(url, body, headers)).status or 0

        return await _drive(push, n, seconds)


def _httpx_threads(url: str, body: bytes, n: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)

    def worker(client: httpx.Client) -> None:
        nonlocal failed
        while (start := time.perf_counter()) < deadline:
            status = client.post(url, content=body, headers=HEADERS).status_code
            latencies.append(time.perf_counter() - start)  # list.append is atomic
            failed += not 200 <= status < 300

    with httpx.Client(limits=limits, timeout=10) as client:
        threads = [threading.Thread(target=worker, args=(client,)) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return latencies, failed


Result = tuple[list[float], int]
ASYNC: dict[str, Callable[[str, bytes, int, float], Awaitable[Result]]] = {
    "aiohttp": _aiohttp,
    "httpx-async": _httpx_async,
    "PartnerClient": _partner,
}
# (client, concurrency); the first of each concurrency is that concurrency's baseline
VARIANTS = [
    ("aiohttp", 4),
    ("httpx-async", 4),
    ("httpx-threads", 4),
    ("PartnerClient", 4),
    ("aiohttp", 32),
    ("httpx-async", 32),
    ("PartnerClient", 32),
]


def measure(name: str, n: int, url: str, body: bytes, seconds: float) -> dict[str, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    if name == "httpx-threads":
        latencies, failed = _httpx_threads(url, body, n, seconds)
    else:
        latencies, failed = asyncio.run(ASYNC[name](url, body, n, seconds))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    return {
        "rate": len(latencies) / wall,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "cpu_us": cpu / len(latencies) * 1e6,
        "failed": failed,
    }


def report(
    results: dict[tuple[str, int], list[dict[str, float]]], opts: argparse.Namespace
) -> None:
    med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in results.items()}
    print(f"\n{len(notification())}-byte POSTs, {opts.rounds} rounds x {opts.seconds} s, medians")
    print(f"{'client':<15}{'conc':>5}{'pushes/s':>10}{'p50 ms':>9}{'p99 ms':>9}", end="")
    print(f"{'CPU us/push':>12}{'failed':>8}{'x aiohttp':>11}")
    for (name, n), m in med.items():
        ratio = m["rate"] / med[("aiohttp", n)]["rate"]
        print(f"{name:<15}{n:>5}{m['rate']:>10,.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}", end="")
        print(f"{m['cpu_us']:>12,.0f}{m['failed']:>8.0f}{ratio:>10.3f}x")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--seconds", type=float, default=2.0, help="per variant per round")
    args.add_argument("--rounds", type=int, default=2)
    args.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    opts = args.parse_args()
    if opts.serve:
        return receive(opts.serve)
    port = free_port()
    proc = start_receiver(port)
    url, body = f"http://127.0.0.1:{port}/notify", notification()
    try:
        measure("aiohttp", 4, url, body, 0.5)  # warm-up
        results: dict[tuple[str, int], list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for _ in range(opts.rounds):
            for name, n in VARIANTS:
                results[(name, n)].append(measure(name, n, url, body, opts.seconds))
    finally:
        proc.terminate()
        proc.wait(10)
    report(results, opts)


if __name__ == "__main__":
    main()
