"""Who moves a network responsibility (a Task with code fulfill) along, and how: the pure rules
writes.py applies to every REST update or patch of such a Task.

Only the owner changes Task.status, along TRANSITIONS; cancel by the owner or the requester;
only the requester changes owner, businessStatus and input (DESIGN.md, Gravity referral
pattern). No I/O: writes.py resolves who the requester and the owner are. A refusal names its
rule and the element, never a value from the record but the status codes of the transition.

| rule | answer | when |
|---|---|---|
| task-status-owner | 403 | Task.status changed (not to cancelled) by anyone but the owner |
| task-cancel | 403 | Task.status set to cancelled by anyone but the owner or the requester |
| task-transition | 409 | the status change is not in TRANSITIONS (e.g. requested -> completed) |
| task-reject-reason | 422 | Task.status set to rejected without a statusReason |
| task-requester | 403 | owner, businessStatus or input changed by anyone but the requester |

"The owner" is the organisation of the stored Task.owner (an Organization, or a PractitionerRole's
organization); "the requester" likewise of the stored Task.requester. One organisation may be
both (a team that assigns itself a follow-up). These rules come on top of writes.py's rules 1-6:
a caller that may not write the Task at all is refused there first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import Category

TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
FULFILL = (TASK_CODE, "fulfill")
OWNER, REQUESTER, EITHER = "owner", "requester", "owner or requester"
CANCELLED, REJECTED = "cancelled", "rejected"
# The states a responsibility is still open in: each may be cancelled by the owner or requester.
OPEN_STATES: tuple[str, ...] = ("requested", "received", "accepted", "in-progress", "on-hold")
# (from, to) -> who may make the change. Anything else is a 409 naming the transition.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("requested", "received"): OWNER,
    ("requested", "accepted"): OWNER,
    ("requested", REJECTED): OWNER,
    ("received", "accepted"): OWNER,
    ("received", REJECTED): OWNER,
    ("accepted", "in-progress"): OWNER,
    ("accepted", "on-hold"): OWNER,
    ("accepted", "completed"): OWNER,
    ("accepted", "failed"): OWNER,
    ("in-progress", "on-hold"): OWNER,
    ("in-progress", "completed"): OWNER,
    ("in-progress", "failed"): OWNER,
    ("on-hold", "in-progress"): OWNER,
    **{(state, CANCELLED): EITHER for state in OPEN_STATES},
}
# Elements of the assignment itself: the requester's to change, never the owner's.
REQUESTER_ELEMENTS: tuple[str, ...] = ("owner", "businessStatus", "input")


@dataclass(frozen=True)
class Violation:
    """A refused change: `rule` (see the table), the element `path`, and the answer's category."""

    rule: str
    message: str
    path: str
    category: Category = Category.FORBIDDEN


def is_responsibility(task: Mapping[str, Any] | None) -> bool:
    """Whether `task` is a network responsibility: a Task whose code carries task-code#fulfill."""
    if not isinstance(task, Mapping) or task.get("resourceType") != "Task":
        return False
    code = task.get("code")
    codings = code.get("coding") if isinstance(code, Mapping) else None
    return any(
        isinstance(c, Mapping) and (c.get("system"), c.get("code")) == FULFILL
        for c in (codings if isinstance(codings, list) else [])
    )


def check_task_change(
    caller: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    requester: str | None,
    owner: str | None,
) -> Violation | None:
    """The first rule `caller` (an organisation id) breaks by changing the stored Task `old` into
    `new`, or None. `requester`/`owner` are the organisation ids of the stored Task.requester and
    Task.owner (None when they cannot be resolved: nobody is then that party, fail closed)."""
    parties = {OWNER: caller == owner, REQUESTER: caller == requester}
    parties[EITHER] = parties[OWNER] or parties[REQUESTER]
    before, after = old.get("status"), new.get("status")
    if before != after:
        found = _status_change(str(before), str(after), new, parties)
        if found is not None:
            return found
    for element in REQUESTER_ELEMENTS:
        if old.get(element) != new.get(element) and not parties[REQUESTER]:
            return Violation(
                "task-requester",
                f"only the requester of a network responsibility changes Task.{element}",
                f"Task.{element}",
            )
    return None


def _status_change(
    before: str, after: str, new: Mapping[str, Any], parties: Mapping[str, bool]
) -> Violation | None:
    who = TRANSITIONS.get((before, after), EITHER if after == CANCELLED else OWNER)
    if not parties[who]:
        rule = "task-cancel" if after == CANCELLED else "task-status-owner"
        return Violation(
            rule, f"only the {who} of a network responsibility sets this status", "Task.status"
        )
    if (before, after) not in TRANSITIONS:
        return Violation(
            "task-transition",
            f"Task.status may not change from {_code(before)} to {_code(after)}",
            "Task.status",
            Category.CONFLICT,
        )
    if after == REJECTED and not new.get("statusReason"):
        return Violation(
            "task-reject-reason",
            "a rejected network responsibility needs a statusReason",
            "Task.statusReason",
            Category.UNPROCESSABLE,
        )
    return None


def _code(status: str) -> str:
    """A status code fit for a message: a FHIR code token, else a placeholder (never free text
    from the record)."""
    ok = status.replace("-", "").isalpha() and len(status) <= 32
    return status if ok else "(invalid)"
