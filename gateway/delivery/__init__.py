"""Partner delivery (issue 6): subscriptions of the R4 Subscriptions Backport IG, the
transactional outbox and the relay that pushes from it.

`install(svc)` hooks it into the write path: the Subscription shaper (subscriptions.py), the
Task shaper keeping an upstream mirror's marker the inbox's alone (mirror.shape), and the
write hook that, in each writing transaction, keeps subscription rows in step and queues the
events of every watched write (events.py). The relay (relay.py) is started by the app.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from gateway.consent.enforcement import WATCHED_TYPES, WRITE_HOOKS, WRITE_SHAPERS, Written
from gateway.delivery import events, mirror, subscriptions
from gateway.fhir_api.context import Services
from gateway.storage.base import Session

HOOK = "delivery"


def install(svc: Services) -> None:
    """Install the delivery hooks for this gateway (replaces earlier ones: one gateway per
    process; tests that build several apps install the same)."""
    registry = svc.security.registry if svc.security is not None else None
    test_mode = bool(getattr(svc.settings, "delivery_test_mode", False))
    gated = svc.settings.require_auth
    WRITE_SHAPERS["Subscription"] = subscriptions.shaper(registry, test_mode)
    WRITE_SHAPERS["Task"] = mirror.shape  # for every writer, upstreams configured or not
    WATCHED_TYPES[HOOK] = events.topic_types() | {"Subscription"}

    def hook(session: Session, written: Sequence[Written]) -> None:
        now = time.time_ns() // 1000
        subscriptions.sync(session, written, now, registry)
        events.enqueue(session, written, now, gated)

    WRITE_HOOKS[HOOK] = hook
