"""Telling an upstream what our users did with its Tasks: the relay's sender for outbox rows of
channel "fhir" (queued by mirror.push_back), a JSON Patch of the upstream's Task.

We call the upstream as its registered client: an access token from its token endpoint (SMART
Backend Services, https://hl7.org/fhir/smart-app-launch/backend-services.html: discovery at
{base}/.well-known/smart-configuration, client_credentials with a private_key_jwt assertion
signed with our key), kept until shortly before it expires. `send` returns None once the
upstream took the change; else an error code: "reject-<status>" for an answer that sending again
cannot change (the relay dead-letters it), any other code is retried with backoff.

Never logs, and never puts a token, a key or a body in an error code.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

import orjson
from joserfc import jwt

from adapters.partner_fhir.client import PartnerClient
from adapters.partner_fhir.errors import PartnerError
from gateway.delivery.outbox import Row
from gateway.delivery.upstreams import Upstream, load_upstreams
from gateway.security.token_endpoint import ASSERTION_TYPE, GRANT_TYPE
from gateway.settings import Settings

JSON_PATCH = "application/json-patch+json"
FORM = "application/x-www-form-urlencoded"
# What the upstream refuses for the change itself (bad patch, not its owner's to change, gone,
# moved on meanwhile): the same PATCH again gets the same answer.
PERMANENT = frozenset({400, 403, 404, 405, 409, 410, 412, 422})
TIMEOUT_S = 30.0
RENEW_BEFORE_S = 60.0  # a token is renewed this long before it expires


class _Failed(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TokenCache:
    """Access tokens per upstream, one fetch at a time each, for the relay's loop."""

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstreams = dict(upstreams)
        self.clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # name -> (token, renew at)
        self._endpoints: dict[str, str] = {}  # name -> token endpoint URL
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> TokenCache:
        return cls(load_upstreams(settings.upstreams_dir))

    def forget(self, name: str) -> None:
        """Drop a token the upstream refused (401): the next send asks for a new one."""
        self._tokens.pop(name, None)

    async def token(self, client: PartnerClient, upstream: Upstream) -> str:
        lock = self._locks.setdefault(upstream.name, asyncio.Lock())
        async with lock:
            held = self._tokens.get(upstream.name)
            if held is not None and self.clock() < held[1]:
                return held[0]
            url = await self._endpoint(client, upstream)
            token, lifetime = await _request_token(client, upstream, url)
            renew = self.clock() + max(lifetime - RENEW_BEFORE_S, lifetime / 2)
            self._tokens[upstream.name] = (token, renew)
            return token

    async def _endpoint(self, client: PartnerClient, upstream: Upstream) -> str:
        if upstream.name not in self._endpoints:
            url = f"{upstream.base}/.well-known/smart-configuration"
            status, body, _ = await client.request("GET", url, timeout=TIMEOUT_S)
            found = _json(body).get("token_endpoint") if status == 200 else None
            if not isinstance(found, str) or not found.startswith(("https://", "http://")):
                raise _Failed(f"discovery-{status}" if status != 200 else "discovery-bad")
            self._endpoints[upstream.name] = found
        return self._endpoints[upstream.name]


async def _request_token(client: PartnerClient, up: Upstream, url: str) -> tuple[str, float]:
    form = {
        "grant_type": GRANT_TYPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": _assertion(up, url),
        "scope": up.scope,
    }
    status, body, _ = await client.request(
        "POST",
        url,
        json_body=urlencode(form).encode(),
        content_type=FORM,
        headers={"Accept": "application/json"},
        timeout=TIMEOUT_S,
    )
    answer = _json(body)
    token, lifetime = answer.get("access_token"), answer.get("expires_in", 300)
    if status != 200 or not isinstance(token, str) or not isinstance(lifetime, int | float):
        raise _Failed(f"token-{status}")
    return token, float(lifetime)


def _assertion(up: Upstream, url: str) -> str:
    """Our client assertion for the upstream's token endpoint `url` (lives 60 s, used once)."""
    now = int(time.time())
    claims = {
        "iss": up.client_id,
        "sub": up.client_id,
        "aud": url,
        "exp": now + 60,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    header = {"alg": up.alg, "kid": up.key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, up.key, algorithms=[up.alg])


def _json(body: bytes) -> dict:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


async def send(client: PartnerClient, row: Row, tokens: TokenCache) -> str | None:
    """Deliver one outbox row of channel "fhir" (its stream: the upstream's name)."""
    upstream = tokens.upstreams.get(row.stream)
    if upstream is None:
        return "upstream-unknown"  # its file went away: retried until it is back (or dead)
    message = _json(row.payload.encode())
    url, patch = message.get("url"), message.get("patch")
    if (
        message.get("method") != "PATCH"
        or not isinstance(url, str)
        or not url.startswith(upstream.base + "/")
        or not isinstance(patch, list)
    ):
        return "reject-payload"
    try:
        token = await tokens.token(client, upstream)
        status, _, _ = await client.request(
            "PATCH",
            url,
            json_body=orjson.dumps(patch),
            content_type=JSON_PATCH,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
        )
    except _Failed as failed:
        return failed.code
    except PartnerError as error:
        return error.code
    if 200 <= status < 300:
        return None
    if status == 401:
        tokens.forget(upstream.name)  # expired or revoked early: a new one next time
    return f"reject-{status}" if status in PERMANENT else f"http-{status}"
