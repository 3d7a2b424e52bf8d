"""Mirror Tasks: our copy of a Task an upstream (gateway/delivery/upstreams.py) assigned to our
organisation, and the way our users' work on it goes back.

`build` makes the mirror from the upstream's Task as its notification told it: A's own id as an
identifier, A's version in an extension (an older event never overwrites a newer one), the
client, plan, request and requester as absolute references to A (nothing at our end resolves
them, so no local client's consent decides them: the mirror is its owner's, ours, only), the
owner our Organization. `push_back` (a consent.enforcement WRITE_HOOK) queues, in the
transaction of a user's change to a mirror's work state (status, statusReason, output, note,
executionPeriod, lastModified), a JSON Patch of A's Task in the outbox (channel "fhir", stream =
the upstream's name), which upstream_send.py delivers, with A's version the mirror held (sent as
If-Match, so that a copy sent again is never applied twice) and, for an appended item, how many
equal items the list holds with the change in (`counts`: what tells an item A already has from
a copy of this change). The inbox's own writes (A's change coming in) run inside `applying()`
and are never sent back.

Never logs content; never changes what the upstream alone may change (owner, businessStatus,
input are the requester's: gateway/consent/task_rules.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson

from adapters.ids import Ids
from fhir_profiles import CANONICAL
from gateway.consent.enforcement import WRITE_HOOKS, Written
from gateway.delivery import outbox
from gateway.delivery.upstreams import Upstream
from gateway.storage.base import Session

HOOK = "upstream-push-back"
FHIR = "fhir"  # the outbox channel of calls to an upstream's FHIR API
MIRROR = f"{CANONICAL}/StructureDefinition/upstream-task"  # parts: upstream, version
# Copied from A's Task as they are (relative references in them made absolute to A).
COPIED = (
    "status",
    "statusReason",
    "businessStatus",
    "intent",
    "priority",
    "code",
    "description",
    "authoredOn",
    "lastModified",
    "restriction",
    "executionPeriod",
    "output",
    "note",
)
REFERENCES = ("basedOn", "focus", "for", "requester")  # to A's resources, made absolute
# What our user, the owner, changes and A is told (writes.TASK_WORK_STATE without
# businessStatus, the requester's, and meta, ours).
PUSHED = ("status", "statusReason", "output", "note", "executionPeriod", "lastModified")

_APPLYING: ContextVar[bool] = ContextVar("upstream_applying", default=False)


@contextmanager
def applying() -> Iterator[None]:
    """Writes made inside come from the upstream: nothing is pushed back for them."""
    token = _APPLYING.set(True)
    try:
        yield
    finally:
        _APPLYING.reset(token)


def mirror_id(upstream: Upstream, task_id: str) -> str:
    return Ids.derived("upstream-task", upstream.name, task_id)


def marker(resource: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """(upstream name, A's version) of a mirror; None for any other resource."""
    for ext in (resource or {}).get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == MIRROR:
            parts = {p.get("url"): p for p in ext.get("extension") or [] if isinstance(p, Mapping)}
            name = (parts.get("upstream") or {}).get("valueString")
            version = (parts.get("version") or {}).get("valueInteger")
            if isinstance(name, str) and isinstance(version, int):
                return name, version
    return None


def upstream_id(upstream: Upstream, mirror: Mapping[str, Any]) -> str | None:
    """A's id of the Task `mirror` copies."""
    for identifier in mirror.get("identifier") or []:
        if isinstance(identifier, Mapping) and identifier.get("system") == upstream.task_system:
            return str(identifier.get("value"))
    return None


def build(
    upstream: Upstream,
    task: Mapping[str, Any],
    version: int,
    live: Mapping[str, Any] | None,
    keep_local: bool,
) -> dict[str, Any]:
    """The mirror of A's `task` (its `version`). `keep_local`: our changes A has not yet been
    told stay as they are (they go to A, and A's next event brings them back)."""
    out: dict[str, Any] = {
        "resourceType": "Task",
        "id": mirror_id(upstream, str(task["id"])),
        "extension": [_marker(upstream.name, version)],
        "identifier": [{"system": upstream.task_system, "value": str(task["id"])}],
    }
    for name in COPIED + REFERENCES:
        if name in task:
            out[name] = rebase(task[name], upstream.base, absolute=True)
    owner = task.get("owner") if isinstance(task.get("owner"), Mapping) else {}
    out["owner"] = {"reference": f"Organization/{upstream.organization}"}
    if isinstance(owner.get("display"), str):
        out["owner"]["display"] = owner["display"]
    if keep_local and live is not None:
        for name in PUSHED:
            out.pop(name, None)
            if name in live:
                out[name] = live[name]
    return out


def _marker(name: str, version: int) -> dict[str, Any]:
    return {
        "url": MIRROR,
        "extension": [
            {"url": "upstream", "valueString": name},
            {"url": "version", "valueInteger": version},
        ],
    }


def rebase(value: Any, base: str, absolute: bool) -> Any:
    """`value` with every literal reference to A made absolute (`Type/id` -> base/Type/id), or
    relative again (`absolute=False`). Other references stay as they are."""
    if isinstance(value, list):
        return [rebase(v, base, absolute) for v in value]
    if not isinstance(value, Mapping):
        return value
    out = {k: rebase(v, base, absolute) for k, v in value.items()}
    ref = out.get("reference")
    if isinstance(ref, str):
        if absolute and _relative(ref):
            out["reference"] = f"{base}/{ref}"
        elif not absolute and ref.startswith(base + "/"):
            out["reference"] = ref[len(base) + 1 :]
    return out


def _relative(ref: str) -> bool:
    head = ref.split("/", 1)[0]
    return "/" in ref and "://" not in ref and head.isalpha() and head[:1].isupper()


def push_ops(base: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict]:
    """The JSON Patch (RFC 6902) telling A what our user changed from `before` to `after`. A
    status change tests A's status first: a Task A has moved on meanwhile (cancelled by its
    requester) refuses the change (422) instead of being overwritten."""
    ops: list[dict[str, Any]] = []
    for name in PUSHED:
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        path = f"/{name}"
        if new is None:
            ops.append({"op": "remove", "path": path})
        elif isinstance(old, list) and isinstance(new, list) and new[: len(old)] == old:
            # appended (a note, an output): A's own additions meanwhile stay
            ops += [
                {"op": "add", "path": f"{path}/-", "value": rebase(v, base, False)}
                for v in new[len(old) :]
            ]
        else:
            ops.append({"op": "add", "path": path, "value": rebase(new, base, False)})
    if ops and before.get("status") != after.get("status") and before.get("status"):
        ops.insert(0, {"op": "test", "path": "/status", "value": before["status"]})
    return ops


def appended_counts(base: str, after: Mapping[str, Any], ops: Sequence[Mapping]) -> list[int]:
    """For each op of `ops` appending an item (`/note/-`), how many items equal to it `after`'s
    list holds (1 for any other op); [] when no op appends."""
    if not any(str(op.get("path", "")).endswith("/-") for op in ops):
        return []
    counts = []
    for op in ops:
        path = str(op.get("path", ""))
        items = after.get(path[1:-2]) if path.endswith("/-") else None
        told = rebase(items, base, False) if isinstance(items, list) else []
        counts.append(max(1, sum(1 for item in told if item == op.get("value"))))
    return counts


def install(upstreams: Mapping[str, Upstream]) -> None:
    """Install the push-back hook for these upstreams (none: removed; one gateway per process)."""
    if upstreams:
        WRITE_HOOKS[HOOK] = lambda session, written: push_back(upstreams, session, written)
    else:
        WRITE_HOOKS.pop(HOOK, None)


def push_back(
    upstreams: Mapping[str, Upstream], session: Session, written: Sequence[Written]
) -> None:
    """Queue a PATCH of A's Task for every mirror whose work state our user changed here."""
    if _APPLYING.get():
        return
    for write in written:
        if write.interaction not in ("update", "patch") or not write.what.startswith("Task/"):
            continue
        found = marker(write.resource)
        upstream = upstreams.get(found[0]) if found is not None else None
        if upstream is None or write.resource is None or not write.version:
            continue
        before = _before(session, write)
        a_id = upstream_id(upstream, write.resource)
        ops = push_ops(upstream.base, before, write.resource) if before is not None else []
        if not ops or a_id is None:
            continue
        url = f"{upstream.base}/Task/{a_id}"
        held = marker(before) or found
        message: dict[str, Any] = {"method": "PATCH", "url": url, "patch": ops}
        if held is not None and held[0] == upstream.name:
            message["version"] = held[1]  # A's version our user's change was made on
        counts = appended_counts(upstream.base, write.resource, ops)
        if counts:
            message["counts"] = counts
        outbox.add(
            session,
            id=Ids.derived("upstream-patch", write.what, str(write.version)),
            channel=FHIR,
            stream=upstream.name,
            seq=write.version,
            kind="message",
            focus=f"{write.what}/_history/{write.version}",
            payload=orjson.dumps(message).decode(),
            destination=url,
            now=time.time_ns() // 1000,
        )


def _before(session: Session, write: Written) -> dict[str, Any] | None:
    resource_type, id = write.what.split("/", 1)
    sv = session.version(resource_type, id, int(write.version or 0) - 1)
    if sv is None or sv.deleted:
        return None
    before: dict[str, Any] = orjson.loads(sv.body)
    return before
