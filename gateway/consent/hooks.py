"""The disclosure gate's named hook points (STYLE habit 8; HAPI FHIR `IConsentService`).

Every path out calls them in this order, with one `ConsentContext` per request:

- `start_operation(caller, interaction, resource_type)`: before any work; PROCEED or DENY
  (HAPI startOperation). Denies interactions it does not know (fail closed) and writes to the
  gateway's own records (AuditEvent).
- `can_see(caller, resource, context)`: per resource, before it is counted or disclosed
  (HAPI canSeeResource); a `Decision` with verdict, reason and deciding Consent for audit.
- `will_see(caller, resource, context)`: per resource that may be seen, the resource as it may be
  shown (HAPI willSeeResource): the same object when nothing is hidden (serve the stored bytes),
  a masked copy for a TURVAKIELTO client seen by a non-custodian.

Audit is written by the caller at these same points (gateway/audit/, next session). This module
never serialises, never reads storage except through the context's loader, never reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.consent.context import ConsentContext
from gateway.consent.decisions import client_custodians, decide
from gateway.consent.masking import mask
from gateway.consent.model import Caller, Decision
from gateway.consent.records import is_protected

READS = frozenset(
    {"read", "vread", "search-type", "search-system"}
    | {"history-instance", "history-type", "history-system"}
)
WRITES = frozenset({"create", "update", "patch", "delete"})
OTHER = frozenset({"transaction", "batch", "operation", "capabilities"})
INTERACTIONS = READS | WRITES | OTHER
# Only the gateway writes these (IHE BALP: the audit trail is the gateway's own record).
GATEWAY_WRITTEN = frozenset({"AuditEvent"})


class Start(StrEnum):
    PROCEED = "proceed"
    DENY = "deny"


@dataclass(frozen=True)
class StartDecision:
    outcome: Start
    reason: str = ""


def start_operation(caller: Caller, interaction: str, resource_type: str | None) -> StartDecision:
    """May `caller` begin this interaction at all? Per-resource checks still follow."""
    if interaction not in INTERACTIONS:
        return StartDecision(Start.DENY, "unknown-interaction")
    if interaction in WRITES and resource_type in GATEWAY_WRITTEN:
        return StartDecision(Start.DENY, "gateway-written")
    return StartDecision(Start.PROCEED)


def can_see(caller: Caller, resource: Mapping[str, Any], context: ConsentContext) -> Decision:
    """May `caller` see `resource` now? (Denied = as if it did not exist: 404, not counted.)"""
    return decide(
        caller, resource, context.clients(resource), context.holders(resource), context.now
    )


def will_see(
    caller: Caller, resource: Mapping[str, Any], context: ConsentContext
) -> Mapping[str, Any]:
    """`resource` as `caller` may see it; call only after `can_see` permitted it."""
    if caller.organization in context.holders(resource):
        return resource
    protected = [
        c.id
        for c in context.clients(resource)
        if c.patient is not None
        and is_protected(c.patient)
        and caller.organization not in client_custodians(c)
    ]
    return mask(resource, protected) if protected else resource
