"""What the coordination benchmark sends: the read-only `$`-operations as load-generator targets
(bench/load.py: wrk or aiohttp, random clients), and the state-changing ones as loops in which
each connection works on its own clients (`$assign-responsibility`; a handover cycle: `$handover`
by the current coordinator's side, then `$accept-handover` by the receiver), so that concurrent
requests never race on one plan. Every request carries a fresh bearer token, the acting role and
the purpose of use, as a partner system would send them. Never sends anything but to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from bench import coordination_data as cd
from bench.auth import Bearer
from bench.load import LoadResult, _percentile
from gateway.consent.vocabulary import CANONICAL

FOLLOW_UP_DATE = "2027-03-01"  # past most responsibilities' due dates: the report is full
# name -> path (one %07d: a random client below the read range); GET, through wrk or aiohttp.
READS: dict[str, str] = {
    "who-should-coordinate": "/fhir/$who-should-coordinate?social-services-client=false"
    "&many-work-ability-needs=true&cannot-manage-network-alone=true&no-sote-support=true",
    "coordinator": f"/fhir/CareTeam/{cd.CARETEAM}/$coordinator",
    "overlaps": f"/fhir/CarePlan/{cd.PLAN}/$overlaps",
    "follow-up": f"/fhir/$follow-up?date={FOLLOW_UP_DATE}",
    "client-plan html": f"/fhir/CarePlan/{cd.PLAN}/$client-plan?_format=html&lang=fi",
    "client-plan pdf": f"/fhir/CarePlan/{cd.PLAN}/$client-plan?_format=pdf&lang=fi",
}
BASELINE = f"/fhir/CarePlan/{cd.PLAN}"  # the cheapest gated request: a plain read
SAME_SECOND = 1.05
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


class RoleBearer(Bearer):
    """An organisation's bearer token plus its acting PractitionerRole and purpose of use."""

    def __init__(self, root: str, client_id: str, role: str) -> None:
        super().__init__(root, client_id)
        self.role = role

    def fresh(self) -> dict[str, str]:
        extra = {"X-Acting-Practitioner-Role": self.role, "X-Purpose-Of-Use": "CAREMGT"}
        return {**super().fresh(), **extra}


def _coding(system: str, code: str) -> dict[str, str]:
    return {"system": f"{CANONICAL}/CodeSystem/{system}", "code": code}


def _params(**values: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Parameters",
            "parameter": [{"name": k.replace("_", "-"), **v} for k, v in values.items()],
        }
    )


ASSIGN = _params(
    owner={"valueReference": {"reference": "Organization/org-kela"}},
    service={"valueCoding": _coding("service-kind", "kuntoutusselvitys")},
    description={"valueString": "Kuntoutusselvitys (benchmark) / rehabilitation assessment"},
    due={"valueDate": "2027-06-30"},
    requester={"valueReference": {"reference": cd.HOLDER_ROLE}},
)


def _handover_to(role: str) -> bytes:
    return _params(
        to={"valueReference": {"reference": role}},
        reason={"valueCoding": _coding("handover-reason", "sosiaalipalvelujen-asiakkuus")},
        note={"valueString": "Saattaen vaihtaen (benchmark) / escorted handover"},
    )


ACCEPT = _params(note={"valueString": "Otan kopin (benchmark) / accepted"})


# -- the loops -------------------------------------------------------------------------------------
# One unit of work of worker k (its i-th): a request, or a whole handover cycle; answers the
# status (of the first failing request, if any).
Step = Callable[[aiohttp.ClientSession, int, int], Awaitable[int]]


class Ops:
    """The gateway's sides (holder, receiver) and the loops over clients [first, first+count)."""

    def __init__(self, base: str, reads: int, first_handover: int, handovers: int) -> None:
        self.base, self.reads = base, reads
        self.holder = RoleBearer(base, cd.HOLDER, cd.HOLDER_ROLE)
        self.receiver = RoleBearer(base, cd.RECEIVER, cd.RECEIVER_ROLE)
        self.headers: dict[str, dict[str, str]] = {}
        self.first, self.count = first_handover, handovers
        self.at_receiver: set[int] = set()  # clients whose coordinator is the receiver now
        self.changed: dict[int, float] = {}  # client -> when its coordinator last changed
        self.failures: list[str] = []  # the first few failing answers, for the report
        self.connections = 8
        self.next_plan = itertools.count()

    def refresh(self) -> None:
        """Fresh tokens for both sides (before each run, outside the measured time)."""
        self.headers = {"holder": self.holder.fresh(), "receiver": self.receiver.fresh()}

    async def _send(
        self, s: aiohttp.ClientSession, side: str, path: str, body: bytes | None
    ) -> tuple[int, dict[str, Any]]:
        method = "GET" if body is None else "POST"
        headers = {**FHIR_JSON, **self.headers[side]}
        async with s.request(method, self.base + path, data=body, headers=headers) as resp:
            raw = await resp.read()
            if resp.status >= 400 and len(self.failures) < 5:
                self.failures.append(f"{method} {path} -> {resp.status}: {raw[:300]!r}")
            return resp.status, (orjson.loads(raw) if resp.status < 300 else {})

    async def read(self, s: aiohttp.ClientSession, k: int, i: int) -> int:
        path = BASELINE % random.randrange(self.reads)
        return (await self._send(s, "holder", path, None))[0]

    async def assign(self, s: aiohttp.ClientSession, k: int, i: int) -> int:
        plan = cd.PLAN % (next(self.next_plan) % self.reads)  # each plan in turn, never two at once
        path = f"/fhir/CarePlan/{plan}/$assign-responsibility"
        return (await self._send(s, "holder", path, ASSIGN))[0]

    async def handover_cycle(self, s: aiohttp.ClientSession, k: int, i: int) -> int:
        """One escorted handover of worker k's next client, proposed and accepted."""
        mine = range(self.first + k, self.first + self.count, self.connections)
        n = mine[i % len(mine)]
        wait = self.changed.get(n, 0.0) + SAME_SECOND - time.monotonic()
        if wait > 0:  # coordinator changes are dated to the second: one per second per network
            await asyncio.sleep(wait)
        frm, to = ("receiver", "holder") if n in self.at_receiver else ("holder", "receiver")
        role = cd.HOLDER_ROLE if to == "holder" else cd.RECEIVER_ROLE
        path = f"/fhir/CareTeam/{cd.CARETEAM % n}/$handover"
        status, task = await self._send(s, frm, path, _handover_to(role))
        if status != 201:
            return status
        path = f"/fhir/Task/{task['id']}/$accept-handover"
        status, _ = await self._send(s, to, path, ACCEPT)
        if status == 200:
            self.at_receiver ^= {n}
            self.changed[n] = time.monotonic()
        return status

    def run(self, step: Step, connections: int, seconds: float) -> LoadResult:
        self.connections = connections
        self.refresh()
        return asyncio.run(_loop(step, connections, seconds))


async def _loop(step: Step, connections: int, seconds: float) -> LoadResult:
    latencies: list[float] = []
    counts = {"requests": 0, "ok": 0}
    cpu = time.process_time()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(k: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                status = await step(session, k, i)
                latencies.append((time.perf_counter() - sent) * 1000)
                counts["requests"] += 1
                counts["ok"] += status < 400
                i += 1

        await asyncio.gather(*(worker(k) for k in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(counts["requests"], counts["ok"], elapsed, _percentile(latencies, 0.5),
                      _percentile(latencies, 0.99),
                      (time.process_time() - cpu) / elapsed)  # fmt: skip
