"""Builders the delivery tests share (not fixtures: each test module keeps its own, so none
reaches test_flow.py): registering a delivery endpoint, a minimal Subscription body, relay
rounds, and reading back the outbox, the subscription row and the audit trail."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from fhir_profiles import CANONICAL
from gateway.delivery import outbox
from gateway.delivery.outbox import Backoff, Listed
from gateway.delivery.relay import Relay
from gateway.fhir_api.context import Services
from gateway.security.registry import DeliveryLink

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-"
PATCH = {"Content-Type": "application/json-patch+json"}


def topic(name: str) -> str:
    return f"{CANONICAL}/SubscriptionTopic/{name}"


def register(svc: Services, client_id: str, *urls: str) -> None:
    """Give the organisation's registration these delivery endpoints."""
    registry = svc.security.registry  # type: ignore[union-attr]
    org = registry.by_client[client_id]
    registry.by_client[client_id] = dataclasses.replace(org, delivery=DeliveryLink(tuple(urls)))


def subscription(
    endpoint: str,
    criteria: str | None,
    *,
    on: str = "task-responsibility",
    payload: str = "id-only",
    status: str = "requested",
    channel_extensions: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """A rest-hook Subscription to topic `on` with one filter (`criteria`; None: no filter)."""
    body: dict[str, Any] = {
        "resourceType": "Subscription",
        "status": status,
        "reason": "delivery test",
        "criteria": topic(on),
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {
                "extension": [{"url": BACKPORT + "payload-content", "valueCode": payload}]
            },
        },
    }
    if criteria is not None:
        filter_ = {"url": BACKPORT + "filter-criteria", "valueString": criteria}
        body["_criteria"] = {"extension": [filter_]}
    if channel_extensions:
        body["channel"]["extension"] = list(channel_extensions)
    return body


def heartbeat(seconds: int) -> dict[str, Any]:
    return {"url": BACKPORT + "heartbeat-period", "valueUnsignedInt": seconds}


def relay(svc: Services, backoff: Backoff | None = None) -> Relay:
    return Relay(svc, backoff=backoff or Backoff(base=0.0, jitter=0.0))


def drain(svc: Services, backoff: Backoff | None = None, rounds: int = 10) -> None:
    """Relay rounds until one finds nothing due (retries come due at once: backoff 0)."""
    r = relay(svc, backoff)
    for _ in range(rounds):
        if r.run_once() == 0:
            return


def patch(actor: Any, path: str, **values: Any) -> Any:
    """JSON Patch replacing top-level elements."""
    ops = [{"op": "replace", "path": f"/{k}", "value": v} for k, v in values.items()]
    return actor.patch(f"/fhir/{path}", json=ops, headers=PATCH)


def rows(svc: Services, stream: str | None = None) -> list[Listed]:
    with svc.repo.reader() as session:
        return outbox.listing(session, stream=stream)


def events(svc: Services, stream: str) -> list[tuple[int, str | None]]:
    """(event number, focus) of the stream's event rows, in queue order."""
    return [(r.seq, r.focus) for r in rows(svc, stream) if r.kind == "event"]


def row_of(svc: Services, sub_id: str) -> tuple[str, int, str | None] | None:
    """(status, events, error) of the subscription's delivery row."""
    with svc.repo.reader() as session:
        found = session.query(
            "SELECT status, events, error FROM subscriptions WHERE id = ?", (sub_id,)
        )
    return (str(found[0][0]), int(found[0][1]), found[0][2]) if found else None


def audit_events(svc: Services) -> list[dict[str, Any]]:
    with svc.repo.reader() as session:
        found = session.query("SELECT res_id FROM resources WHERE res_type = 'AuditEvent'")
        stored = session.current_many([("AuditEvent", r[0]) for r in found])
    return [orjson.loads(sv.body) for sv in stored]


def status_parameters(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return bundle["entry"][0]["resource"]["parameter"]


def event_numbers(bundle: dict[str, Any]) -> list[int]:
    return [
        int(q["valueString"])
        for p in status_parameters(bundle)
        if p["name"] == "notification-event"
        for q in p["part"]
        if q["name"] == "event-number"
    ]
