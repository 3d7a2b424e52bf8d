"""POST /delivery/notifications/{upstream}: where an upstream gateway pushes us, its partner,
the notifications of our subscription at it (R4 Subscriptions Backport IG rest-hook).

Outside /fhir and its token authentication: the channel authenticates the caller, by the bearer
secret our Subscription at the upstream asked it to send (`Authorization: Bearer <secret>`,
compared in constant time with the SHA-256 in the upstream's file). Answers: 200 once every new
event is applied and committed (handshakes and heartbeats at once); 400 OperationOutcome for a
notification we cannot read (nothing of it applied but what came before the bad event); 401
for a wrong or missing secret; 404 for an unknown upstream; 503 while the database is busy, so
the upstream sends again. Never logs a body, a header or the secret.
"""

from __future__ import annotations

import logging

import anyio.to_thread
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.delivery import inbox, mirror
from gateway.delivery.upstreams import Upstream, load_upstreams
from gateway.errors import Category, FhirError, information
from gateway.fhir_api import formats
from gateway.fhir_api.context import Services, digits

log = logging.getLogger("gateway.delivery")
PATH = "/delivery/notifications/{upstream}"
REALM = 'Bearer realm="fhir-plan-gateway upstream notifications"'


def install(app: FastAPI, svc: Services) -> dict[str, Upstream]:
    """Read the upstreams (a malformed file stops the start), install the push-back hook and
    the receiving route. Returns the upstreams."""
    upstreams = load_upstreams(svc.settings.upstreams_dir)
    mirror.install(upstreams)

    async def receive(request: Request, upstream: str) -> Response:
        try:
            found = upstreams.get(upstream)
            if found is None:
                raise FhirError(Category.NOT_FOUND, "no upstream of that name is configured")
            _authorise(found, request.headers.get("authorization"))
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


def _authorise(upstream: Upstream, header: str | None) -> None:
    scheme, _, secret = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip() or not upstream.accepts(secret.strip()):
        raise FhirError(
            Category.UNAUTHORIZED,
            "the channel's bearer secret is missing or wrong",
            headers={"WWW-Authenticate": REALM},
        )


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
    return information(
        f"{kind}: {received.applied} event(s) applied, {received.repeated} already had"
    )


def _answer(status: int, body: dict, headers: dict[str, str]) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        headers=dict(headers),
        media_type=formats.JSON + "; charset=utf-8",
    )
