"""Subscription events, made in the transaction of the change they report: every written Task,
CarePlan and CareTeam is matched against the subscriptions of its type (topic trigger and the
subscription's filters); each match the subscriber may see now (consent, decided as the
subscribing organisation) gets the subscription's next event number and an outbox row.

Numbering takes the subscription row's lock (UPDATE … SET events = events + 1), so two
transactions reporting to one subscription number in commit order and the relay sends them in
that order: a subscriber sees 1, 2, 3 … with no gaps unless consent withholds one at sending.

Never decides as anyone but the subscriber, and never puts content in the outbox: the
notification is built when it is sent, through the gate again (notifications.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import orjson

from gateway.consent import hooks
from gateway.consent.context import ConsentContext
from gateway.consent.enforcement import PURPOSE_SYSTEM, RepoLoader, Written
from gateway.consent.model import Caller as ConsentCaller
from gateway.delivery import outbox
from gateway.delivery.subscription_spec import SubscriptionSpec, stored_spec
from gateway.delivery.topics import Topic, load_topics
from gateway.storage.base import Session

_INTERACTION = {"create": "create", "update": "update", "patch": "update", "delete": "delete"}


def topic_types() -> frozenset[str]:
    return frozenset(t.resource_type for t in load_topics().values())


def subscriber(organization: str, spec: SubscriptionSpec) -> ConsentCaller | None:
    """The subscribing organisation as the consent rules see it (None: no gate, see
    subscriptions.organization_of)."""
    if not organization:
        return None
    purpose = (PURPOSE_SYSTEM, spec.purpose) if spec.purpose else None
    return ConsentCaller(organization, None, purpose)


def enqueue(session: Session, written: Sequence[Written], now: int, gated: bool = True) -> int:
    """Queue the events of this transaction's writes. Returns how many. `gated` (a gateway
    requiring authentication): a subscription with no subscribing organisation gets nothing
    (fail closed; only an unauthenticated gateway's subscriptions have none)."""
    types = topic_types()
    relevant = [w for w in written if w.what.split("/", 1)[0] in types and w.resource]
    if not relevant:
        return 0
    wanted = sorted({w.what.split("/", 1)[0] for w in relevant})
    marks = ", ".join("?" for _ in wanted)
    subs = session.query(
        "SELECT id, organization, topic, spec FROM subscriptions "
        f"WHERE resource_type IN ({marks}) AND status <> 'off' ORDER BY id",
        wanted,
    )
    if not subs:
        return 0
    topics = load_topics()
    context = ConsentContext(RepoLoader(session), datetime.now(UTC))
    expand = _RoleOrganizations(session)
    matched: list[tuple[str, SubscriptionSpec, Written]] = []
    for write in relevant:
        resource_type = write.what.split("/", 1)[0]
        previous = _Previous(session, write)
        for sub_id, organization, topic_url, text in subs:
            spec = stored_spec(str(text))
            if spec.ended(now):
                continue  # its end has passed: the relay is about to turn it off
            topic = topics.get(str(topic_url))
            if topic is None or topic.resource_type != resource_type:
                continue
            if not _matches(topic, write, previous, spec, expand):
                continue
            who = subscriber(str(organization), spec)
            assert write.resource is not None
            if who is None and gated:
                continue
            if who is not None and not hooks.can_see(who, write.resource, context).allowed:
                continue  # never numbered: the subscriber does not learn it happened
            matched.append((str(sub_id), spec, write))
    # Numbered in subscription order (stable: each subscription's writes keep their order), so
    # two transactions lock subscription rows in the same order and never deadlock.
    matched.sort(key=lambda m: m[0])
    for sub_id, group in groupby(matched, key=lambda m: m[0]):
        items = list(group)
        _number(session, sub_id, items[0][1], [w for _, _, w in items], now)
    return len(matched)


def _matches(
    topic: Topic,
    write: Written,
    previous: _Previous,
    spec: SubscriptionSpec,
    expand: _RoleOrganizations,
) -> bool:
    interaction = _INTERACTION.get(write.interaction, write.interaction)
    before = previous.get() if topic.status_change else None
    assert write.resource is not None
    return topic.matches(interaction, write.resource, before, spec.filters, expand)


class _RoleOrganizations:
    """PractitionerRole/x -> {Organization/y} (its organization), read once per transaction:
    a Task's owner or requester is often a professional's role, and the organisation
    subscribes for all of its roles."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[str, str | None] = {}

    def __call__(self, refs: set[str]) -> set[str]:
        out = set()
        for ref in refs:
            if not ref.startswith("PractitionerRole/"):
                continue
            if ref not in self.known:
                sv = self.session.current("PractitionerRole", ref.split("/", 1)[1])
                body = orjson.loads(sv.body) if sv is not None and not sv.deleted else {}
                org = (body.get("organization") or {}).get("reference")
                self.known[ref] = org if isinstance(org, str) else None
            if self.known[ref]:
                out.add(str(self.known[ref]))
        return out


def _number(
    session: Session, sub_id: str, spec: SubscriptionSpec, writes: list[Written], now: int
) -> None:
    """The subscription's next len(writes) event numbers (its row locked until commit) and
    their outbox rows."""
    last = session.query(
        "UPDATE subscriptions SET events = events + ? WHERE id = ? RETURNING events",
        (len(writes), sub_id),
    )
    if not last:
        return  # deleted by a transaction that committed meanwhile: nobody to tell
    first = int(last[0][0]) - len(writes) + 1
    focuses = [f"{w.what}/_history/{w.version or 1}" for w in writes]
    outbox.add_events(session, sub_id, spec.endpoint, first, focuses, now)


class _Previous:
    """The version before a write, read once and only when a status-change topic asks."""

    def __init__(self, session: Session, write: Written) -> None:
        self.session, self.write = session, write
        self._done, self._value = False, None

    def get(self) -> Mapping[str, Any] | None:
        if not self._done:
            self._done = True
            version = self.write.version or 0
            if self.write.interaction != "create" and version > 1:
                resource_type, id = self.write.what.split("/", 1)
                before = self.session.version(resource_type, id, version - 1)
                if before is not None and not before.deleted:
                    self._value = orjson.loads(before.body)
        return self._value
