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

Who may make a mirror: only the inbox. Its marker extension (MIRROR) is server-owned: `shape`
(the Task WRITE_SHAPER, installed by gateway/delivery/__init__.py) refuses any other writer's
create that carries it and any update that adds or changes it (one that drops it gets the
stored one back; one that keeps it, as a user PUTting the mirror read, passes). A mirror's id
is keyed with the deployment's pseudonym key (`mirror_id`: nobody can make the id of A's Task
before the inbox does), and `push_back` sends only for a Task that is one: its id is the mirror
id of the A id it names, its owner the upstream's organisation, its marker as stored before.

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
from gateway.consent.model import Caller as ConsentCaller
from gateway.delivery import outbox
from gateway.delivery.upstreams import Upstream
from gateway.errors import Category, FhirError
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


def mirror_id(ids: Ids, upstream: Upstream, task_id: str) -> str:
    """Our mirror's id of A's Task `task_id`: keyed with the deployment's pseudonym key, so
    that no one can create a Task under it before the inbox does (an unkeyed uuid5 of public
    parts could be computed, and the id taken, by any organisation that may create a Task)."""
    return ids.personal(f"{CANONICAL}/upstream-task/{upstream.name}", task_id)


def markers(resource: Mapping[str, Any] | None) -> list[Any]:
    """The MIRROR extensions of `resource`, as they are (server-owned content)."""
    found = (resource or {}).get("extension")
    if not isinstance(found, list):
        return []
    return [e for e in found if isinstance(e, Mapping) and e.get("url") == MIRROR]


def shape(
    who: ConsentCaller | None,
    interaction: str,
    live: Mapping[str, Any] | None,
    new: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The Task WRITE_SHAPER: the MIRROR marker is the inbox's alone (it writes inside
    `applying()`). Any other writer (a caller, or a trusted tool) may keep what is stored: a
    create carrying a marker, or an update adding or changing one, is refused (403); an update
    leaving it out gets the stored one back (the Task stays a mirror)."""
    if new is None or _APPLYING.get():
        return new
    theirs, held = markers(new), markers(live)
    if theirs == held:
        return new
    if not theirs:
        extension = new.get("extension")
        kept = list(extension) if isinstance(extension, list) else []
        return {**new, "extension": held + kept}
    raise FhirError(
        Category.FORBIDDEN,
        "the upstream-task extension is set by the server only (an upstream's Task mirrored "
        "here): it may not be added or changed",
        ("Task.extension",),
    )


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
    mid: str,
    task: Mapping[str, Any],
    version: int,
    live: Mapping[str, Any] | None,
    keep_local: bool,
) -> dict[str, Any]:
    """The mirror (id `mid`) of A's `task` (its `version`). `keep_local`: our changes A has not
    yet been told stay as they are (they go to A, and A's next event brings them back)."""
    out: dict[str, Any] = {
        "resourceType": "Task",
        "id": mid,
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


def install(upstreams: Mapping[str, Upstream], ids: Ids | None) -> None:
    """Install the push-back hook for these upstreams (none: removed; one gateway per process);
    `ids`: the deployment's keyed id maker (mirror ids; needed when there are upstreams)."""
    if upstreams and ids is not None:
        WRITE_HOOKS[HOOK] = lambda session, written: push_back(upstreams, ids, session, written)
    else:
        WRITE_HOOKS.pop(HOOK, None)


def push_back(
    upstreams: Mapping[str, Upstream], ids: Ids, session: Session, written: Sequence[Written]
) -> None:
    """Queue a PATCH of A's Task for every mirror whose work state our user changed here."""
    if _APPLYING.get():
        return
    for write in written:
        if write.interaction not in ("update", "patch") or not write.what.startswith("Task/"):
            continue
        found = marker(write.resource)
        upstream = upstreams.get(found[0]) if found is not None else None
        if upstream is None or found is None or write.resource is None or not write.version:
            continue
        a_id = upstream_id(upstream, write.resource)
        if a_id is None or not _is_mirror(ids, upstream, a_id, write):
            continue
        before = _before(session, write)
        if before is None or markers(before) != markers(write.resource):
            continue  # not a mirror the inbox made (or its marker not as the inbox left it)
        ops = push_ops(upstream.base, before, write.resource)
        if not ops:
            continue
        url = f"{upstream.base}/Task/{a_id}"
        message: dict[str, Any] = {"method": "PATCH", "url": url, "patch": ops}
        message["version"] = found[1]  # A's version our user's change was made on
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


def _is_mirror(ids: Ids, upstream: Upstream, a_id: str, write: Written) -> bool:
    """Whether the written Task is our mirror of A's Task `a_id`: under its (keyed) id, and
    owned by the organisation the upstream assigns its Tasks to."""
    owner = (write.resource or {}).get("owner")
    reference = owner.get("reference") if isinstance(owner, Mapping) else None
    return write.what == f"Task/{mirror_id(ids, upstream, a_id)}" and (
        reference == f"Organization/{upstream.organization}"
    )


def _before(session: Session, write: Written) -> dict[str, Any] | None:
    resource_type, id = write.what.split("/", 1)
    sv = session.version(resource_type, id, int(write.version or 0) - 1)
    if sv is None or sv.deleted:
        return None
    before: dict[str, Any] = orjson.loads(sv.body)
    return before
