"""Subscription resources as delivery state: what the server takes and owns of a Subscription
(R4 Subscriptions Backport IG, http://hl7.org/fhir/uv/subscriptions-backport/components.html),
and the `subscriptions` row each one keeps in step.

- `shaper` (a consent.enforcement WRITE_SHAPER) checks a written Subscription
  (subscription_spec.parse_subscription: a known topic, filters the topic allows, a rest-hook
  endpoint the organisation registered) and sets `status`, which the server owns: a new or
  changed subscription is `requested` until its handshake is answered (then `active`, or
  `error` while it is not); the subscriber may only turn it `off` (or back on: requested again).
- `sync` (part of the delivery WRITE_HOOK) writes the row in the same transaction and queues the
  handshake as the first row of the subscription's stream, so no event overtakes it.
- `set_status` is the relay's change of `status` (a new version of the resource, written as the
  gateway, and the row), when a handshake or its retries tell, or `end` has passed (`end_due`).

Never stores or logs a channel header's value anywhere but the Subscription itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.consent.enforcement import Written
from gateway.consent.model import Caller as ConsentCaller
from gateway.consent.vocabulary import CUSTODIAN_EXTENSION
from gateway.delivery import outbox
from gateway.delivery.subscription_spec import SubscriptionSpec, parse_subscription, stored_spec
from gateway.errors import Category, FhirError
from gateway.security.registry import Registry
from gateway.security.scopes import permits
from gateway.storage.base import Session

SERVER_STATUSES = ("requested", "active", "error")
# what, changed, asks for a new handshake (not `end`: a later end of an active subscription
# keeps it active; an ended one is off, and comes back through a handshake as any off one does)
_CHANNEL_FIELDS = ("criteria", "_criteria", "channel")


def shaper(registry: Registry | None, test_mode: bool) -> Any:
    """The WRITE_SHAPER for Subscription of a gateway with this registry."""

    def shape(
        who: ConsentCaller | None,
        interaction: str,
        live: Mapping[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        if new is None:
            return None  # a delete: nothing to shape
        org = None
        if who is not None and registry is not None:
            org = registry.find(who.organization)
            if org is None:
                raise FhirError(Category.FORBIDDEN, "the organisation is not registered")
        spec = parse_subscription(new, org, test_mode)
        if org is not None and not permits(org.scopes, spec.resource_type, "r"):
            raise FhirError(
                Category.FORBIDDEN,
                f"the organisation may not read {spec.resource_type}: it cannot subscribe to it",
                ("Subscription.criteria",),
            )
        stored = {k: v for k, v in new.items() if k != "error"}
        if who is not None:
            # The subscriber is the organisation that wrote it, whatever custodian the body
            # names (a PractitionerRole stamp would otherwise leave the consent gate no one to
            # decide as): exactly one custodian, Organization/<writer>.
            stored["extension"] = [
                e
                for e in stored.get("extension") or []
                if not (isinstance(e, Mapping) and e.get("url") == CUSTODIAN_EXTENSION)
            ] + [_stamp(who.organization)]
        # an end already past: the server has turned it off (R4 Subscription.end)
        ended = spec.ended(time.time_ns() // 1000)
        stored["status"] = "off" if ended else _status(live, new)
        if stored["status"] == "error" and live is not None and "error" in live:
            stored["error"] = live["error"]  # the server's, while the handshake still fails
        return stored

    return shape


def _stamp(organization: str) -> dict[str, Any]:
    return {
        "url": CUSTODIAN_EXTENSION,
        "valueReference": {"reference": f"Organization/{organization}"},
    }


def _status(live: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """off when asked; the live status when the subscription is otherwise the same and was not
    off; else requested (a new handshake)."""
    if new.get("status") == "off":
        return "off"
    renewing = live is None or live.get("status") not in ("active", "requested", "error")
    if not renewing and all(live.get(f) == new.get(f) for f in _CHANNEL_FIELDS):
        return str(live["status"])
    return "requested"


def organization_of(resource: Mapping[str, Any]) -> str:
    """The subscriber: the Organization the custodian stamp names ("" for a subscription a
    trusted, unauthenticated writer made: no consent gate applies to it, as to its maker)."""
    for extension in resource.get("extension") or []:
        if isinstance(extension, Mapping) and extension.get("url") == CUSTODIAN_EXTENSION:
            reference = str((extension.get("valueReference") or {}).get("reference", ""))
            if reference.startswith("Organization/"):
                return reference.split("/", 1)[1]
    return ""


def sync(session: Session, written: Sequence[Written], now: int, registry: Registry | None) -> None:
    """Keep the `subscriptions` rows of this transaction's Subscription writes in step."""
    for write in written:
        if not write.what.startswith("Subscription/"):
            continue
        sub_id = write.what.split("/", 1)[1]
        if write.interaction == "delete" or write.resource is None:
            # The row stays, off: a Subscription created again under this id goes on from
            # its last event number, so a receiver de-duplicating by number loses nothing.
            session.execute("UPDATE subscriptions SET status = 'off' WHERE id = ?", (sub_id,))
            session.execute("DELETE FROM outbox WHERE stream = ? AND sent_us IS NULL", (sub_id,))
            continue
        _upsert(session, sub_id, write.resource, now, registry)


def _upsert(
    session: Session,
    sub_id: str,
    resource: Mapping[str, Any],
    now: int,
    registry: Registry | None,
) -> None:
    organization = organization_of(resource)
    org = registry.find(organization) if registry is not None and organization else None
    # The endpoint was checked against the registration by the shaper; the spec takes the
    # registration's purpose of use.
    spec = parse_subscription(resource, org, True)
    status = str(resource.get("status"))
    before = session.query("SELECT status, spec FROM subscriptions WHERE id = ?", (sub_id,))
    text = spec.to_json()
    session.execute(
        "INSERT INTO subscriptions (id, organization, topic, resource_type, spec, status, "
        "events, error) VALUES (?, ?, ?, ?, ?, ?, 0, NULL) ON CONFLICT (id) DO UPDATE SET "
        "organization = excluded.organization, topic = excluded.topic, "
        "resource_type = excluded.resource_type, spec = excluded.spec, "
        "status = excluded.status, error = CASE WHEN subscriptions.status = excluded.status "
        "THEN subscriptions.error END",  # an error stays while its status does
        (sub_id, organization, spec.topic, spec.resource_type, text, status),
    )
    renewed = not before or before[0][0] != "requested" or before[0][1] != text
    if status == "requested" and renewed:
        events = session.query("SELECT events FROM subscriptions WHERE id = ?", (sub_id,))
        handshake = str(uuid.uuid4())
        outbox.add(
            session,
            id=handshake,
            channel=outbox.REST_HOOK,
            stream=sub_id,
            seq=int(events[0][0]),
            kind="handshake",
            destination=spec.endpoint,
            now=now,
        )
        # Events still waiting (queued before the channel changed, or before it was turned off)
        # reach the channel only after its new handshake, as every event of a new one does.
        outbox.move_behind(session, sub_id, handshake)


Loaded = tuple[str, SubscriptionSpec, str, int]  # organization, spec, status, events


def load(session: Session, sub_id: str) -> Loaded | None:
    """(organization, spec, status, events) of a subscription's row."""
    return load_many(session, [sub_id]).get(sub_id)


def load_many(session: Session, sub_ids: Sequence[str]) -> dict[str, Loaded]:
    """`load` of several subscriptions in one query (SQLite: per 500; a relay round's streams)."""
    found: dict[str, Loaded] = {}
    for where, params in session.one_of("id", sub_ids, "TEXT"):
        for id, org, text, status, events in session.query(
            f"SELECT id, organization, spec, status, events FROM subscriptions WHERE {where}",
            params,
        ):
            found[str(id)] = (str(org), stored_spec(str(text)), str(status), int(events))
    return found


def end_due(session: Session, now: int) -> list[str]:
    """The subscriptions not off whose `end` has passed (the relay turns them off)."""
    rows = session.query("SELECT id, spec FROM subscriptions WHERE status <> 'off' ORDER BY id")
    return [str(id) for id, text in rows if stored_spec(str(text)).ended(now)]


def end(session: Session, sub_id: str, now: int) -> None:
    """Turn the subscription off if its `end` has still passed, under its lock: a subscriber's
    renewal (a later `end`) committed since `end_due` read it stands."""
    session.lock(f"Subscription/{sub_id}")
    found = session.query("SELECT spec, status FROM subscriptions WHERE id = ?", (sub_id,))
    if found and str(found[0][1]) != "off" and stored_spec(str(found[0][0])).ended(now):
        set_status(session, sub_id, "off")


def set_status(session: Session, sub_id: str, status: str, error: str | None = None) -> None:
    """The relay's change of a subscription's status (active after its handshake, error while
    the handshake fails): the row and, when it differs, a new version of the resource written
    as the gateway (Subscription.status and .error are the server's)."""
    session.lock(f"Subscription/{sub_id}")
    session.execute(
        "UPDATE subscriptions SET status = ?, error = ? WHERE id = ? AND status <> 'off'",
        (status, error, sub_id),
    )
    current = session.current("Subscription", sub_id)
    if current is None or current.deleted:
        return
    resource = orjson.loads(current.body)
    if resource.get("status") == status or resource.get("status") == "off":
        return
    resource["status"] = status
    if error:
        resource["error"] = error
    else:
        resource.pop("error", None)
    session.write("Subscription", sub_id, resource, "PUT")
