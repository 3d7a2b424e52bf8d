"""upstream_send: a mirror's change goes to the upstream as a JSON Patch with an access token
from the upstream's token endpoint (SMART Backend Services, our demo key), cached; what the
upstream refuses for good is a "reject-" code, anything else is retried. Against a real HTTP
upstream stand-in (aiohttp.web on a loopback port) that checks the assertion's signature."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import import_key

from adapters.partner_fhir.client import PartnerClient
from gateway.delivery import upstream_send
from gateway.delivery.outbox import Row
from gateway.delivery.upstream_send import TokenCache
from gateway.delivery.upstreams import load_upstreams
from gateway.security.registry import load_registry
from gateway.settings import ORGANISATIONS_DIR
from tests.gateway.delivery.upstream_files import write_upstream

OPS = [{"op": "add", "path": "/status", "value": "accepted"}]


@dataclass
class Upstream:
    """A's token endpoint and Task PATCH: records what it got, answers `patch_status`."""

    patch_status: int = 200
    token_status: int = 200
    tokens: int = 0
    patches: list[tuple[str, str, str, Any]] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    async def configuration(self, request: web.Request) -> web.Response:
        return web.json_response({"token_endpoint": f"http://127.0.0.1:{self.port}/auth/token"})

    async def token(self, request: web.Request) -> web.Response:
        form = dict(parse_qsl((await request.read()).decode()))
        kela = load_registry(ORGANISATIONS_DIR).client("kela")
        assert kela is not None
        key = import_key(kela.jwks[0])
        claims = jwt.decode(form["client_assertion"], key, algorithms=["ES384"]).claims
        assert claims["iss"] == "kela" and claims["aud"] == str(request.url)
        assert form["grant_type"] == "client_credentials"
        assert request.content_type == "application/x-www-form-urlencoded"
        self.tokens += 1
        if self.token_status != 200:
            return web.json_response({"error": "invalid_client"}, status=self.token_status)
        body = {"access_token": f"token-{self.tokens}", "expires_in": 300, "token_type": "bearer"}
        return web.json_response(body)

    async def patch(self, request: web.Request) -> web.Response:
        got = (
            request.path,
            request.content_type,
            request.headers.get("Authorization", ""),
            orjson.loads(await request.read()),
        )
        self.patches.append(got)
        return web.json_response({"resourceType": "Task"}, status=self.patch_status)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    fake = Upstream()
    loop = asyncio.new_event_loop()
    runner_box: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_get("/fhir/.well-known/smart-configuration", fake.configuration)
        app.router.add_post("/auth/token", fake.token)
        app.router.add_patch("/fhir/Task/{id}", fake.patch)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        fake.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runner_box.append(runner)

    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield fake
    asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def tokens(upstream: Upstream, tmp_path: Path) -> TokenCache:
    write_upstream(tmp_path, upstream.base)
    return TokenCache(load_upstreams(tmp_path))


def row(url: str, ops: Any = OPS, stream: str = "a", method: str = "PATCH") -> Row:
    payload = orjson.dumps({"method": method, "url": url, "patch": ops}).decode()
    return Row(1, "r1", "fhir", stream, 2, "message", "Task/m/_history/2", payload, url, 0, 0, 1)


def send_all(tokens: TokenCache, *rows: Row) -> list[str | None]:
    async def run() -> list[str | None]:
        async with PartnerClient() as client:
            return [await upstream_send.send(client, r, tokens) for r in rows]

    return asyncio.run(run())


def test_a_patch_goes_with_a_token_fetched_once(upstream: Upstream, tokens: TokenCache) -> None:
    url = f"{upstream.base}/Task/t1"
    assert send_all(tokens, row(url), row(url)) == [None, None]
    assert upstream.tokens == 1  # cached for the second send
    path, ctype, auth, ops = upstream.patches[0]
    assert (path, ctype, auth, ops) == (
        "/fhir/Task/t1",
        "application/json-patch+json",
        "Bearer token-1",
        OPS,
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (422, "reject-422"),
        (409, "reject-409"),
        (404, "reject-404"),
        (503, "http-503"),
        (429, "http-429"),
    ],
)
def test_refusals_are_permanent_or_retried(
    upstream: Upstream, tokens: TokenCache, status: int, code: str
) -> None:
    upstream.patch_status = status
    assert send_all(tokens, row(f"{upstream.base}/Task/t1")) == [code]


def test_a_refused_token_is_asked_for_again(upstream: Upstream, tokens: TokenCache) -> None:
    upstream.patch_status = 401
    url = f"{upstream.base}/Task/t1"
    assert send_all(tokens, row(url), row(url)) == ["http-401", "http-401"]
    assert upstream.tokens == 2


def test_no_token_no_patch(upstream: Upstream, tokens: TokenCache) -> None:
    upstream.token_status = 400
    assert send_all(tokens, row(f"{upstream.base}/Task/t1")) == ["token-400"]
    assert upstream.patches == []


def test_payloads_it_will_not_send(upstream: Upstream, tokens: TokenCache) -> None:
    elsewhere = row("https://elsewhere.example/fhir/Task/t1")
    delete = row(f"{upstream.base}/Task/t1", method="DELETE")
    unknown = row(f"{upstream.base}/Task/t1", stream="b")
    assert send_all(tokens, elsewhere, delete, unknown) == [
        "reject-payload",
        "reject-payload",
        "upstream-unknown",
    ]
    assert upstream.patches == [] and upstream.tokens == 0


def test_an_upstream_that_is_down_is_retried(tmp_path: Path) -> None:
    write_upstream(tmp_path, "http://127.0.0.1:9/fhir")  # discard port: nothing listens
    tokens = TokenCache(load_upstreams(tmp_path))
    assert send_all(tokens, row("http://127.0.0.1:9/fhir/Task/t1")) == ["refused"]
