"""POST /delivery/notifications/{upstream}: where an upstream gateway pushes us, its partner,
the notifications of our subscription at it (R4 Subscriptions Backport IG rest-hook).

Outside /fhir and its token authentication: the channel authenticates the caller, by the bearer
secret our Subscription at the upstream asked it to send (`Authorization: Bearer <secret>`,
compared in constant time with the SHA-256 in the upstream's file). Answers: 200 once every new
event is applied and committed (handshakes and heartbeats at once); 400 OperationOutcome for a
notification we cannot read (nothing of it applied but what came before the bad event); 401
for a wrong or missing secret and for an upstream name that is not configured, alike (the same
answer, the same hashing and comparison: the names cannot be told apart from outside); 503
while the database is busy, so the upstream sends again. Never logs a body, a header or the
secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

import anyio.to_thread
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.delivery import inbox, mirror
from gateway.delivery.upstreams import Upstream, load_upstreams
from gateway.errors import Category, FhirError, information
from gateway.fhir_api import formats
from gateway.fhir_api.context import Services, digits
from gateway.security.pseudonyms import load_ids

log = logging.getLogger("gateway.delivery")
PATH = "/delivery/notifications/{upstream}"
REALM = 'Bearer realm="fhir-plan-gateway upstream notifications"'
# What a secret sent to an unknown upstream name is compared with (matches nothing).
_NOBODY = secrets.token_bytes(32)


def install(app: FastAPI, svc: Services) -> dict[str, Upstream]:
    """Read the upstreams (a malformed file stops the start), install the push-back hook and
    the receiving route. Returns the upstreams."""
    upstreams = load_upstreams(svc.settings.upstreams_dir)
    if upstreams and svc.ids is None:
        svc.ids = load_ids(svc.settings)  # mirror ids are keyed (mirror.mirror_id)
    mirror.install(upstreams, svc.ids)

    async def receive(request: Request, upstream: str) -> Response:
        try:
            found = _authorise(upstreams.get(upstream), request.headers.get("authorization"))
            notification = inbox.parse(await _body(request, svc))
            received = inbox.Received(0, 0)
            if notification.events:
                base = _base(request, svc)
                received = await anyio.to_thread.run_sync(
                    inbox.receive, svc, found, notification, base
                )
        except FhirError as err:
            if err.category is not Category.UNAUTHORIZED:
                log.info("upstream notification refused: %s", inbox.describe(err))
            return _answer(err.status, err.outcome(), err.headers)
        except Exception:
            log.exception("unexpected failure receiving an upstream notification")
            fault = FhirError(Category.FAULT, "internal error; see server log")
            return _answer(fault.status, fault.outcome(), {})
        return _answer(200, _done(notification.kind, received), {})

    app.add_api_route(PATH, receive, methods=["POST"], name="upstream notifications")
    return upstreams


def _authorise(upstream: Upstream | None, header: str | None) -> Upstream:
    """The upstream the caller proved to be; 401 alike for a wrong or missing secret and for an
    unknown upstream name (which is hashed and compared all the same)."""
    scheme, _, secret = (header or "").strip().partition(" ")
    given = secret.strip()
    expected = upstream.secret_sha256 if upstream is not None else _NOBODY
    digest = hashlib.sha256(given.encode("utf-8")).digest()
    matched = hmac.compare_digest(digest, expected)  # as Upstream.accepts
    if scheme.lower() != "bearer" or not given or upstream is None or not matched:
        raise FhirError(
            Category.UNAUTHORIZED,
            "the channel's bearer secret is missing or wrong",
            headers={"WWW-Authenticate": REALM},
        )
    return upstream


async def _body(request: Request, svc: Services) -> object:
    ctype = formats.media_type(request.headers.get("content-type"))
    if ctype not in formats.JSON_TYPES:
        raise FhirError(Category.UNSUPPORTED_MEDIA, "a notification is application/fhir+json")
    limit = svc.settings.max_body_bytes
    declared = digits(request.headers.get("content-length") or "")
    if declared is not None and declared > limit:
        raise FhirError(Category.TOO_LARGE, f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError(Category.TOO_LARGE, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return formats.parse_json(b"".join(chunks), svc.settings.max_json_depth)


def _base(request: Request, svc: Services) -> str:
    if svc.settings.base_url:
        return svc.settings.base_url.rstrip("/")
    return str(request.base_url).rstrip("/") + "/fhir"


def _done(kind: str, received: inbox.Received) -> dict:
    refused = (
        f", {received.refused} refused (a Task there not ours to overwrite)"
        if received.refused
        else ""
    )
    return information(
        f"{kind}: {received.applied} event(s) applied, {received.repeated} already had{refused}"
    )


def _answer(status: int, body: dict, headers: dict[str, str]) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        headers=dict(headers),
        media_type=formats.JSON + "; charset=utf-8",
    )
