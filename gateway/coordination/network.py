"""The client network's coordinator as plain data: who the coordinator participant of a CareTeam
is at an instant, and the CareTeam, plan and handover Task a change of coordinator makes.

Pure functions over JSON dicts (no I/O, no clock: the instant is an argument); they never change
their input. Periods are read as [start, end) at the instant level: a change ends the old
participant's period and starts the new one at the same value, and at that instant the new
coordinator is the responsible one (R4 reads a Period's end as inclusive; ours must not
overlap, so the next start wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

from gateway.consent.records import has_coding, reference_key
from gateway.consent.vocabulary import CANONICAL, CUSTODIAN_EXTENSION, REDACTED
from gateway.search.dates import MAX_US, date_range

Resource = Mapping[str, Any]

COORDINATOR_ROLE = f"{CANONICAL}/CodeSystem/coordinator-role"
COORDINATOR = (COORDINATOR_ROLE, "asiakasvastaava")
NETWORK_CATEGORY = ("http://loinc.org", "LA28865-6")
TASK_TYPE = f"{CANONICAL}/CodeSystem/task-type"
HANDOVER = (TASK_TYPE, "coordinator-handover")
BUSINESS_STATUS = f"{CANONICAL}/CodeSystem/business-status"
HANDOVER_REASON = f"{CANONICAL}/CodeSystem/handover-reason"
# Task statuses of a handover still waiting for its answer (R4 task-status).
OPEN_STATUSES = ("draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold")
# CarePlan statuses whose custodian still follows the coordinator (a finished plan keeps its own).
LIVE_PLAN_STATUSES = ("draft", "active", "on-hold")
VOLATILE_META = ("versionId", "lastUpdated")


class Refused(ValueError):
    """A change the network's state does not allow: `rule` and `path` name why (a 409)."""

    def __init__(self, rule: str, message: str, path: str) -> None:
        super().__init__(message)
        self.rule, self.message, self.path = rule, message, path


@lru_cache(maxsize=4096)
def instant(value: str) -> int:
    """The first microsecond (UTC) of a FHIR date/dateTime (cached: a follow-up report reads
    the same few period dates of every network many times)."""
    return date_range(value)[0]


def is_network(team: Resource) -> bool:
    return has_coding(team.get("category"), NETWORK_CATEGORY)


def is_coordinator(participant: Any) -> bool:
    return isinstance(participant, Mapping) and has_coding(participant.get("role"), COORDINATOR)


def _bounds(participant: Resource) -> tuple[int, int]:
    period = participant.get("period") or {}
    start = instant(period["start"]) if isinstance(period.get("start"), str) else -MAX_US
    end = instant(period["end"]) if isinstance(period.get("end"), str) else MAX_US
    return start, end


def coordinator_history(team: Resource) -> list[dict[str, Any]]:
    """Every coordinator participant, in the order they started."""
    found = [p for p in team.get("participant") or [] if is_coordinator(p)]
    return sorted(found, key=lambda p: _bounds(p)[0])


def coordinators_at(team: Resource, at_us: int) -> list[dict[str, Any]]:
    """The coordinator participants whose period holds `at_us` (one, in a sound network)."""
    return [p for p in coordinator_history(team) if _bounds(p)[0] <= at_us < _bounds(p)[1]]


def open_coordinators(team: Resource) -> list[dict[str, Any]]:
    """The coordinator participants whose period has no end (profile client-network, cn-1)."""
    return [p for p in coordinator_history(team) if not (p.get("period") or {}).get("end")]


def current(team: Resource) -> dict[str, Any]:
    """The one open coordinator participant; Refused when there are none or several."""
    found = open_coordinators(team)
    if len(found) != 1:
        raise Refused(
            "one-coordinator",
            f"the network has {len(found)} current coordinators, not exactly one",
            "CareTeam.participant",
        )
    return found[0]


def member(participant: Resource) -> str | None:
    key = reference_key(participant.get("member"))
    return "/".join(key) if key else None


def is_first(team: Resource) -> bool:
    """A proposed network with no coordinator yet: the first one is named (at the joint
    appointment, seed 002), which makes the network active."""
    return team.get("status") == "proposed" and not open_coordinators(team)


def switch(team: Resource, new_role: str, when: str, note: str | None = None) -> dict[str, Any]:
    """The CareTeam with the current coordinator's period ended at `when` and `new_role` the
    coordinator from `when` (or, on a proposed network without one, the first coordinator, the
    network active from then on). Refused when the network is not active, the new one is the
    current one, or `when` is not after the current coordinator's start."""
    if is_first(team):
        out = plain(team)
        out["status"] = "active"
        out["participant"] = list(out.get("participant") or [])
    else:
        out = _ended(team, new_role, when)
    out["participant"].append(
        {
            "role": [{"coding": [{"system": COORDINATOR_ROLE, "code": COORDINATOR[1]}]}],
            "member": {"reference": new_role},
            "period": {"start": when},
        }
    )
    if note:
        out["note"] = [*(out.get("note") or []), {"time": when, "text": note}]
    return out


def _ended(team: Resource, new_role: str, when: str) -> dict[str, Any]:
    """A copy of an active network whose current coordinator's period ends at `when`."""
    if team.get("status") != "active":
        raise Refused("network-active", "the network is not active", "CareTeam.status")
    now = current(team)
    if member(now) == new_role:
        raise Refused("already-coordinator", "this role is the coordinator already", "coordinator")
    if instant(when) <= _bounds(now)[0]:
        raise Refused(
            "after-current-start",
            "a change must be dated after the current coordinator's start",
            "date",
        )
    out = plain(team)
    for p in out["participant"]:
        if p == now:
            p["period"] = {**(p.get("period") or {}), "end": when}
            break
    return out


def holder_refs(team: Resource) -> list[str]:
    """`Type/id` of the network's managing organisations and custodian extension."""
    found = [reference_key(m) for m in team.get("managingOrganization") or []]
    found += [
        reference_key(e.get("valueReference"))
        for e in team.get("extension") or []
        if isinstance(e, Mapping) and e.get("url") == CUSTODIAN_EXTENSION
    ]
    return ["/".join(k) for k in found if k is not None]


def with_manager(team: Resource, org: str) -> dict[str, Any]:
    """The CareTeam with `org` among its managing organisations (added once, none removed)."""
    out = plain(team)
    managers = out.get("managingOrganization") or []
    if not any(reference_key(m) == reference_key({"reference": org}) for m in managers):
        out["managingOrganization"] = [*managers, {"reference": org}]
    return out


def follow(plan: Resource, role: str, org: str) -> dict[str, Any]:
    """The plan with the new coordinator's organisation as its author (custodian: DESIGN.md) and
    custodian extension, the previous author and the new coordinator kept as contributors."""
    out = plain(plan)
    before = out.get("author")
    out["author"] = {"reference": org}
    contributors = list(out.get("contributor") or [])
    for ref in (before, {"reference": role}, {"reference": org}):
        key = reference_key(ref)
        if key and all(reference_key(c) != key for c in contributors):
            contributors.append({"reference": "/".join(key)})
    out["contributor"] = contributors
    for ext in out.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == CUSTODIAN_EXTENSION:
            ext["valueReference"] = {"reference": org}
    return out


def is_handover(task: Resource) -> bool:
    return has_coding(task.get("code"), HANDOVER)


def closed_handover(
    task: Resource, status: str, business: str, when: str, reason: str | None = None
) -> dict[str, Any]:
    """The handover Task answered: `status` (completed/rejected/cancelled), its businessStatus."""
    out = plain(task)
    out["status"] = status
    out["businessStatus"] = {"coding": [{"system": BUSINESS_STATUS, "code": business}]}
    out["lastModified"] = when
    if reason:
        out["statusReason"] = {"text": reason}
    return out


def is_masked(resource: Resource) -> bool:
    """Whether this is a redacted view (consent/masking.py): never to be written back."""
    return has_coding((resource.get("meta") or {}).get("security"), tuple(REDACTED.values()))


def plain(resource: Resource) -> dict[str, Any]:
    """A deep copy without meta.versionId/lastUpdated (storage sets them)."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(resource))
    meta = {k: v for k, v in (out.get("meta") or {}).items() if k not in VOLATILE_META}
    if meta:
        out["meta"] = meta
    else:
        out.pop("meta", None)
    return out
