"""May this organisation write this resource, and what is stored? The pure write rules.

An organisation writes only what it may (issue 3): its own Tasks' work state as owner, the plan
as holder, custodian or contributor; mass assignment of `meta.security`, a foreign requester or
custodian, `meta.versionId`/`lastUpdated` is refused or ignored, never stored. No I/O but the
`ConsentContext` loader, no clock. Refusals name rules and paths, never values from the record.

Rules, in order (`old` = the live stored version, None for create and update-as-create; `new` =
the validated content, None for delete). Each refusal names its rule (`WriteRefused.rule`):

0. gateway-written (403): the type is in hooks.GATEWAY_WRITTEN (AuditEvent).
1. hidden-target (404, as if absent): `old` exists and `hooks.can_see` does not permit it.
2. Written in the writer's own name:
   a. own-name (403): an OWN_NAME element (Task/ServiceRequest.requester,
      PractitionerRole.organization) set or changed to another organisation or a PractitionerRole
      that is not (as stored) the writer's; the owner/performer may be a partner (ASSIGNEES);
   b. foreign-custodian (403): a create's custodian extension names anyone but the writer;
   c. stamp: a create whose write holders exclude the writer gains the custodian extension
      (vocabulary.CUSTODIAN_EXTENSION) naming Organization/<writer>, so the creator holds it.
3. invisible-client (403): each client `new` is tied to and `old` was not must be the writer's
   as custodian (decisions.client_custodians), or a stored Patient it may see (`hooks.can_see`),
   or not stored at all (a new client).
4. A client's patient-privacy Consent (old or new):
   a. consent-custodian (403): the writer must already be a custodian of its client, or, when
      the client has none, be named in the written Consent's `organization` (bootstrap);
   b. consent-organization (403): the new Consent's `organization` must include the writer.
5. Update, patch, delete: a full writer holds `old` for writing (write_holders: the HOLDERS paths
   without ASSIGNEES, plus the custodian extension) or is a custodian of every client of `old`.
   Anyone else is a PARTIAL_WRITERS writer named (as organisation or PractitionerRole) in `old`:
   a. task-owner (403 naming the element): the Task's owner changes only TASK_WORK_STATE;
   b. plan-contributor (403 naming the element): a CarePlan contributor changes anything but
      PLAN_FIXED (subject, author, contributor);
   and neither deletes; else not-holder (403).
   c. A network responsibility (a Task with code fulfill, old or new; task_rules.py), checked
      before a and b, for every writer, full or partial: only the owner changes Task.status,
      along task_rules.TRANSITIONS (task-status-owner 403, task-transition 409); the owner or
      the requester cancels (task-cancel 403); rejected needs a statusReason
      (task-reject-reason 422); only the requester changes owner, businessStatus and input
      (task-requester 403). So the requester, a full writer, does not change the status.
6. holder-security (403): a partial writer leaves `meta.security` and the custodian extension
   exactly as they are. `meta.versionId`/`lastUpdated` (VOLATILE_META) are never compared and
   are dropped from what is stored: storage sets them.

An update that carries no custodian extension keeps the stored one (`keep_custodian`): the stamp
is the server's record of custody, not something a writer drops by omission. A full writer may
transfer custody (change holder paths or the custodian extension) but rule 3
still applies to any client the update newly ties the record to. The Task owner and the
ServiceRequest performer are read holders (decisions.py) but not write holders: the partner a
piece of work is assigned to takes it on, it does not rewrite it (DESIGN.md: only the owner
changes Task.status, the requester may change owner/businessStatus/input: rule 5c).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.consent import hooks, task_rules
from gateway.consent.context import ConsentContext
from gateway.consent.decisions import client_custodians
from gateway.consent.model import Caller, Client
from gateway.consent.records import Key, has_coding, reference_key, references_at
from gateway.consent.vocabulary import (
    CLIENT_LINKS,
    CUSTODIAN_EXTENSION,
    PRIVACY_SCOPE,
    Path,
)
from gateway.errors import Category, FhirError

CREATE, UPDATE, PATCH, DELETE = "create", "update", "patch", "delete"
INTERACTIONS: frozenset[str] = hooks.WRITES
# Set by storage on every version: ignored in what is written, never compared.
VOLATILE_META: tuple[str, ...] = ("versionId", "lastUpdated")
# Holder paths naming who the work is assigned to: holders for reading, not for writing.
ASSIGNEES: dict[str, frozenset[str]] = {
    "Task": frozenset({"owner"}),
    "ServiceRequest": frozenset({"performer"}),
}
# Elements a writer fills only in its own name: its organisation or one of its PractitionerRoles.
OWN_NAME: dict[str, tuple[str, ...]] = {
    "Task": ("requester",),
    "ServiceRequest": ("requester",),
    "PractitionerRole": ("organization",),
}
# What a Task's owner changes as it does the work (meta except meta.security, rule 6).
TASK_WORK_STATE: frozenset[str] = frozenset(
    {
        "status",
        "statusReason",
        "businessStatus",
        "output",
        "note",
        "executionPeriod",
        "lastModified",
        "meta",
    }
)
# What a CarePlan contributor may not change (nor meta.security or the custodian extension).
PLAN_FIXED: frozenset[str] = frozenset({"subject", "author", "contributor"})


@dataclass(frozen=True)
class Partial:
    """A writer that holds no record but may change part of one: named at `element` of `old`.

    `may_change` lists the only top-level elements it may change; None means every element but
    `fixed`. meta.security and the custodian extension are never its to change (rule 6).
    """

    rule: str
    element: str
    may_change: frozenset[str] | None
    fixed: frozenset[str] = frozenset()


PARTIAL_WRITERS: dict[str, Partial] = {
    "Task": Partial("task-owner", "owner", TASK_WORK_STATE),
    "CarePlan": Partial("plan-contributor", "contributor", None, PLAN_FIXED),
}


class WriteRefused(FhirError):
    """A write the caller may not make: 403, or 404 when `hidden` (the target is not theirs to
    see, so the answer is the one an absent target gets). `rule` is for audit only."""

    def __init__(
        self,
        message: str,
        path: str,
        hidden: bool = False,
        *,
        rule: str = "",
        category: Category | None = None,
    ) -> None:
        category = category or (Category.NOT_FOUND if hidden else Category.FORBIDDEN)
        super().__init__(category, message, (path,) if path else ())
        self.path = path
        self.hidden = hidden
        self.rule = rule


def check_write(
    caller: Caller,
    interaction: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    context: ConsentContext,
) -> dict[str, Any] | None:
    """The resource to store for this write (a new dict), None for a delete; WriteRefused if
    `caller` may not make it. Never changes `old` or `new`."""
    _check_arguments(interaction, old, new)
    if old is not None and new is not None:
        new = keep_custodian(old, new)
    rtype = str((new if new is not None else old or {}).get("resourceType"))
    if rtype in hooks.GATEWAY_WRITTEN:
        raise _refuse("gateway-written", f"{rtype} is written by the gateway only", rtype)
    if old is not None:
        if not hooks.can_see(caller, old, context).allowed:
            raise WriteRefused("resource not found", "", hidden=True, rule="hidden-target")
        _check_task_rules(caller, old, new, context)
        _check_authority(caller, old, new, context)
    if new is not None:
        _check_own_name(caller, old, new, context)
    _check_consent(caller, old, new, context)
    if new is None:
        return None
    _check_clients(caller, old, new, context)
    stored = without_volatile(_copy(new))
    if old is None:
        _check_custodian_extension(caller, new, context)
        if caller.organization not in write_holders(stored, context):
            stored = _stamp(stored, caller.organization)
    return stored


def _custodians(resource: Mapping[str, Any]) -> list[Any]:
    extensions = resource.get("extension")
    return [
        e
        for e in (extensions if isinstance(extensions, list) else [])
        if isinstance(e, dict) and e.get("url") == CUSTODIAN_EXTENSION
    ]


def keep_custodian(old: Mapping[str, Any], new: Mapping[str, Any]) -> Mapping[str, Any]:
    """`new`, given the custodian extensions of `old` when it carries none: the stamp is the
    server's record of who holds the resource, so an update that leaves it out (a client that
    sends back only its own fields) keeps it; replacing it is a custody transfer (rule 5)."""
    if _custodians(new) or not _custodians(old):
        return new
    out = dict(new)
    out["extension"] = [*_custodians(old), *(new.get("extension") or [])]
    return out


def stamp_custodian(resource: Mapping[str, Any], org_id: str) -> dict[str, Any]:
    """A copy of `resource` whose custodian extension names Organization/`org_id` (once)."""
    return _stamp(_copy(resource), org_id)


def _stamp(out: dict[str, Any], org_id: str) -> dict[str, Any]:
    """`stamp_custodian` on a fresh copy the caller owns."""
    stamp = {"url": CUSTODIAN_EXTENSION, "valueReference": {"reference": f"Organization/{org_id}"}}
    extensions = out.get("extension")
    extensions = list(extensions) if isinstance(extensions, list) else []
    if stamp not in extensions:
        extensions.append(stamp)
    out["extension"] = extensions
    return out


def write_holders(resource: Mapping[str, Any], context: ConsentContext) -> frozenset[str]:
    """The organisations that hold `resource` for writing: its read holders but the ASSIGNEES."""
    assigned = ASSIGNEES.get(str(resource.get("resourceType")), frozenset())
    return context.holders({k: v for k, v in resource.items() if k not in assigned})


# -- rule 0: the arguments -------------------------------------------------------------------
def _check_arguments(interaction: str, old: Any, new: Any) -> None:
    if interaction not in INTERACTIONS:
        raise _refuse("unknown-interaction", "this interaction is not a write", "")
    if interaction == DELETE and (old is None or new is not None):
        raise ValueError("delete needs the stored resource and no new content")
    if interaction != DELETE and new is None:
        raise ValueError(f"{interaction} needs the new content")
    if interaction in (CREATE, PATCH) and (old is None) != (interaction == CREATE):
        raise ValueError(f"{interaction}: a create has no stored version, a patch has one")
    if old is not None and new is not None and old.get("resourceType") != new.get("resourceType"):
        raise ValueError("a write cannot change the resource type")


# -- rule 2: in the writer's own name ----------------------------------------------------------
def _check_own_name(
    caller: Caller, old: Mapping[str, Any] | None, new: Mapping[str, Any], context: ConsentContext
) -> None:
    rtype = str(new.get("resourceType"))
    for element in OWN_NAME.get(rtype, ()):
        if old is not None and old.get(element) == new.get(element):
            continue
        if _names_other(caller, references_at(new, Path(element)), context):
            raise _refuse(
                "own-name",
                f"{rtype}.{element} must name the writing organisation or one of its roles",
                f"{rtype}.{element}",
            )


def _check_custodian_extension(
    caller: Caller, new: Mapping[str, Any], context: ConsentContext
) -> None:
    named = [_org_of(k, context) for k in _custodian_keys(new)]
    if any(org != caller.organization for org in named):
        raise _refuse(
            "foreign-custodian",
            "a new record's custodian extension may name only the writing organisation",
            f"{new.get('resourceType')}.extension:custodian",
        )


# -- rule 3: the clients a record is tied to ---------------------------------------------------
def _check_clients(
    caller: Caller, old: Mapping[str, Any] | None, new: Mapping[str, Any], context: ConsentContext
) -> None:
    before = {c.id for c in context.clients(old)} if old is not None else set()
    for client in context.clients(new):
        if client.id in before or _may_write_for(caller, client, context):
            continue
        raise _refuse(
            "invisible-client",
            "the record would be tied to a client the writing organisation may not see",
            _client_path(new, client.id),
        )


def _may_write_for(caller: Caller, client: Client, context: ConsentContext) -> bool:
    if caller.organization in client_custodians(client) or client.patient is None:
        return True
    return hooks.can_see(caller, client.patient, context).allowed


def _client_path(resource: Mapping[str, Any], client_id: str) -> str:
    rtype = str(resource.get("resourceType"))
    paths = [p for p in CLIENT_LINKS.get(rtype, ()) if p.element]
    for path in paths:
        if ("Patient", client_id) in set(references_at(resource, path)):
            return f"{rtype}.{path.element}"
    return f"{rtype}.{paths[0].element}" if paths else rtype


# -- rule 4: a client's privacy Consent ------------------------------------------------------
def _check_consent(
    caller: Caller,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    context: ConsentContext,
) -> None:
    written = [r for r in (old, new) if r is not None and _is_privacy_consent(r)]
    if not written:
        return
    named = new if new is not None else written[0]
    names_caller = ("Organization", caller.organization) in set(
        references_at(named, Path("organization"))
    )
    clients = {c.id: c for r in written for c in context.clients(r)}
    for client in clients.values():
        custodians = client_custodians(client)
        if caller.organization in custodians or (not custodians and names_caller):
            continue
        raise _refuse(
            "consent-custodian",
            "only a custodian of the client writes the client's privacy Consent",
            "Consent.patient",
        )
    if new is not None and not names_caller:
        raise _refuse(
            "consent-organization",
            "a privacy Consent's organization must include the writing organisation",
            "Consent.organization",
        )


def _is_privacy_consent(resource: Mapping[str, Any]) -> bool:
    return resource.get("resourceType") == "Consent" and has_coding(
        resource.get("scope"), PRIVACY_SCOPE
    )


# -- rules 5 and 6: who changes an existing record, and how much --------------------------------
def _check_authority(
    caller: Caller, old: Mapping[str, Any], new: Mapping[str, Any] | None, context: ConsentContext
) -> None:
    if _full_writer(caller, old, context):
        return
    rtype = str(old.get("resourceType"))
    partial = PARTIAL_WRITERS.get(rtype)
    if partial is None or not _names_caller(
        caller, references_at(old, Path(partial.element)), context
    ):
        raise _refuse(
            "not-holder",
            "only a holder of the record or a custodian of its clients changes it",
            rtype,
        )
    if new is None:
        raise _refuse(partial.rule, f"a {partial.rule} may not delete the record", rtype)
    changed = _first_change(old, new, partial)
    if changed:
        if changed in ("meta.security", "extension:custodian"):
            rule, message = "holder-security", f"{changed} is set by the record holder"
        else:
            rule, message = partial.rule, f"{rtype}.{changed} is not the {partial.rule}'s to change"
        raise _refuse(rule, message, f"{rtype}.{changed}")


def _check_task_rules(
    caller: Caller, old: Mapping[str, Any], new: Mapping[str, Any] | None, context: ConsentContext
) -> None:
    """Rule 5c: a network responsibility's status and assignment (task_rules.py)."""
    if new is None or not (task_rules.is_responsibility(old) or task_rules.is_responsibility(new)):
        return
    requester, owner = (
        next((_org_of(k, context) for k in references_at(old, Path(e))), None)
        for e in ("requester", "owner")
    )
    found = task_rules.check_task_change(caller.organization, old, new, requester, owner)
    if found is not None:
        raise WriteRefused(
            f"{found.message} ({found.rule})", found.path, rule=found.rule, category=found.category
        )


def full_writer(caller: Caller, old: Mapping[str, Any], context: ConsentContext) -> bool:
    """Whether `caller` may change all of `old` (rule 5): a write holder, or a custodian of
    every client of `old`."""
    return _full_writer(caller, old, context)


def _full_writer(caller: Caller, old: Mapping[str, Any], context: ConsentContext) -> bool:
    if caller.organization in write_holders(old, context):
        return True
    clients = context.clients(old)
    return bool(clients) and all(caller.organization in client_custodians(c) for c in clients)


def _first_change(old: Mapping[str, Any], new: Mapping[str, Any], partial: Partial) -> str | None:
    """The first element (sorted) `new` changes that the partial writer may not change."""
    before, after = without_volatile(dict(old)), without_volatile(dict(new))
    if _security(before) != _security(after):
        return "meta.security"
    if list(_custodian_extensions(before)) != list(_custodian_extensions(after)):
        return "extension:custodian"
    for name in sorted(set(before) | set(after)):
        free = (
            name in partial.may_change
            if partial.may_change is not None
            else (name not in partial.fixed)
        )
        if not free and before.get(name) != after.get(name):
            return name
    return None


def _security(resource: Mapping[str, Any]) -> Any:
    meta = resource.get("meta")
    return meta.get("security") if isinstance(meta, Mapping) else None


# -- helpers: references, organisations, the stored shape -------------------------------------
def _custodian_extensions(resource: Mapping[str, Any]) -> Iterable[Any]:
    extensions = resource.get("extension")
    for ext in extensions if isinstance(extensions, list) else []:
        if isinstance(ext, Mapping) and ext.get("url") == CUSTODIAN_EXTENSION:
            yield ext


def _custodian_keys(resource: Mapping[str, Any]) -> list[Key | None]:
    """Each custodian extension's reference key (None where it is not a literal reference)."""
    return [reference_key(ext.get("valueReference")) for ext in _custodian_extensions(resource)]


def _org_of(key: Key | None, context: ConsentContext) -> str | None:
    """The organisation a reference key stands for: itself, or a PractitionerRole's (stored)."""
    if key is None or key[0] not in ("Organization", "PractitionerRole"):
        return None
    probe = {"resourceType": "Basic", "extension": [_as_custodian(key)]}
    orgs = context.holders(probe)
    return next(iter(orgs)) if len(orgs) == 1 else None


def _as_custodian(key: Key) -> dict[str, Any]:
    return {"url": CUSTODIAN_EXTENSION, "valueReference": {"reference": f"{key[0]}/{key[1]}"}}


def _names_caller(caller: Caller, keys: Iterable[Key], context: ConsentContext) -> bool:
    return any(_org_of(k, context) == caller.organization for k in keys)


def _names_other(caller: Caller, keys: Iterable[Key], context: ConsentContext) -> bool:
    """Whether any Organization/PractitionerRole among `keys` is not the caller's (fail closed:
    a PractitionerRole not stored or naming no organisation is not the caller's)."""
    return any(
        k[0] in ("Organization", "PractitionerRole") and _org_of(k, context) != caller.organization
        for k in keys
    )


def _copy(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON resource: an orjson round trip is several times quicker than
    `copy.deepcopy` on these plain dicts and lists (measured: 8% of a transaction's time)."""
    return orjson.loads(orjson.dumps(resource))  # type: ignore[no-any-return]


def without_volatile(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` (a fresh top-level dict) without meta.versionId/lastUpdated."""
    meta = resource.get("meta")
    if isinstance(meta, Mapping) and any(k in meta for k in VOLATILE_META):
        kept = {k: v for k, v in meta.items() if k not in VOLATILE_META}
        if kept:
            resource["meta"] = kept
        else:
            del resource["meta"]
    return resource


def _refuse(rule: str, message: str, path: str) -> WriteRefused:
    return WriteRefused(f"{message} ({rule})", path, rule=rule)
