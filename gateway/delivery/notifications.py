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

import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

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


class Event(NamedTuple):
    """One event as it will be told: its row and, unless withheld, what is disclosed. (A
    NamedTuple: one is made per subscription and event, and is cheaper to make.)"""

    row: Row
    reference: str  # "Task/x" (the focus without its version)
    version: str
    resource: Mapping[str, Any] | None  # the focus version as the subscriber may see it
    deleted: bool = False
    clients: tuple[str, ...] = ()  # the Patients it tells of (audited once sent)


@dataclass
class Disclosure:
    """What one notification tells, and what it withheld (to be audited)."""

    events: list[Event] = field(default_factory=list)
    withheld: list[tuple[Row, Decision | None]] = field(default_factory=list)  # None: gone
    clients: dict[str, list[str]] = field(default_factory=dict)  # Patient id -> versions told


class Shared:
    """What one relay round decides once however many notifications tell of it: each focus
    version (read in one query per few hundred, not one per event), and each subscriber's
    decision on it. One event fanned out to several subscriptions of one organisation (one
    topic matching twice, or several endpoints) is read and decided once. A decision is a
    function of the subscriber, the version and the round's `ConsentContext` (one `now`, one
    snapshot), so sharing it changes no answer."""

    def __init__(self, session: Session, context: ConsentContext) -> None:
        self.session, self.context = session, context
        self._content: dict[str, tuple[Mapping[str, Any] | None, bool]] = {}
        self._decided: dict[tuple[ConsentCaller | None, str, bool], Event | Decision | None] = {}

    def load(self, rows: Iterable[Row]) -> None:
        """Read the focus versions of these event rows not read yet, and everything deciding
        on them needs (ConsentContext.prepare: a few bulk reads)."""
        seen = self._content
        wanted = sorted(
            {r.focus for r in rows if r.kind == "event" and r.focus and r.focus not in seen}
        )
        if not wanted:
            return
        keys = [_version_key(f) for f in wanted]
        found = self.session.versions_many([k for k in keys if k is not None])
        for focus, key in zip(wanted, keys, strict=True):
            if key is None:  # not a versioned reference: `decide` fails for its row alone
                self._content[focus] = (_UNREADABLE, False)
                continue
            stored = found.get(key)
            deleted = stored is None or stored.deleted
            try:
                if deleted:
                    content = _last_live(self.session, *key)
                else:
                    content = orjson.loads(stored.body) if stored is not None else None
            except orjson.JSONDecodeError:
                content = _UNREADABLE
            self._content[focus] = (content, deleted)
        readable = (self._content[f][0] for f in wanted)
        self.context.prepare(c for c in readable if c is not None and c is not _UNREADABLE)

    def decide(self, row: Row, who: ConsentCaller | None, full: bool) -> Event | Decision | None:
        """The event as `who` may be told it, or why not (a Decision, or None: nothing left)."""
        key = (who, str(row.focus), full)
        if key in self._decided:
            shared = self._decided[key]
            if not isinstance(shared, Event):
                return shared
            return Event(row, shared.reference, shared.version, shared.resource, shared.deleted,
                         shared.clients)  # fmt: skip
        if row.focus not in self._content:
            self.load([row])
        content, deleted = self._content[str(row.focus)]
        if content is _UNREADABLE:  # the stream's round fails (internal-error), retried, then dead
            raise ValueError("an event's focus could not be read")
        reference, _, version = str(row.focus).partition("/_history/")
        result: Event | Decision | None
        if content is None:  # nothing left to decide on (pruned history): tell nothing
            result = None
        elif who is None:
            result = Event(row, reference, version, content if full and not deleted else None,
                           deleted)  # fmt: skip
        else:
            decision = hooks.can_see(who, content, self.context)
            if not decision.allowed:
                result = decision
            else:
                shown = hooks.will_see(who, content, self.context) if full and not deleted else None
                result = Event(row, reference, version, shown, deleted, tuple(decision.clients))
        self._decided[key] = result
        return result


def disclose(
    session: Session,
    rows: Sequence[Row],
    who: ConsentCaller | None,
    context: ConsentContext,
    full: bool,
    shared: Shared | None = None,
) -> Disclosure:
    """Decide every event row again as the subscriber `who` (None: no gate). `shared`: the
    round's reads and decisions, when several notifications are decided together."""
    if shared is None:
        shared = Shared(session, context)
    shared.load(rows)
    out = Disclosure()
    for row in rows:
        if row.kind != "event" or not row.focus:
            continue
        told = shared.decide(row, who, full)
        if not isinstance(told, Event):
            out.withheld.append((row, told))
            continue
        for client in told.clients:
            out.clients.setdefault(client, []).append(f"{told.reference}/_history/{told.version}")
        out.events.append(told)
    return out


def _version_key(focus: str) -> tuple[str, str, int] | None:
    reference, _, version = focus.partition("/_history/")
    resource_type, _, id = reference.partition("/")
    if not id or not version.isdigit():
        return None
    return resource_type, id, int(version)


_UNREADABLE: Mapping[str, Any] = {}  # a focus that is no versioned reference, or not JSON


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
        "id": _random_uuid(),
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
        "id": _random_uuid(),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": when,
        "entry": entries,
    }


# The ids of a notification Bundle and its SubscriptionStatus only have to be unique: they are
# drawn from a seeded PRNG rather than uuid.uuid4(), whose os.urandom call per id was 8 % of the
# relay's time. (Event ids, which receivers de-duplicate by, are the outbox rows' own.)
_IDS = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))  # a forked worker's own


def _random_uuid() -> str:
    """A version 4 UUID's text."""
    n = (_IDS.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC << 60) | (0x8 << 60)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
