"""Telling an upstream what our users did with its Tasks: the relay's sender for outbox rows of
channel "fhir" (queued by mirror.push_back), a JSON Patch of the upstream's Task.

We call the upstream as its registered client: an access token from its token endpoint (SMART
Backend Services, https://hl7.org/fhir/smart-app-launch/backend-services.html: discovery at
{base}/.well-known/smart-configuration, client_credentials with a private_key_jwt assertion
signed with our key), kept until shortly before it expires. The token endpoint discovery names
must be https (http only on a loopback host, as for the upstream's base): our signed assertion
and the token never travel in the clear ("token-endpoint-insecure" otherwise, retried). `send`
returns None once the upstream took the change; else an error code: "reject-<status>" for an
answer that sending again cannot change (the relay dead-letters it), any other code is retried
with backoff.

Sending is safe to repeat (the relay sends at least once: an answer lost to a timeout or to our
own end is sent again). The PATCH goes with `If-Match: W/"<A's version>"`, the version the mirror
held when our user made the change: a copy that comes after A applied the first gets 412 instead
of being applied twice. On 412 (and on 409/422 when the row was tried before) we read A's Task:
a change already there is delivered; one A moved on from (its requester changed the Task) is
rebuilt once against A's current version (`replan`: only what is not yet there) and sent, again
guarded by If-Match; one that no longer applies (a tested status A no longer has) stays refused.
A row queued before versions were recorded is read first when it is tried again.

Never logs, and never puts a token, a key or a body in an error code.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from joserfc import jwt

from adapters.partner_fhir.client import PartnerClient
from adapters.partner_fhir.errors import PartnerError
from gateway.delivery.outbox import Row
from gateway.delivery.upstreams import Upstream, load_upstreams
from gateway.security.registry import LOOPBACK
from gateway.security.token_endpoint import ASSERTION_TYPE, GRANT_TYPE
from gateway.settings import Settings

JSON_PATCH = "application/json-patch+json"
FORM = "application/x-www-form-urlencoded"
# What the upstream refuses for the change itself (bad patch, not its owner's to change, gone,
# moved on meanwhile): the same PATCH again gets the same answer.
PERMANENT = frozenset({400, 403, 404, 405, 409, 410, 412, 422})
TIMEOUT_S = 30.0
RENEW_BEFORE_S = 60.0  # a token is renewed this long before it expires
# Refusals that may only mean an earlier copy of the same PATCH was applied: on a retry, A's
# Task is read to tell (412 always: A's version is no longer the one the change was made on).
ALREADY = frozenset({409, 422})
_PATH = re.compile(r"^/([A-Za-z]+)(/-)?$")  # what mirror.push_ops writes: /name, /name/-
_ETAG = re.compile(r'^(?:W/)?"?([0-9]{1,18})"?$')


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
            if not _secure(found):
                raise _Failed("token-endpoint-insecure")
            self._endpoints[upstream.name] = found
        return self._endpoints[upstream.name]


def _secure(url: str) -> bool:
    """Whether a token endpoint URL is https (or http on a loopback host), with a host and no
    user part."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK)


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
    url, patch, version = message.get("url"), message.get("patch"), message.get("version")
    if (
        message.get("method") != "PATCH"
        or not isinstance(url, str)
        or not url.startswith(upstream.base + "/")
        or not isinstance(patch, list)
        or not all(isinstance(op, dict) for op in patch)
        or not (version is None or (isinstance(version, int) and not isinstance(version, bool)))
    ):
        return "reject-payload"
    counts = _counts(message.get("counts"), len(patch))
    call = _Call(client, tokens, upstream, url)
    try:
        if version is None and row.attempts > 1:
            # queued without A's version and maybe applied already: look before sending again
            return await call.reconcile(patch, counts, refused=None)
        status = await call.patch(patch, version)
        if 200 <= status < 300:
            return None
        if status == 412 or (status in ALREADY and row.attempts > 1):
            return await call.reconcile(patch, counts, refused=status)
        return call.code(status)
    except _Failed as failed:
        return failed.code
    except PartnerError as error:
        return error.code


class _Call:
    """One row's calls to its upstream's Task."""

    def __init__(
        self, client: PartnerClient, tokens: TokenCache, upstream: Upstream, url: str
    ) -> None:
        self.client, self.tokens, self.upstream, self.url = client, tokens, upstream, url

    async def _auth(self) -> dict[str, str]:
        token = await self.tokens.token(self.client, self.upstream)
        return {"Authorization": f"Bearer {token}"}

    async def patch(self, ops: list[dict[str, Any]], version: int | None) -> int:
        headers = await self._auth()
        if version is not None:
            headers["If-Match"] = f'W/"{version}"'
        status, _, _ = await self.client.request(
            "PATCH",
            self.url,
            json_body=orjson.dumps(ops),
            content_type=JSON_PATCH,
            headers=headers,
            timeout=TIMEOUT_S,
        )
        return status

    def code(self, status: int) -> str:
        if status == 401:
            self.tokens.forget(self.upstream.name)  # expired or revoked early: a new one next
        return f"reject-{status}" if status in PERMANENT else f"http-{status}"

    async def reconcile(
        self, ops: list[dict[str, Any]], counts: Sequence[int], refused: int | None
    ) -> str | None:
        """Read A's Task: None if the change is there; else send what is missing once, against
        A's current version. `refused`: A's answer to the change as queued (None: not sent)."""
        status, body, headers = await self.client.request(
            "GET", self.url, headers=await self._auth(), timeout=TIMEOUT_S
        )
        if status != 200:
            return self.code(status)
        task = _json(body)
        current = _version(task, headers)
        if current is None:
            return "bad-response"  # no version to guard the PATCH with
        state, plan = replan(task, ops, counts)
        if state == "done":
            return None
        if state == "unknown":  # not a change we can judge (mirror.push_ops writes none such)
            if refused is not None:
                return self.code(refused)
            plan = ops
        elif state == "stale":  # A moved on so that the change no longer applies
            return f"reject-{refused or 422}"
        status = await self.patch(plan, current)
        if 200 <= status < 300:
            return None
        if status == 412:
            return "conflict-412"  # A changed again meanwhile: the next try looks again
        return self.code(status)


def replan(
    task: Mapping[str, Any], ops: Sequence[Mapping[str, Any]], counts: Sequence[int] = ()
) -> tuple[str, list[dict[str, Any]]]:
    """What of the JSON Patch `ops` (as mirror.push_ops writes them) A's `task` still lacks:
    ("done", []) when it has all of it; ("send", ops) with only the missing changes and the tests
    guarding them; ("stale", []) when a test no longer holds (A moved on); ("unknown", []) for an
    operation this cannot judge. `counts[i]`: how many items equal to the value of an appending
    op i the list holds with the change in (1 when not given), so that an item A already has
    from an earlier copy is not added again."""
    targets: list[tuple[str, bool]] = []  # (field, whether appending to its list)
    for op in ops:
        found = _PATH.match(str(op.get("path")))
        kind = op.get("op")
        if (
            found is None
            or kind not in ("test", "add", "remove")
            or (kind != "remove" and "value" not in op)
            or (found.group(2) is not None and kind != "add")
        ):
            return "unknown", []
        targets.append((found.group(1), found.group(2) is not None))
    lists: dict[str, list[Any]] = {}  # the lists appended to, as they will be
    keep: dict[int, dict[str, Any]] = {}
    for i, (op, (name, append)) in enumerate(zip(ops, targets, strict=True)):
        if op["op"] == "test":
            continue
        if op["op"] == "remove":
            if name in task:
                keep[i] = dict(op)
        elif not append:
            if name not in task or not _matches(op["value"], task[name]):
                keep[i] = dict(op)
        else:
            fresh = name not in lists and not isinstance(task.get(name), list)  # A has none
            if name not in lists:
                lists[name] = [] if fresh else list(task[name])
            items = lists[name]
            want = counts[i] if i < len(counts) else 1
            if sum(1 for item in items if _matches(op["value"], item)) < want:
                items.append(op["value"])
                keep[i] = (
                    {"op": "add", "path": f"/{name}", "value": [op["value"]]} if fresh else dict(op)
                )
    if not keep:
        return "done", []
    changed = {targets[i][0] for i in keep}
    touched = {name for (name, _), op in zip(targets, ops, strict=True) if op["op"] != "test"}
    out: list[dict[str, Any]] = []
    for i, (op, (name, _)) in enumerate(zip(ops, targets, strict=True)):
        if i in keep:
            out.append(keep[i])
        elif op["op"] == "test" and (name in changed or name not in touched):
            if task.get(name) != op["value"]:
                return "stale", []
            out.append(dict(op))
    return "send", out


def _matches(ours: Any, theirs: Any) -> bool:
    """Whether A's value holds ours (A may have added to an element of it: never undone)."""
    if isinstance(ours, Mapping):
        return isinstance(theirs, Mapping) and all(
            k in theirs and _matches(v, theirs[k]) for k, v in ours.items()
        )
    if isinstance(ours, list):
        return (
            isinstance(theirs, list)
            and len(ours) == len(theirs)
            and all(_matches(a, b) for a, b in zip(ours, theirs, strict=True))
        )
    return bool(ours == theirs) and type(ours) is type(theirs)


def _counts(value: Any, n: int) -> list[int]:
    if not isinstance(value, list) or len(value) != n:
        return [1] * n
    return [v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 1 for v in value]


def _version(task: Mapping[str, Any], headers: Mapping[str, str]) -> int | None:
    """A's version of the Task it answered: meta.versionId, else its ETag."""
    meta = task.get("meta")
    for text in (
        (meta or {}).get("versionId") if isinstance(meta, Mapping) else None,
        headers.get("etag"),
    ):
        found = _ETAG.match(str(text).strip()) if text is not None else None
        if found is not None:
            return int(found.group(1))
    return None
