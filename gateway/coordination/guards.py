"""What plain REST may not do around the named coordinator: a hook for the write path.

Never zero or two coordinators (issue 4, workflow 3): a client network's coordinator changes
only through `$designate-coordinator` and `$accept-handover`, and a coordinator handover's state
only through `$accept-handover` / `$reject-handover` (or a designation, which cancels it). The
REST write path calls `guard_write` for every create/update/patch/delete a caller makes that is
not an operation's own authorised write (Gate.authority is None). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.coordination import network
from gateway.errors import Category, FhirError, Issue

# What of a handover Task only the operations change.
HANDOVER_STATE = (
    "status",
    "statusReason",
    "businessStatus",
    "owner",
    "requester",
    "focus",
    "for",
    "output",
    "restriction",
)


def guard_write(
    interaction: str,
    resource_type: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
) -> None:
    """409 naming the rule when this REST write would change a network's coordinator or a
    handover's state, or leave an active network without exactly one current coordinator.
    `old` is the live stored resource (None for a create), `new` the content (None: delete)."""
    if resource_type == "CareTeam":
        _guard_network(interaction, old, new)
    elif resource_type == "Task":
        _guard_handover(interaction, old, new)


def _guard_network(
    interaction: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> None:
    if old is not None and network.is_network(old):
        before = network.coordinator_history(old)
        after = network.coordinator_history(new) if new is not None else before
        if _keys(before) != _keys(after):
            raise _conflict(
                "coordinator-by-operation",
                "a client network's coordinator changes only through $designate-coordinator or "
                "$accept-handover",
                "CareTeam.participant",
            )
    if new is not None and network.is_network(new) and new.get("status") == "active":
        count = len(network.open_coordinators(new))
        if count != 1:
            raise _conflict(
                "one-coordinator",
                f"an active client network has exactly one current coordinator, not {count}",
                "CareTeam.participant",
            )


def _keys(participants: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    """What identifies a coordinator's term: who and when (display text may change)."""
    return [(network.member(p), p.get("period")) for p in participants]


def _guard_handover(
    interaction: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> None:
    if old is None or not network.is_handover(old):
        return
    if new is None:
        if old.get("status") in network.OPEN_STATUSES:
            raise _conflict(
                "handover-by-operation",
                "an open handover is answered with $accept-handover or $reject-handover, "
                "not deleted",
                "Task",
            )
        return
    changed = [e for e in HANDOVER_STATE if old.get(e) != new.get(e)]
    if changed or not network.is_handover(new):
        element = changed[0] if changed else "code"
        raise _conflict(
            "handover-by-operation",
            f"Task.{element} of a coordinator handover changes only through $accept-handover "
            "or $reject-handover",
            f"Task.{element}",
        )


def _conflict(rule: str, message: str, path: str) -> FhirError:
    text = f"{message} (rule: {rule})"
    return FhirError(Category.CONFLICT, text, issues=[Issue(text, (path,), code="conflict")])
