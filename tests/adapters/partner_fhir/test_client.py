"""adapters/partner_fhir/client.py against a real partner on loopback: an aiohttp.web server and
two bare TCP listeners (one hangs up, one answers garbage) in a thread with their own loop. Every
failure is a stable code, never an exception out of push()."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from adapters.partner_fhir.client import PartnerClient, PushResult, parse_header, push_sync
from adapters.partner_fhir.errors import CODES, PartnerError

BODY = b'{"resourceType":"Bundle","type":"history","entry":[]}'


class Partner:
    """A partner's FHIR server on 127.0.0.1 (routes below), plus `reset_url` (accepts, reads,
    hangs up) and `garbage_url` (answers something that is not HTTP)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []  # request headers, in arrival order
        self.in_flight = self.max_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()
        self.port, reset, garbage = asyncio.run_coroutine_threadsafe(
            self._start(), self._loop
        ).result(5)
        self.reset_url = f"http://127.0.0.1:{reset}/"
        self.garbage_url = f"http://127.0.0.1:{garbage}/"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        for server in self._raw:
            server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> tuple[int, int, int]:
        app = web.Application()
        app.router.add_route("*", "/{name}", self._handle)
        # a client that gives up (the slow route) cancels its handler, so cleanup never waits
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        sock = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self._raw = [
            await asyncio.start_server(_hang_up, "127.0.0.1", 0),
            await asyncio.start_server(_garbage, "127.0.0.1", 0),
        ]
        return (sock.getsockname()[1], *(s.sockets[0].getsockname()[1] for s in self._raw))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        await request.read()
        name = request.match_info["name"]
        if name == "counted":
            return await self._counted()
        return CANNED[name]() if name in CANNED else await STREAMED[name](request)

    async def _counted(self) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.05)
        self.in_flight -= 1
        return web.Response(status=202)


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1024)
    writer.close()


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1024)
    writer.write(b"garbage\r\n\r\n")
    writer.close()


async def _endless(request: web.Request) -> web.StreamResponse:
    """200, then 64 KB chunks for as long as anyone reads (50 MB at most)."""
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(800):
        await response.write(b"x" * 65536)
    return response


async def _slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(5)
    return web.Response()


# route -> its answer (a fresh Response each time: aiohttp sends a Response only once)
CANNED: dict[str, Callable[[], web.Response]] = {
    "ok": lambda: web.Response(text='{"ok":1}', headers={"Set-Cookie": "s=1"}),
    "fail": lambda: web.Response(status=500, text="secret stack trace"),
    "moved": lambda: web.Response(status=302, headers={"Location": "/ok"}),
    "task": lambda: web.json_response({"id": "t1"}, headers={"ETag": 'W/"3"'}),
    "gzip": lambda: web.Response(body=gzip.compress(b"{}"), headers={"Content-Encoding": "gzip"}),
    "huge": lambda: web.Response(body=b"x" * 100_000),
}
STREAMED = {"endless": _endless, "slow": _slow}


@pytest.fixture(scope="module")
def partner() -> Iterator[Partner]:
    server = Partner()
    server.start()
    yield server
    server.stop()


def push(url: str, headers: tuple[str, ...] = (), timeout: float = 2.0) -> PushResult:
    async def once() -> PushResult:
        async with PartnerClient() as client:
            return await client.push(url, BODY, headers, timeout)

    return asyncio.run(once())


def request(method: str, url: str, **kwargs: Any) -> tuple[int, bytes, Any]:
    async def once() -> tuple[int, bytes, Any]:
        async with PartnerClient(max_response_bytes=65536) as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(once())


def test_a_2xx_is_ok_and_the_channel_headers_arrive(partner: Partner) -> None:
    result = push(partner.url("/ok"), ("Authorization: Bearer abc", "X-Tenant:  kela "))
    assert result == PushResult(200, None) and result.ok
    seen = partner.seen[-1]
    assert seen["Authorization"] == "Bearer abc" and seen["X-Tenant"] == "kela"
    assert seen["Content-Type"] == "application/fhir+json"
    assert seen["User-Agent"] == "fhir-plan-gateway"


def test_no_cookie_is_kept_between_calls(partner: Partner) -> None:
    async def twice() -> None:
        async with PartnerClient() as client:
            for _ in range(2):  # the first answer sets a cookie
                # a name, not 127.0.0.1: aiohttp's real jar drops cookies of IP hosts anyway
                url = partner.url("/ok").replace("127.0.0.1", "localhost")
                assert (await client.push(url, BODY)).ok

    asyncio.run(twice())
    assert "Cookie" not in partner.seen[-1]


def test_a_5xx_is_an_http_error_with_its_status(partner: Partner) -> None:
    assert push(partner.url("/fail")) == PushResult(500, "http-500")


def test_a_redirect_is_a_failure_and_not_followed(partner: Partner) -> None:
    before = len(partner.seen)
    assert push(partner.url("/moved")) == PushResult(302, "http-302")
    assert len(partner.seen) == before + 1  # /ok was never asked


def test_a_slow_partner_times_out_within_the_timeout(partner: Partner) -> None:
    start = time.monotonic()
    assert push(partner.url("/slow"), timeout=0.3) == PushResult(None, "timeout")
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize(
    ("where", "code"),
    [("closed", "refused"), ("reset", "reset"), ("garbage", "bad-response"), ("tls", "tls")],
)
def test_transport_failures_have_stable_codes(partner: Partner, where: str, code: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"  # nobody listens once it closes
    urls = {
        "closed": closed,
        "reset": partner.reset_url,
        "garbage": partner.garbage_url,
        "tls": partner.url("/ok").replace("http:", "https:"),  # TLS to a plain-HTTP port
    }
    assert push(urls[where]) == PushResult(None, code)


@pytest.mark.parametrize(
    "header",
    ["No colon", "Bad Name: x", "Content-Type: text/plain", "Host: evil", "X-A: b\r\nX-B: c"],
)
def test_a_bad_channel_header_fails_the_push_before_sending(partner: Partner, header: str) -> None:
    before = len(partner.seen)
    assert push(partner.url("/ok"), (header,)) == PushResult(None, "bad-header")
    assert len(partner.seen) == before
    with pytest.raises(PartnerError) as caught:
        parse_header(header)
    assert str(caught.value) == f"bad-header: {CODES['bad-header']}"  # no value quoted


def test_an_endless_answer_is_cut_at_the_cap(partner: Partner) -> None:
    start = time.monotonic()
    assert push(partner.url("/endless")) == PushResult(200, None)
    assert time.monotonic() - start < 1.0  # 50 MB were never read
    with pytest.raises(PartnerError, match="too-large"):
        request("GET", partner.url("/endless"))
    with pytest.raises(PartnerError, match="too-large"):
        request("GET", partner.url("/huge"))  # Content-Length says so before any byte


def test_per_host_bounds_the_requests_in_flight(partner: Partner) -> None:
    async def burst() -> list[PushResult]:
        async with PartnerClient(per_host=2) as client:
            pushes = [client.push(partner.url("/counted"), BODY) for _ in range(10)]
            return await asyncio.gather(*pushes)

    partner.max_in_flight = 0
    assert all(r == PushResult(202, None) for r in asyncio.run(burst()))
    assert partner.max_in_flight == 2


def test_environment_proxies_are_ignored(partner: Partner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the discard port: nobody there
    monkeypatch.setenv("NO_PROXY", "")
    assert push(partner.url("/ok")).ok


def test_request_returns_any_answer_with_its_headers(partner: Partner) -> None:
    status, body, headers = request("PUT", partner.url("/task"), json_body=b'{"id":"t1"}')
    assert (status, body, headers["etag"]) == (200, b'{"id": "t1"}', 'W/"3"')
    assert partner.seen[-1]["Content-Type"] == "application/fhir+json"
    assert partner.seen[-1]["Accept"] == "application/fhir+json"
    assert request("GET", partner.url("/fail"))[0] == 500
    assert request("GET", partner.url("/moved"))[0] == 302


def test_request_raises_typed_errors_without_the_body(partner: Partner) -> None:
    with pytest.raises(PartnerError) as caught:
        request("GET", partner.garbage_url)
    assert caught.value.code == "bad-response" and "garbage" not in str(caught.value)
    with pytest.raises(PartnerError, match="bad-response"):
        request("GET", partner.url("/gzip"))  # compressed although we asked for identity
    with pytest.raises(PartnerError, match="bad-endpoint"):
        request("GET", "ftp://partner.example/")


def test_push_sync_runs_its_own_loop(partner: Partner) -> None:
    assert push_sync(partner.url("/ok"), BODY, ("X-Trace: 1",)).ok
    assert push_sync("not a url", BODY) == PushResult(None, "bad-endpoint")
