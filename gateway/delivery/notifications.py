"""Notification bundles of the R4 Subscriptions Backport IG
(http://hl7.org/fhir/uv/subscriptions-backport/notifications.html): a Bundle of type history
whose first entry is the SubscriptionStatus Parameters (status, type, topic,
events-since-subscription-start, one notification-event per event with its number, timestamp
and focus), then, per event, the focus as the payload content asks (id-only: fullUrl and
request only; full-resource: the resource as the subscriber may see it).

`disclose` decides each event again as the subscriber, when it is sent: an event it may no
longer see (a revoked consent) is withheld, never sent, and recorded as a deny. Each event
carries its stable event id (extension EVENT_ID) so that receivers de-duplicate.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from fhir_profiles import CANONICAL
from gateway.consent import hooks
from gateway.consent.context import ConsentContext
from gateway.consent.model import Caller as ConsentCaller
from gateway.consent.model import Decision
from gateway.delivery.outbox import Row
from gateway.delivery.subscription_spec import BACKPORT_DEFINITIONS as BACKPORT
from gateway.storage.base import Session, instant

NOTIFICATION_PROFILE = f"{BACKPORT}/backport-subscription-notification-r4"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
EVENT_ID = f"{CANONICAL}/StructureDefinition/notification-event-id"


@dataclass(frozen=True)
class Event:
    """One event as it will be told: its row and, unless withheld, what is disclosed."""

    row: Row
    reference: str  # "Task/x" (the focus without its version)
    version: str
    resource: Mapping[str, Any] | None  # the focus version as the subscriber may see it
    deleted: bool = False


@dataclass
class Disclosure:
    """What one notification tells, and what it withheld (to be audited)."""

    events: list[Event] = field(default_factory=list)
    withheld: list[tuple[Row, Decision | None]] = field(default_factory=list)  # None: gone
    clients: dict[str, list[str]] = field(default_factory=dict)  # Patient id -> versions told


def disclose(
    session: Session,
    rows: Sequence[Row],
    who: ConsentCaller | None,
    context: ConsentContext,
    full: bool,
) -> Disclosure:
    """Decide every event row again as the subscriber `who` (None: no gate)."""
    out = Disclosure()
    for row in rows:
        if row.kind != "event" or not row.focus:
            continue
        reference, _, version = row.focus.partition("/_history/")
        resource_type, id = reference.split("/", 1)
        stored = session.version(resource_type, id, int(version))
        deleted = stored is None or stored.deleted
        content = _last_live(session, resource_type, id, int(version)) if deleted else None
        if content is None and stored is not None and not stored.deleted:
            content = orjson.loads(stored.body)
        if content is None:  # nothing left to decide on (pruned history): tell nothing
            out.withheld.append((row, None))
            continue
        if who is not None:
            decision = hooks.can_see(who, content, context)
            if not decision.allowed:
                out.withheld.append((row, decision))
                continue
            shown = hooks.will_see(who, content, context) if full and not deleted else None
            for client in decision.clients:
                out.clients.setdefault(client, []).append(f"{reference}/_history/{version}")
        else:
            shown = content if full and not deleted else None
        out.events.append(Event(row, reference, version, shown, deleted))
    return out


def _last_live(session: Session, resource_type: str, id: str, version: int) -> Any:
    for earlier in range(version - 1, 0, -1):
        sv = session.version(resource_type, id, earlier)
        if sv is not None and not sv.deleted:
            return orjson.loads(sv.body)
    return None


def bundle(
    *,
    base: str,
    subscription: str,
    topic: str,
    status: str,
    kind: str,
    events_total: int,
    events: Sequence[Event] = (),
    payload: str = "id-only",
    now_us: int | None = None,
    errors: Sequence[str] = (),
) -> dict[str, Any]:
    """The notification Bundle (kind: handshake, heartbeat, event-notification, query-status,
    query-event)."""
    when = instant(now_us) if now_us is not None else datetime.now(UTC).isoformat()
    parameters: list[dict[str, Any]] = [
        {
            "name": "subscription",
            "valueReference": {"reference": f"{base}/Subscription/{subscription}"},
        },
        {"name": "topic", "valueCanonical": topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_total)},
    ]
    parameters += [_event_parameter(base, e, payload) for e in events]
    parameters += [{"name": "error", "valueCodeableConcept": {"text": e}} for e in errors]
    status_resource = {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"urn:uuid:{status_resource['id']}", "resource": status_resource}
    ]
    if payload != "empty":
        entries += [_entry(base, e, payload) for e in events]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": when,
        "entry": entries,
    }


def _event_parameter(base: str, event: Event, payload: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "event-number", "valueString": str(event.row.seq)},
        {"name": "timestamp", "valueInstant": instant(event.row.created_us)},
    ]
    if payload != "empty":
        focus = f"{base}/{event.reference}/_history/{event.version}"
        parts.append({"name": "focus", "valueReference": {"reference": focus}})
    return {
        "extension": [{"url": EVENT_ID, "valueUuid": f"urn:uuid:{event.row.id}"}],
        "name": "notification-event",
        "part": parts,
    }


def _entry(base: str, event: Event, payload: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"{base}/{event.reference}"}
    if event.deleted:
        entry["request"] = {"method": "DELETE", "url": event.reference}
        return entry
    if payload == "full-resource" and event.resource is not None:
        entry["resource"] = event.resource
    method = "POST" if event.version == "1" else "PUT"
    entry["request"] = {"method": method, "url": event.reference}
    entry["response"] = {"status": "201" if method == "POST" else "200"}
    return entry


def encode(notification: Mapping[str, Any]) -> bytes:
    return orjson.dumps(notification)
