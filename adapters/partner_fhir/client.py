"""The HTTP client for partner FHIR servers: rest-hook notification pushes (Subscriptions R4
Backport IG) and plain FHIR calls, from one asyncio loop (the relay's thread). Connections come
from a bounded pool, every call has a total timeout, redirects are never followed and at most
`max_response_bytes` of an answer are read. It never logs, never keeps cookies, never uses proxies
from the environment, and no body or header value ever reaches an error.

Why aiohttp, not httpx (used elsewhere in the project): bench/partner_http.py, 2 KB POSTs to a
loopback aiohttp.web receiver on the 2-core box, two runs, pushes/s and client CPU per push:

    concurrency 4:  aiohttp 9,789 / 5,954 (95-99 us);  httpx.AsyncClient 0.12-0.15x (840-920 us);
                    httpx.Client in 4 threads 0.14-0.33x (390-730 us)
    concurrency 32: aiohttp 11,376 / 5,683 (87-103 us); httpx.AsyncClient 0.03-0.04x (3.2-3.8 ms,
                    p99 440-620 ms)
    this client:    0.77-0.99x of aiohttp at 4, 1.0-1.1x at 32

httpx spends 9-35x aiohttp's CPU per push, CPU the gateway on the same box needs, and its async
pool degrades as concurrency grows, which is exactly what the relay does (many partners at once).
This is the only module that imports aiohttp (STYLE.md #7).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import aiohttp

from adapters.partner_fhir.errors import PartnerError

FHIR_JSON = "application/fhir+json"
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 5.6.2: a field name
# Headers that frame the message or that this client sets: a Subscription may not replace them.
_OWNED = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive"}
    | {"te", "trailer", "upgrade", "expect", "accept-encoding", "user-agent"}
)
# aiohttp exception -> our code; first match wins, so subclasses come before their bases.
_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (TimeoutError, "timeout"),  # the total timeout, and aiohttp's ServerTimeoutError
    (aiohttp.ClientSSLError, "tls"),
    (aiohttp.ClientConnectorDNSError, "dns"),
    (aiohttp.ClientConnectorError, "refused"),
    (aiohttp.InvalidURL, "bad-endpoint"),
    (aiohttp.NonHttpUrlClientError, "bad-endpoint"),
    (aiohttp.ServerDisconnectedError, "reset"),
    (aiohttp.ClientPayloadError, "reset"),
    (aiohttp.ClientOSError, "reset"),
    (aiohttp.ClientResponseError, "bad-response"),
    (aiohttp.ClientError, "network"),
)
_CAUGHT = tuple(kind for kind, _ in _ERRORS)


@dataclass(frozen=True)
class PushResult:
    """One push's outcome: the partner's status (None if no answer came) and an error code
    (errors.CODES, or "http-<status>" for an answer outside 2xx; None when accepted)."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


@functools.lru_cache(maxsize=1024)  # a subscription's headers are parsed for every push
def parse_header(text: str) -> tuple[str, str]:
    """(name, value) of a Subscription.channel.header string "Name: value"."""
    name, colon, value = text.partition(":")
    value = value.strip()
    if not colon or not _TOKEN.fullmatch(name) or name.lower() in _OWNED:
        raise PartnerError("bad-header")
    if any(c in value for c in "\r\n\0"):  # header injection
        raise PartnerError("bad-header")
    return name, value


@functools.lru_cache(maxsize=1024)
def _push_headers(content_type: str, headers: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """A push's request headers (made once per subscription's channel headers, not per push)."""
    return (("Content-Type", content_type), *map(parse_header, headers))


@functools.lru_cache(maxsize=256)
def _bounds(total: float, connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)  # frozen: safe to share


def error_code(error: BaseException) -> str:
    return next(code for kind, code in _ERRORS if isinstance(error, kind))


class PartnerClient:
    """Use as `async with PartnerClient() as client:`, or call close() when done; the session is
    made on first use, inside the running loop, and belongs to that loop."""

    def __init__(
        self,
        *,
        max_connections: int = 64,
        per_host: int = 8,
        connect_timeout: float = 5.0,
        max_response_bytes: int = 64 * 1024,
        user_agent: str = "fhir-plan-gateway",
    ) -> None:
        self._limits = (max_connections, per_host)
        self._connect_timeout = connect_timeout
        self._max_response = max_response_bytes
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PartnerClient:
        self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            limit, per_host = self._limits
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit, limit_per_host=per_host),
                cookie_jar=aiohttp.DummyCookieJar(),  # a partner keeps no state in our calls
                trust_env=False,  # no HTTP(S)_PROXY, no .netrc: straight to the partner
                # with Accept-Encoding: identity, so the byte cap bounds what we hold
                auto_decompress=False,
                headers={"User-Agent": self._user_agent, "Accept-Encoding": "identity"},
            )
        return self._session

    def _call(self, method: str, url: str, body: bytes | None, headers: Any, timeout: float) -> Any:
        # `total` counts from the call, so the wait for a pooled connection is inside it.
        bounds = _bounds(timeout, self._connect_timeout)
        return self._open().request(
            method, url, data=body, headers=headers, timeout=bounds, allow_redirects=False
        )

    async def push(
        self,
        url: str,
        body: bytes,
        headers: Sequence[str] = (),
        timeout: float = 10.0,
        content_type: str = FHIR_JSON,
    ) -> PushResult:
        """POST one notification; never raises for network or HTTP problems. The answer's body
        is read (up to the cap, so the connection can be reused) and dropped."""
        try:
            sent = _push_headers(content_type, tuple(headers))
            async with self._call("POST", url, body, sent, timeout) as response:
                await _read_capped(response, self._max_response)
                status = response.status
        except PartnerError as e:
            return PushResult(None, e.code)
        except _CAUGHT as e:
            return PushResult(None, error_code(e))
        return PushResult(status, None if 200 <= status < 300 else f"http-{status}")

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: bytes | None = None,
        headers: Mapping[str, str] = _NO_HEADERS,
        timeout: float = 10.0,
        content_type: str = FHIR_JSON,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """(status, body, headers with lower-cased names) of any answer, 3xx-5xx included;
        PartnerError when none usable came (network, "too-large", compressed). The body goes
        as `content_type` (a JSON Patch, a token request's form)."""
        sent = {"Accept": FHIR_JSON, **headers}
        if json_body is not None:
            sent["Content-Type"] = content_type
        try:
            async with self._call(method, url, json_body, sent, timeout) as response:
                body = await _read_capped(response, self._max_response)
                answer = _headers(response)
        except _CAUGHT as e:
            raise PartnerError(error_code(e)) from None
        if body is None:
            raise PartnerError("too-large")
        if answer.get("content-encoding", "identity") != "identity":
            raise PartnerError("bad-response", "the answer is compressed")
        return response.status, body, answer


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None once it passes `limit`; the rest stays unread (the connection is then
    closed rather than pooled)."""
    if (response.content_length or 0) > limit:
        return None
    if response.content_length is not None:  # bounded by the check above: one read
        return await response.read()
    chunks, size = [], 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        found[key] = f"{found[key]}, {value}" if key in found else value
    return found


def push_sync(
    url: str, body: bytes, headers: Sequence[str] = (), timeout: float = 10.0
) -> PushResult:
    """One push from synchronous code (CLI, tests): its own short-lived loop and client. Not for
    use inside a running loop."""

    async def once() -> PushResult:
        async with PartnerClient(max_connections=1, per_host=1) as client:
            return await client.push(url, body, headers, timeout)

    return asyncio.run(once())
