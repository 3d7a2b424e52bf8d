"""Load generators: wrk (C, preferred: cheapest per request on a 2-core machine) or an aiohttp
client (fallback, and for phases that cycle through many bodies).

A `Target` says what to send (with `auth`, a bearer token asked for just before each run: tokens
live 300 s); both generators return the same `LoadResult`. Random ids are
drawn uniformly from `path % n` for n in [0, count). The generator's own CPU use is measured and
reported, so a reader can see whether it was the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

from bench.auth import Bearer


@dataclass
class Target:
    base: str
    path: str  # may hold one %07d, filled with a random number below `count`
    count: int = 0
    method: str = "GET"
    bodies: list[bytes] = field(default_factory=list)  # cycled; wrk takes at most one
    cpu: Callable[[], float] | None = None  # CPU seconds so far of the server processes
    db_cpu: Callable[[], float] | None = None  # ... and of the database server (PostgreSQL)
    auth: Bearer | None = None  # the gateway's tokens: a fresh one for every run


@dataclass
class LoadResult:
    requests: int
    ok: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu: float  # the generator's CPU seconds per wall second (1.0 = one core)
    server_cpu_ms: float = float("nan")  # server processes' CPU milliseconds per ok request
    db_cpu_ms: float = 0.0  # the database server's CPU milliseconds per ok request

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rate": round(self.rate, 1)}


_LUA = """
local method, pattern, count = "%(method)s", "%(path)s", %(count)d
local headers = {["Content-Type"] = "application/fhir+json",
                 ["Accept"] = "application/fhir+json"%(extra)s}
local body = nil
if "%(body)s" ~= "" then local f = io.open("%(body)s", "rb"); body = f:read("*a"); f:close() end
function init(args) math.randomseed(os.time() + %(seed)d) end
function request()
  local path = pattern
  if count > 0 then path = string.format(pattern, math.random(0, count - 1)) end
  return wrk.format(method, path, headers, body)
end
function done(s, latency, requests)
  local e = s.errors
  io.write(string.format('{"requests":%%d,"bad":%%d,"us":%%d,"p50":%%d,"p99":%%d}\\n',
    s.requests, e.status + e.connect + e.read + e.write + e.timeout, s.duration,
    latency:percentile(50), latency:percentile(99)))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _lua_headers(headers: dict[str, str]) -> str:
    """`, ["Name"] = "value"` items for the Lua table (ASCII header values only)."""
    return "".join(f", [{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())


def run_wrk(
    t: Target, connections: int, seconds: float, headers: dict[str, str] | None = None
) -> LoadResult:
    assert len(t.bodies) <= 1, "wrk sends one body; use the aiohttp generator"
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_file = ""
        if t.bodies:
            body_file = str(Path(tmp) / "body.json")
            Path(body_file).write_bytes(t.bodies[0])
        script = Path(tmp) / "target.lua"
        script.write_text(_LUA % dict(method=t.method, path=t.path, count=t.count,
                                      body=body_file, seed=random.randrange(1 << 20),
                                      extra=_lua_headers(headers or {})))  # fmt: skip
        cpu = _children_cpu()
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout",
               "10s", "-s", str(script), t.base]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        cpu = _children_cpu() - cpu
    r = json.loads(out.strip().splitlines()[-1])
    secs = r["us"] / 1e6
    return LoadResult(r["requests"], r["requests"] - r["bad"], secs, r["p50"] / 1000,
                      r["p99"] / 1000, cpu / secs)  # fmt: skip


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def _aiohttp(
    t: Target, connections: int, seconds: float, extra: dict[str, str]
) -> LoadResult:
    latencies: list[float] = []
    counts = {"requests": 0, "ok": 0}
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json", **extra}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(t.base, connector=connector) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                path = t.path % random.randrange(t.count) if t.count else t.path
                body = t.bodies[i % len(t.bodies)] if t.bodies else None
                i += connections
                sent = time.perf_counter()
                async with session.request(t.method, path, data=body, headers=headers) as resp:
                    await resp.read()
                    counts["ok"] += resp.status < 400
                counts["requests"] += 1
                latencies.append((time.perf_counter() - sent) * 1000)

        await asyncio.gather(*(worker(k) for k in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(counts["requests"], counts["ok"], elapsed, _percentile(latencies, 0.5),
                      _percentile(latencies, 0.99), 0.0)  # fmt: skip


def run_aiohttp(
    t: Target, connections: int, seconds: float, headers: dict[str, str] | None = None
) -> LoadResult:
    cpu = time.process_time()
    result = asyncio.run(_aiohttp(t, connections, seconds, headers or {}))
    result.client_cpu = (time.process_time() - cpu) / result.seconds
    return result


def run(t: Target, connections: int, seconds: float, client: str) -> LoadResult:
    # A token issued now outlives any run (300 s); asked for before the CPU readings start.
    headers = t.auth.fresh() if t.auth else {}
    before = t.cpu() if t.cpu else 0.0
    db_before = t.db_cpu() if t.db_cpu else 0.0
    if client == "wrk" and len(t.bodies) <= 1:
        result = run_wrk(t, connections, seconds, headers)
    else:
        result = run_aiohttp(t, connections, seconds, headers)
    if t.cpu and result.ok:
        result.server_cpu_ms = (t.cpu() - before) * 1000 / result.ok
    if t.db_cpu and result.ok:
        result.db_cpu_ms = (t.db_cpu() - db_before) * 1000 / result.ok
    return result
