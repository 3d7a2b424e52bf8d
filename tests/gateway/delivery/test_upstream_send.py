"""upstream_send: a mirror's change goes to the upstream as a JSON Patch with an access token
from the upstream's token endpoint (SMART Backend Services, our demo key), cached; what the
upstream refuses for good is a "reject-" code, anything else is retried. Against a real HTTP
upstream stand-in (aiohttp.web on a loopback port) that checks the assertion's signature and,
given a Task, applies PATCHes to it as a FHIR server does (If-Match, JSON Patch tests, versions)
and can lose its answer: a PATCH sent again after A applied it is never applied twice."""

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
from gateway.errors import FhirError
from gateway.fhir_api.interactions.patch import apply_ops
from gateway.security.registry import load_registry
from gateway.settings import ORGANISATIONS_DIR
from tests.gateway.delivery.upstream_files import write_upstream

OPS = [{"op": "add", "path": "/status", "value": "accepted"}]
LOST_S = 1.0  # how late a lost answer comes (the sender's timeout is made shorter)


@dataclass
class Upstream:
    """A's token endpoint and Task PATCH: records what it got, answers `patch_status`."""

    patch_status: int = 200
    token_status: int = 200
    tokens: int = 0
    patches: list[tuple[str, str, str, Any]] = field(default_factory=list)
    port: int = 0
    # Tasks A holds (id -> Task with meta.versionId): PATCHes are applied to them
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    lose: int = 0  # this many applied PATCHes lose their answer (it comes after the timeout)
    if_match: list[str | None] = field(default_factory=list)  # of every PATCH
    gets: int = 0
    # called after each GET (before its answer): A changes the Task meanwhile
    after_get: Any = None
    token_endpoint: str | None = None  # what discovery names (None: its own, on the loopback)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    async def configuration(self, request: web.Request) -> web.Response:
        own = f"http://127.0.0.1:{self.port}/auth/token"
        return web.json_response({"token_endpoint": self.token_endpoint or own})

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
        self.if_match.append(request.headers.get("If-Match"))
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return web.json_response({"resourceType": "Task"}, status=self.patch_status)
        status = self.apply(request.match_info["id"], got[3], request.headers.get("If-Match"))
        if status == 200 and self.lose > 0:
            self.lose -= 1
            await asyncio.sleep(LOST_S)  # applied; the answer comes after the sender gave up
        return web.json_response(self.tasks[request.match_info["id"]], status=status)

    def apply(self, id: str, ops: list[dict[str, Any]], if_match: str | None = None) -> int:
        """A's PATCH: 412 unless If-Match names the current version, 422 for a failed test."""
        task = self.tasks[id]
        version = int(task["meta"]["versionId"])
        try:
            patched = apply_ops(orjson.loads(orjson.dumps(task)), ops)
        except FhirError:
            return 422
        if if_match is not None and if_match != f'W/"{version}"':
            return 412
        patched["meta"] = {"versionId": str(version + 1)}
        self.tasks[id] = patched
        return 200

    async def read(self, request: web.Request) -> web.Response:
        self.gets += 1
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return web.json_response({"resourceType": "OperationOutcome"}, status=404)
        answer = orjson.loads(orjson.dumps(task))
        if self.after_get is not None:
            self.after_get(self)
        etag = f'W/"{answer["meta"]["versionId"]}"'
        return web.json_response(answer, headers={"ETag": etag})


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
        app.router.add_get("/fhir/Task/{id}", fake.read)
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


def row(
    url: str,
    ops: Any = OPS,
    stream: str = "a",
    method: str = "PATCH",
    *,
    attempts: int = 1,
    **more: Any,
) -> Row:
    """An outbox row as mirror.push_back queues it (`more`: version, counts), tried `attempts`
    times with this try."""
    payload = orjson.dumps({"method": method, "url": url, "patch": ops, **more}).decode()
    return Row(
        1, "r1", "fhir", stream, 2, "message", "Task/m/_history/2", payload, url, 0, 0, attempts
    )


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


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://a.example/auth/token",  # plain http off the loopback: assertion in the clear
        "http://10.0.0.7:8080/auth/token",
        "http://kela@127.0.0.1/auth/token",  # a user part
        "https:///auth/token",  # no host
    ],
)
def test_a_token_endpoint_not_on_tls_is_never_called(
    upstream: Upstream, tokens: TokenCache, endpoint: str
) -> None:
    upstream.token_endpoint = endpoint
    assert send_all(tokens, row(f"{upstream.base}/Task/t1")) == ["token-endpoint-insecure"]
    assert upstream.tokens == 0 and upstream.patches == []


def test_secure_token_endpoints() -> None:
    assert upstream_send._secure("https://a.example/auth/token")
    assert upstream_send._secure("http://127.0.0.1:8080/auth/token")
    assert upstream_send._secure("http://localhost/auth/token")
    assert upstream_send._secure("http://[::1]:8080/auth/token")
    assert not upstream_send._secure("http://127.0.0.1.a.example/auth/token")
    assert not upstream_send._secure("http://[::1/auth/token")  # not a URL


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


# -- sending again ------------------------------------------------------------------------------
NOTE = {"text": "Asiakas tavattu", "authorReference": {"reference": "Organization/org-kela"}}
ADD_NOTE = [{"op": "add", "path": "/note/-", "value": NOTE}]
START = [
    {"op": "test", "path": "/status", "value": "accepted"},
    {"op": "add", "path": "/status", "value": "in-progress"},
]


@pytest.fixture
def at_a(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A's Task t1, version 3 (accepted, one note); answers later than LOST_S are lost."""
    monkeypatch.setattr(upstream_send, "TIMEOUT_S", LOST_S / 2)
    task = {
        "resourceType": "Task",
        "id": "t1",
        "meta": {"versionId": "3"},
        "status": "accepted",
        "note": [{"text": "first"}],
    }
    upstream.tasks["t1"] = task
    return task


def tries(tokens: TokenCache, url: str, ops: Any, n: int = 2, **more: Any) -> list[str | None]:
    """The relay's tries of one row: `n` sends, each counted as one more attempt."""
    return send_all(tokens, *(row(url, ops, attempts=i + 1, **more) for i in range(n)))


def test_a_note_sent_again_after_a_lost_answer_is_added_once(
    upstream: Upstream, tokens: TokenCache, at_a: dict[str, Any]
) -> None:
    upstream.lose = 1
    url = f"{upstream.base}/Task/t1"
    assert tries(tokens, url, ADD_NOTE, version=3) == ["timeout", None]
    task = upstream.tasks["t1"]
    assert task["note"] == [{"text": "first"}, NOTE] and task["meta"]["versionId"] == "4"
    assert upstream.if_match == ['W/"3"', 'W/"3"']  # the copy got 412, then A's Task was read
    assert upstream.gets == 1 and len(upstream.patches) == 2


def test_a_status_change_sent_again_after_a_lost_answer_is_delivered(
    upstream: Upstream, tokens: TokenCache, at_a: dict[str, Any]
) -> None:
    upstream.lose = 1
    url = f"{upstream.base}/Task/t1"
    assert tries(tokens, url, START, version=3) == ["timeout", None]  # not reject-422
    assert upstream.tasks["t1"]["status"] == "in-progress"
    assert upstream.tasks["t1"]["meta"]["versionId"] == "4"


def test_a_change_made_on_an_older_version_is_rebuilt_once_against_the_current(
    upstream: Upstream, tokens: TokenCache, at_a: dict[str, Any]
) -> None:
    """A's requester changed the Task after our mirror's copy (version 2 there, 3 now): the
    change, still missing at A, goes against version 3, and only what is missing."""
    at_a["note"].append(NOTE)  # the note is there already (an earlier copy of it, say)
    url = f"{upstream.base}/Task/t1"
    ops = START + ADD_NOTE
    assert send_all(tokens, row(url, ops, version=2)) == [None]
    task = upstream.tasks["t1"]
    assert task["status"] == "in-progress" and task["note"] == [{"text": "first"}, NOTE]
    assert upstream.if_match == ['W/"2"', 'W/"3"']
    assert upstream.patches[1][3] == START  # rebuilt: the note not added again
    assert task["meta"]["versionId"] == "4"


def test_a_change_that_no_longer_applies_is_refused_without_a_second_patch(
    upstream: Upstream, tokens: TokenCache, at_a: dict[str, Any]
) -> None:
    """A's requester cancelled the Task meanwhile; this is a later try (the first one's answer
    lost, or the first one never arrived): A refuses it by its test, and reading A's Task tells
    that it was not applied and no longer applies."""
    at_a["status"] = "cancelled"
    url = f"{upstream.base}/Task/t1"
    assert send_all(tokens, row(url, START, version=2, attempts=2)) == ["reject-422"]
    assert len(upstream.patches) == 1 and upstream.gets == 1
    assert upstream.tasks["t1"]["status"] == "cancelled"
    assert upstream.tasks["t1"]["meta"]["versionId"] == "3"


def test_a_first_refusal_by_a_test_is_not_looked_into(
    upstream: Upstream, tokens: TokenCache, at_a: dict[str, Any]
) -> None:
    at_a["status"] = "in-progress"  # someone else did it: the first try cannot be a copy
    assert send_all(tokens, row(f"{upstream.base}/Task/t1", START, version=3)) == ["reject-422"]
    assert upstream.gets == 0


def test_a_rebuilt_patch_that_meets_another_change_is_tried_again_later(
    upstream: Upstream, tokens: TokenCache, at_a: dict[str, Any]
) -> None:
    def meanwhile(a: Upstream) -> None:  # A changes the Task between our read and our PATCH
        if a.gets == 1:
            a.apply("t1", [{"op": "add", "path": "/description", "value": "tarkennettu"}])

    upstream.after_get = meanwhile
    url = f"{upstream.base}/Task/t1"
    assert tries(tokens, url, ADD_NOTE, version=2) == ["conflict-412", None]
    task = upstream.tasks["t1"]
    assert task["note"] == [{"text": "first"}, NOTE] and task["meta"]["versionId"] == "5"
    assert upstream.if_match == ['W/"2"', 'W/"3"', 'W/"2"', 'W/"4"']


def test_an_item_added_twice_by_our_user_is_added_twice(
    upstream: Upstream, tokens: TokenCache, at_a: dict[str, Any]
) -> None:
    """Two equal notes, two changes (the second made before A's copy of the first came back):
    `counts` tells the second from a copy of the first."""
    url = f"{upstream.base}/Task/t1"
    assert send_all(tokens, row(url, ADD_NOTE, version=3, counts=[1])) == [None]
    upstream.lose = 1
    assert tries(tokens, url, ADD_NOTE, version=3, counts=[2]) == ["timeout", None]
    assert upstream.tasks["t1"]["note"] == [{"text": "first"}, NOTE, NOTE]
    assert upstream.tasks["t1"]["meta"]["versionId"] == "5"


def test_a_row_queued_without_a_version_is_read_before_it_goes_again(
    upstream: Upstream, tokens: TokenCache, at_a: dict[str, Any]
) -> None:
    upstream.lose = 1
    url = f"{upstream.base}/Task/t1"
    assert tries(tokens, url, ADD_NOTE, n=3) == ["timeout", None, None]
    assert upstream.tasks["t1"]["note"] == [{"text": "first"}, NOTE]
    assert upstream.if_match == [None] and upstream.gets == 2
    # a later try of a change not there yet (its first try never reached A): sent against
    # the version read
    assert send_all(tokens, row(url, START, attempts=2)) == [None]
    assert upstream.tasks["t1"]["status"] == "in-progress"
    assert upstream.if_match == [None, 'W/"4"'] and upstream.gets == 3


@pytest.mark.parametrize(
    ("task", "ops", "counts", "want"),
    [
        ({"status": "a"}, [{"op": "add", "path": "/status", "value": "a"}], [], ("done", [])),
        (
            {"status": "a"},
            [{"op": "remove", "path": "/statusReason"}],
            [],
            ("done", []),
        ),
        (
            {"status": "b", "statusReason": {"text": "x"}},
            [
                {"op": "test", "path": "/status", "value": "a"},
                {"op": "add", "path": "/status", "value": "b"},
                {"op": "add", "path": "/statusReason", "value": {"text": "y"}},
            ],
            [],
            ("send", [{"op": "add", "path": "/statusReason", "value": {"text": "y"}}]),
        ),
        (
            {},  # A's note list is gone: the item makes a new one
            [{"op": "add", "path": "/note/-", "value": {"text": "n"}}],
            [],
            ("send", [{"op": "add", "path": "/note", "value": [{"text": "n"}]}]),
        ),
        (
            {"output": [{"valueString": "x", "id": "1"}]},  # A's own additions to our item
            [{"op": "add", "path": "/output", "value": [{"valueString": "x"}]}],
            [],
            ("done", []),
        ),
        ({}, [{"op": "replace", "path": "/status", "value": "a"}], [], ("unknown", [])),
        ({}, [{"op": "add", "path": "/note/0", "value": {}}], [], ("unknown", [])),
    ],
)
def test_replan(task: Any, ops: Any, counts: Any, want: Any) -> None:
    assert upstream_send.replan(task, ops, counts) == want
