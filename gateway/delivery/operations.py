"""Subscription/{id}/$status and Subscription/{id}/$events (R4 Subscriptions Backport IG,
operations.html): how a subscriber learns where its subscription stands and recovers the events
it missed (a gap in the event numbers it received).

Only whoever may read the Subscription (its subscribing organisation) may ask, and `$events`
decides every event again as that organisation, now: an event it may no longer see is left out.
`$status` also tells what the outbox holds for it: pending and dead-lettered events (each as an
`error` with its number and last error code, never content).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.consent.context import ConsentContext
from gateway.consent.enforcement import RepoLoader
from gateway.coordination.common import Params, invalid, where
from gateway.delivery import notifications, outbox, subscriptions
from gateway.delivery.events import subscriber
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param
from gateway.storage.base import Session

MAX_EVENTS = 1000  # one $events answer at most
CONTENTS = ("empty", "id-only", "full-resource")


def _subscription(svc: Services, req: FhirRequest, session: Session) -> tuple[Any, ...]:
    """The Subscription through the gate (hidden = absent) and its delivery row."""
    assert req.id is not None
    sv = session.current("Subscription", req.id)
    shown = req.gate.disclose_one(session, sv) if sv is not None and not sv.deleted else None
    found = subscriptions.load(session, req.id) if shown is not None else None
    if shown is None or found is None:
        raise FhirError(Category.NOT_FOUND, f"Subscription/{req.id} is not known")
    req.gate.note_read(shown)
    return found


def status(svc: Services, req: FhirRequest) -> FhirResponse:
    Params.of(req, allowed=())
    with svc.repo.reader() as session:
        _org, spec, state, events = _subscription(svc, req, session)
        dead = outbox.listing(session, state="dead", stream=req.id, limit=100)
        counts = outbox.counts(session, str(req.id))
    errors = [f"event {d.seq} ({d.kind}) dead-lettered: {d.last_error or 'unknown'}" for d in dead]
    if counts["pending"]:
        errors.insert(0, f"{counts['pending']} event(s) waiting to be delivered")
    body = notifications.bundle(
        base=req.base,
        subscription=str(req.id),
        topic=spec.topic,
        status=state,
        kind="query-status",
        events_total=events,
        payload="empty",
        errors=errors,
    )
    body["type"] = "searchset"  # the $status answer is a search set of SubscriptionStatus
    body.pop("meta", None)  # not a notification
    body["total"] = 1
    return FhirResponse(200, body)


def events(svc: Services, req: FhirRequest) -> FhirResponse:
    params = Params.of(req, allowed=("eventsSinceNumber", "eventsUntilNumber", "content"))
    since = _number(params, "eventsSinceNumber")
    until = _number(params, "eventsUntilNumber")
    content = params.str("content")
    if content is not None and content not in CONTENTS:
        raise invalid(f"content must be one of {', '.join(CONTENTS)}", where("content"))
    with svc.repo.reader() as session:
        organization, spec, state, total = _subscription(svc, req, session)
        low = since if since is not None else 1
        high = until if until is not None else total
        # Only a range the caller gave both ends of can be wrong; past the last event number
        # (or before the first event) the answer is simply empty.
        if since is not None and until is not None and until < since:
            message = "eventsUntilNumber is below eventsSinceNumber"
            raise invalid(message, where("eventsUntilNumber"))
        high = min(high, low + MAX_EVENTS - 1)
        rows = outbox.events_between(session, str(req.id), low, high)
        payload = content or spec.payload
        who = subscriber(organization, spec) if not req.gate.is_trusted else None
        if not req.gate.is_trusted and (who is None or not _may_read(req, spec.resource_type)):
            # no subscriber to decide as, or a token that may not read what the topic tells
            raise FhirError(Category.FORBIDDEN, f"this token may not read {spec.resource_type}")
        context = ConsentContext(RepoLoader(session), _now())
        told = notifications.disclose(session, rows, who, context, payload == "full-resource")
    for patient, what in told.clients.items():
        req.gate.note_export(patient, what)
    body = notifications.bundle(
        base=req.base,
        subscription=str(req.id),
        topic=spec.topic,
        status=state,
        kind="query-event",
        events_total=total,
        events=told.events,
        payload=payload,
    )
    return FhirResponse(200, body)


def _may_read(req: FhirRequest, resource_type: str) -> bool:
    caller = req.caller
    return caller is None or caller.permits(resource_type, "r")


def _now() -> datetime:
    return datetime.now(UTC)


def _number(params: Params, name: str) -> int | None:
    text = params.str(name)
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise invalid(f"parameter '{name}' takes an event number", where(name))
    return int(text)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "status",
        status,
        resource_types=("Subscription",),
        instance=True,
        affects_state=False,
        scope=("Subscription", "r"),
        title="Subscription status",
        description=(
            "Where the subscription stands (Subscriptions Backport IG): status, topic, "
            "events-since-subscription-start, and what waits or was dead-lettered."
        ),
    ),
    Operation(
        "events",
        events,
        resource_types=("Subscription",),
        instance=True,
        affects_state=False,
        scope=("Subscription", "r"),
        title="Subscription events",
        description=(
            "The subscription's events by number, for gap recovery (Subscriptions Backport IG), "
            "decided again for the subscriber now."
        ),
        parameters=(
            Param("eventsSinceNumber", "string"),
            Param("eventsUntilNumber", "string"),
            Param("content", "code"),
            Param("return", "Bundle", use="out", min=1),
        ),
    ),
)
