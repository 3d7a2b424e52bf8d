"""Our receiving side as a partner: the notifications an upstream pushes us (R4 Subscriptions
Backport IG, notifications.html) read, de-duplicated and applied.

`parse` reads a notification Bundle (SubscriptionStatus Parameters first; a notification-event
per event with its number, focus and the event id extension of gateway/delivery/notifications.py;
then the focus resources of a full-resource payload) into events, or refuses it whole (400,
naming the path of what is wrong: every element's JSON type is checked, never a 500) before
anything is applied. `receive` applies each event in ONE transaction with its `inbox` row
(migration 5): a repeat (same subscription and event number, or same event id) changes nothing,
and the caller answers only after the commits, so an upstream that got no answer sends again and
loses nothing. A Task event becomes our mirror of it (mirror.py), written as the gateway through
a gate that audits the write as the upstream's (BALP Create/Update/Delete) and runs every write
hook but the push-back: the upstream's own change never goes back to it. All of it runs inside
`mirror.applying()`: the Task shaper (mirror.shape) lets only the inbox write the mirror marker.

A Task under a mirror's id that the inbox did not make (no marker in its last live version) is
never taken over: the event is recorded as had, not applied, logged, and counted as refused in
the 200 answer. Not a 4xx: the upstream's relay (gateway/delivery/relay.py) dead-letters only
"reject-" codes and retries any HTTP 4xx for its whole retry window (72 h), holding back every
later event of the subscription meanwhile.

Only full-resource events can be applied: an id-only or empty event is refused (we do not fetch
A's Task). Never logs content or the channel secret.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.ids import Ids
from gateway.audit.context import AuditContext
from gateway.consent.enforcement import Gate
from gateway.delivery import mirror
from gateway.delivery.notifications import EVENT_ID
from gateway.delivery.upstreams import Upstream
from gateway.errors import FhirError, invalid
from gateway.fhir_api.context import ID_RE, INT_CAP, Services, digits
from gateway.fhir_api.interactions.delete import delete_in
from gateway.fhir_api.interactions.update import update_in
from gateway.storage.base import Session

log = logging.getLogger("gateway.delivery")
EVENT_KINDS = ("event-notification", "query-event")  # carry events; the others only status
OTHER_KINDS = ("handshake", "heartbeat", "query-status")
MAX_EVENTS = 1000
# The tail of a focus or fullUrl: whatever base the upstream names itself by (a gateway without
# a configured base_url names a placeholder), the channel secret has told us who it is.
_FOCUS = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})/_history/([0-9]{1,18})$")
_FULL_URL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+/[A-Za-z0-9\-\.]{1,64})$")


@dataclass(frozen=True)
class Event:
    number: int
    id: str | None  # the upstream's stable event id, when it sends one
    reference: str  # "Task/x" at the upstream
    version: int
    resource: Mapping[str, Any] | None  # None: deleted
    mirrored: bool  # a Task: applied; anything else is recorded only


@dataclass(frozen=True)
class Notification:
    subscription: str  # the subscription's id at the upstream
    kind: str
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Received:
    applied: int
    repeated: int
    refused: int = 0  # recorded, not applied: a Task under the mirror's id the inbox did not make


# -- reading ------------------------------------------------------------------------------------
def parse(bundle: Any) -> Notification:
    """The notification in `bundle`, or a 400 FhirError naming what is wrong (and where)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise invalid("a notification is a Bundle", "Bundle")
    entries = bundle.get("entry")
    if bundle.get("type") != "history" or not isinstance(entries, list) or not entries:
        raise invalid("a notification is a history Bundle with entries", "Bundle.type")
    status = entries[0].get("resource") if isinstance(entries[0], dict) else None
    if not isinstance(status, dict) or status.get("resourceType") != "Parameters":
        raise invalid(
            "the first entry must be the SubscriptionStatus Parameters", "Bundle.entry[0]"
        )
    params = [p for p in _list(status, "parameter", _PARAMS[:-1]) if isinstance(p, dict)]
    kind = _value(params, "type", "valueCode")
    if kind not in EVENT_KINDS + OTHER_KINDS:
        raise invalid("the notification type is not one of the Backport IG's", _PARAMS + "type")
    subscription = _subscription(_value(params, "subscription", "valueReference"))
    if kind in OTHER_KINDS:
        return Notification(subscription, kind, ())
    told = [p for p in params if p.get("name") == "notification-event"]
    if len(told) > MAX_EVENTS:
        raise invalid(f"a notification carries at most {MAX_EVENTS} events", _PARAMS)
    contents = _contents(entries[1:])
    events = tuple(_event(p, i, contents) for i, p in enumerate(told))
    return Notification(subscription, kind, events)


_PARAMS = "Bundle.entry[0].resource.parameter:"


def _list(element: Mapping[str, Any], name: str, where: str) -> list[Any]:
    """`element[name]`: absent is empty; anything but a JSON array is refused (400)."""
    value = element.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"'{name}' must be an array", where)
    return value


def _object(element: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    """`element[name]`: absent is empty; anything but a JSON object is refused (400)."""
    value = element.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"'{name}' must be an object", where)
    return value


def _value(params: list[dict[str, Any]], name: str, field: str) -> Any:
    return next((p.get(field) for p in params if p.get("name") == name), None)


def _subscription(reference: Any) -> str:
    ref = reference.get("reference") if isinstance(reference, dict) else None
    head, _, sub_id = ref.rpartition("Subscription/") if isinstance(ref, str) else ("", "", "")
    if (head and not head.endswith("/")) or not ID_RE.match(sub_id):
        raise invalid("the notification names no Subscription", _PARAMS + "subscription")
    return sub_id


def _contents(entries: list[Any]) -> dict[tuple[str, int | None], Any]:
    """(Type/id, version) -> resource (None for a delete) of the payload entries."""
    found: dict[tuple[str, int | None], Any] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            continue
        where = f"Bundle.entry[{index}]"
        resource = entry.get("resource")
        if isinstance(resource, dict):
            key = f"{resource.get('resourceType')}/{resource.get('id')}"
            meta = _object(resource, "meta", f"{where}.resource.meta")
            found[(key, digits(str(meta.get("versionId", ""))))] = resource
        elif _object(entry, "request", f"{where}.request").get("method") == "DELETE":
            tail = _FULL_URL.search(str(entry.get("fullUrl") or ""))
            if tail is not None:
                found[(tail.group(1), None)] = None
    return found


def _event(
    param: dict[str, Any], index: int, contents: Mapping[tuple[str, int | None], Any]
) -> Event:
    where = f"{_PARAMS}notification-event[{index}]"
    parts = {p.get("name"): p for p in _list(param, "part", where) if isinstance(p, dict)}
    number = _number(parts.get("event-number"))
    told = _object(parts.get("focus") or {}, "valueReference", f"{where}.part:focus")
    focus = told.get("reference")
    if number is None:
        raise invalid("an event needs its event-number (digits, below 2^62)", where)
    if not isinstance(focus, str):
        raise invalid("an event needs its focus (the payload must not be empty)", where)
    found = _FOCUS.search(focus)
    if found is None:
        raise invalid("an event's focus must be [base/]Type/id/_history/version", where)
    rtype, rid, version = found.group(1), found.group(2), int(found.group(3))
    reference = f"{rtype}/{rid}"
    if (reference, version) in contents:
        resource = contents[(reference, version)]
    elif (reference, None) in contents:
        resource = None  # deleted
    else:
        raise invalid("the event's resource is missing: a full-resource payload is needed", where)
    return Event(number, _event_id(param, where), reference, version, resource, rtype == "Task")


def _number(part: Any) -> int | None:
    if not isinstance(part, dict):
        return None
    for field in ("valueString", "valueInteger64", "valueUnsignedInt", "valueInteger"):
        if field in part:
            number = digits(str(part[field]))
            return number if number is not None and number < INT_CAP else None  # not clamped
    return None


def _event_id(param: Mapping[str, Any], where: str) -> str | None:
    for ext in _list(param, "extension", where):
        if isinstance(ext, dict) and ext.get("url") == EVENT_ID:
            value = ext.get("valueUuid") or ext.get("valueString")
            return str(value)[:200] if value else None
    return None


# -- applying -----------------------------------------------------------------------------------
def receive(svc: Services, upstream: Upstream, notification: Notification, base: str) -> Received:
    """Apply each new event of `notification`, one transaction each; `base` is our FHIR base."""
    applied = repeated = refused = 0
    ids = svc.ids
    assert ids is not None  # build_services sets it (routes.install checks)
    for event in notification.events:
        with svc.repo.writer() as session, mirror.applying():
            now = time.time_ns() // 1000
            if not _record(session, upstream.name, notification.subscription, event, now):
                repeated += 1
                continue
            gate = Gate(None, _audit(upstream, base))
            if event.mirrored and not _apply(svc, ids, session, base, upstream, event, gate):
                refused += 1
                continue  # its inbox row commits: the same event again is a repeat
            gate.flush_into(session)
        applied += 1
    return Received(applied, repeated, refused)


def _record(session: Session, upstream: str, subscription: str, event: Event, now: int) -> bool:
    """Whether the event is new (its inbox row written now). A repeat waits here for the
    transaction applying it, then finds its row (PostgreSQL: ON CONFLICT after the lock)."""
    inserted = session.query(
        "INSERT INTO inbox (upstream, subscription, event_number, event_id, received_us) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING event_number",
        (upstream, subscription, event.number, event.id, now),
    )
    return bool(inserted)


def _audit(upstream: Upstream, base: str) -> AuditContext:
    """Who writes a mirror: the upstream, authenticated by its channel secret."""
    return AuditContext(client_id=f"upstream:{upstream.name}", server=base)


def _apply(
    svc: Services,
    ids: Ids,
    session: Session,
    base: str,
    upstream: Upstream,
    event: Event,
    gate: Gate,
) -> bool:
    """Apply one Task event to its mirror; False when the mirror's id holds a Task the inbox
    did not make (never overwritten: nothing is written)."""
    a_id = event.reference.split("/", 1)[1]
    mid = mirror.mirror_id(ids, upstream, a_id)
    session.lock(f"Task/{mid}")
    current = session.current("Task", mid)
    live = orjson.loads(current.body) if current is not None and not current.deleted else None
    found = _held_marker(session, mid, current, live)
    if current is not None and (found is None or found[0] != upstream.name):
        log.warning(
            "upstream %s: Task/%s is not a mirror the inbox made; the event is not applied",
            upstream.name,
            mid,
        )
        return False
    if found is not None and event.version <= found[1]:
        return True  # older than what we hold: an event re-sent or overtaken
    if event.resource is None:
        if live is not None:
            delete_in(session, "Task", mid, gate=gate)
        return True
    task = dict(event.resource)
    keep = _pending(session, upstream, mid)
    new = mirror.build(upstream, mid, task, event.version, live, keep)
    checked = svc.validator.validate_resource(new, expect_id=mid)
    update_in(svc, session, base, "Task", mid, checked, gate=gate)
    return True


def _held_marker(session: Session, mid: str, current: Any, live: Any) -> tuple[str, int] | None:
    """(upstream, A's version) of the mirror we hold (its last live version for a deleted
    mirror); None when there is none, or the Task there is not a mirror."""
    if current is None:
        return None
    if live is None:
        before = session.version("Task", mid, current.version - 1) if current.version > 1 else None
        live = orjson.loads(before.body) if before is not None and not before.deleted else None
    return mirror.marker(live)


def _pending(session: Session, upstream: Upstream, mid: str) -> bool:
    """Whether our changes to the mirror wait in the outbox (not yet told to A)."""
    return bool(
        session.query(
            "SELECT 1 FROM outbox WHERE stream = ? AND focus LIKE ? AND sent_us IS NULL "
            "AND dead_us IS NULL LIMIT 1",
            (upstream.name, f"Task/{mid}/%"),
        )
    )


def describe(err: FhirError) -> str:
    """A refusal's message for our log: its category and paths, never content."""
    return f"{err.category.value} at {', '.join(err.expression) or '-'}"
