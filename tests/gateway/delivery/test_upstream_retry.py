"""Our user's change of a mirror, told to A again after A applied it but its answer was lost
(the relay's timeout; B stopped before it recorded the answer): applied once at A, and
delivered, never a dead letter. On both stores, with the gateway itself as A (Kela's calls
answered by its FHIR API in-process, If-Match and JSON Patch tests as it checks them) behind a
real HTTP stand-in (aiohttp.web on a loopback port) that loses the first answer; the same gateway
as B holds the mirror (notified of A's Task through its inbox) and runs the relay."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from fastapi.testclient import TestClient

from gateway.delivery import mirror, outbox
from gateway.delivery.outbox import Backoff
from gateway.delivery.relay import Relay
from gateway.delivery.upstreams import load_upstreams
from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from gateway.settings import Settings
from tests.gateway.delivery.upstream_files import SECRET, notification, write_upstream

TASK = "aino-task-kela"  # A's Task for Kela (the samples), mirrored at B
LEASE_S = 1.5  # the relay's lease: each send gives up after about a second
LOST_S = 2.0  # a lost answer comes this late
PATCH = {"Content-Type": "application/json-patch+json"}
CHANNEL = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/fhir+json"}


class A:
    """A's FHIR API as Kela reaches it: token endpoint of its own, Task read and PATCH by
    `forward` (method, id, JSON Patch or None, If-Match) -> (status, body, ETag)."""

    def __init__(self) -> None:
        self.port = 0
        self.lose = 0  # this many applied PATCHes lose their answer
        self.patches: list[str | None] = []  # the If-Match of each PATCH
        self.forward: Callable[[str, str, Any, str | None], tuple[int, bytes, str]] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    async def configuration(self, request: web.Request) -> web.Response:
        return web.json_response({"token_endpoint": f"http://127.0.0.1:{self.port}/auth/token"})

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t", "expires_in": 300, "token_type": "bearer"})

    async def call(self, request: web.Request) -> web.Response:
        assert self.forward is not None
        ops = orjson.loads(await request.read()) if request.method == "PATCH" else None
        if_match = request.headers.get("If-Match")
        if request.method == "PATCH":
            self.patches.append(if_match)
        loop = asyncio.get_running_loop()
        status, body, etag = await loop.run_in_executor(
            None, self.forward, request.method, request.match_info["id"], ops, if_match
        )
        if request.method == "PATCH" and status == 200 and self.lose > 0:
            self.lose -= 1
            await asyncio.sleep(LOST_S)  # applied; the answer comes after the relay gave up
        headers = {"ETag": etag} if etag else {}
        return web.Response(
            body=body, status=status, headers=headers, content_type="application/fhir+json"
        )


@pytest.fixture
def a_side() -> Iterator[A]:
    fake, loop, ready = A(), asyncio.new_event_loop(), threading.Event()
    runners: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_get("/fhir/.well-known/smart-configuration", fake.configuration)
        app.router.add_post("/auth/token", fake.token)
        app.router.add_route("*", "/fhir/Task/{id}", fake.call)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        fake.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runners.append(runner)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield fake
    asyncio.run_coroutine_threadsafe(runners[0].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, a_side: A) -> Settings:
    write_upstream(tmp_path / "upstreams", a_side.base)
    settings.upstreams_dir = str(tmp_path / "upstreams")
    return settings


@pytest.fixture
def kela(services: Services, client: TestClient, org_client: Any, a_side: A) -> Any:
    """Kela's client of the gateway (A's side and B's), A's Task with a note of its own, and
    its mirror at B."""
    load_samples(services)
    kela = org_client("kela")

    def forward(method: str, id: str, ops: Any, if_match: str | None) -> tuple[int, bytes, str]:
        if method == "GET":
            answer = kela.get(f"/fhir/Task/{id}")
        else:
            headers = {**PATCH, **({"If-Match": if_match} if if_match else {})}
            answer = kela.patch(f"/fhir/Task/{id}", json=ops, headers=headers)
        return answer.status_code, answer.content, answer.headers.get("etag", "")

    a_side.forward = forward
    first = [{"op": "add", "path": "/note", "value": [{"text": "first"}]}]
    assert kela.patch(f"/fhir/Task/{TASK}", json=first, headers=PATCH).status_code == 200
    task = kela.get(f"/fhir/Task/{TASK}").json()
    told = notification(a_side.base, [(1, task, task["meta"]["versionId"])])
    answer = client.post("/delivery/notifications/a", content=orjson.dumps(told), headers=CHANNEL)
    assert answer.status_code == 200, answer.text
    return kela


def mirror_url(services: Services) -> str:
    assert services.ids is not None
    upstream = load_upstreams(services.settings.upstreams_dir)["a"]
    return f"/fhir/Task/{mirror.mirror_id(services.ids, upstream, TASK)}"


def relay_rounds(services: Services, rounds: int = 3) -> list[tuple[str, int, str | None]]:
    """Rounds of the relay (no backoff); the fhir rows' (state, attempts, last error)."""
    relay = Relay(services, backoff=Backoff(base=0, jitter=0), lease=LEASE_S)
    for _ in range(rounds):
        relay.run_once()
        time.sleep(0.1)
    with services.repo.reader() as session:
        return [(r.state, r.attempts, r.last_error) for r in outbox.listing(session, stream="a")]


def at_a(kela: Any) -> dict[str, Any]:
    task: dict[str, Any] = kela.get(f"/fhir/Task/{TASK}").json()
    return task


def test_a_note_told_again_after_a_lost_answer_is_at_a_once(
    services: Services, settings: Settings, kela: Any, a_side: A
) -> None:
    version = at_a(kela)["meta"]["versionId"]
    note = [{"op": "add", "path": "/note/-", "value": {"text": "Asiakas tavattu"}}]
    assert kela.patch(mirror_url(services), json=note, headers=PATCH).status_code == 200
    a_side.lose = 1
    rows = relay_rounds(services)
    assert [n["text"] for n in at_a(kela)["note"]] == ["first", "Asiakas tavattu"]
    assert rows == [("sent", 2, None)]  # the first try timed out
    assert a_side.patches == [f'W/"{version}"'] * 2  # the copy: 412, then A's Task read


def test_a_status_change_told_again_after_a_lost_answer_is_delivered(
    services: Services, settings: Settings, kela: Any, a_side: A
) -> None:
    assert at_a(kela)["status"] == "accepted"
    start = [{"op": "replace", "path": "/status", "value": "in-progress"}]
    assert kela.patch(mirror_url(services), json=start, headers=PATCH).status_code == 200
    a_side.lose = 1
    rows = relay_rounds(services)
    assert at_a(kela)["status"] == "in-progress"
    assert rows == [("sent", 2, None)]  # the second try: not dead as reject-422


def test_a_change_on_a_task_a_changed_meanwhile_goes_against_its_new_version(
    services: Services, settings: Settings, kela: Any, a_side: A
) -> None:
    note = [{"op": "add", "path": "/note/-", "value": {"text": "Asiakas tavattu"}}]
    assert kela.patch(mirror_url(services), json=note, headers=PATCH).status_code == 200
    own = [{"op": "add", "path": "/note/-", "value": {"text": "A:n oma"}}]  # not yet at B
    assert kela.patch(f"/fhir/Task/{TASK}", json=own, headers=PATCH).status_code == 200
    version = int(at_a(kela)["meta"]["versionId"])
    assert relay_rounds(services, 1) == [("sent", 1, None)]
    assert [n["text"] for n in at_a(kela)["note"]] == ["first", "A:n oma", "Asiakas tavattu"]
    assert a_side.patches == [f'W/"{version - 1}"', f'W/"{version}"']


def test_a_change_that_no_longer_applies_at_a_is_a_dead_letter(
    services: Services, settings: Settings, kela: Any, a_side: A
) -> None:
    start = [{"op": "replace", "path": "/status", "value": "in-progress"}]
    assert kela.patch(mirror_url(services), json=start, headers=PATCH).status_code == 200
    done = [{"op": "replace", "path": "/status", "value": "completed"}]  # at A, not yet at B
    assert kela.patch(f"/fhir/Task/{TASK}", json=done, headers=PATCH).status_code == 200
    assert relay_rounds(services, 1) == [("dead", 1, "reject-422")]
    assert at_a(kela)["status"] == "completed"
