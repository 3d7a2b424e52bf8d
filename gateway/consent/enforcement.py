"""The disclosure gate of one request: every path out asks it what the caller may see, and every
answer it gives is audited at the same point (DESIGN.md: consent filter -> AuditEvent ->
serialise).

One `Gate` per request, built by routes.py once the caller is authenticated (`for_caller`), or
`trusted()` for in-process tools that run with no caller (the CLI loader, `require_auth` off).
Interactions never decide visibility themselves: they hand stored versions to `disclose`, keys
to `visible_keys`, and a resource about to be written to `check_write`. The events the gate
collects are stored by `flush_into` (writes: in the write's own transaction) or, for reads and
denials, before the answer leaves: in the server by the process's audit writer, which routes.py
awaits (`deferred`: gateway/audit/writer.py), in-process by `flush_reads`/`flush_denials`.

Performance: a record holder is decided from the resource and its PractitionerRole references
alone; only what the caller does not hold loads the client's Patient and Consents, once per
request and page (`ConsentContext`). `RepoLoader` reads through the request's own session, so a
decision sees the same snapshot as the data it guards; nothing is cached between requests, so
a revocation takes effect on the very next request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from gateway.audit import builders
from gateway.audit.context import AuditContext
from gateway.audit.recorder import prepare as prepare_event
from gateway.audit.recorder import record_reads
from gateway.consent import hooks, writes
from gateway.consent.context import ConsentContext
from gateway.consent.model import Caller as ConsentCaller
from gateway.consent.model import Decision, Reason, Verdict
from gateway.consent.records import Key, client_links
from gateway.consent.vocabulary import CUSTODIAN_EXTENSION
from gateway.errors import Category, FhirError
from gateway.storage.ids import new_id
from gateway.storage.sql import prepare_new

if TYPE_CHECKING:
    from gateway.security.caller import Caller
    from gateway.storage.base import Indexer, Repository, Session, StoredVersion
    from gateway.storage.sql import Prepared

PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_CHUNK = 500  # keys per IN (...) list: well inside SQLite's and PostgreSQL's parameter limits
TRUSTED = Decision(Verdict.PERMIT, Reason.RECORD_HOLDER)


# Domain guards on a caller's REST writes, installed by app.py (gateway/coordination/guards.py:
# the named coordinator changes only through its operations). Each takes (interaction, resource
# type, the live stored resource or None, what would be stored or None) and raises FhirError.
WriteGuard = Callable[[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None], None]
WRITE_GUARDS: list[WriteGuard] = []


def install_write_guards(guards: Iterable[WriteGuard]) -> None:
    """Replace the installed guards (idempotent: every app built installs the same ones)."""
    WRITE_GUARDS[:] = list(guards)


@dataclass(frozen=True)
class Written:
    """One write a request made (`Gate.note_write`): "create", "update", "patch" or "delete",
    `what` = "Type/id", the version it makes and the content stored (the last one for a delete)."""

    interaction: str
    what: str
    version: int | None
    resource: Mapping[str, Any] | None


# Hooks run by `Gate.flush_into` in the writer's own session, just before it commits, with the
# writes the request made in it: each may write rows of its own there (the HL7 v2 return path's
# outbox, gateway/intake/return_path.py), so they commit or roll back with the writes. Keyed by
# name: installing twice replaces. Plain creates (`prepared_events`, no open session) are not seen.
WriteHook = Callable[["Session", Sequence[Written]], None]
WRITE_HOOKS: dict[str, WriteHook] = {}
# The resource types some hook must see every write of, plain creates included (a plain create
# of such a type takes the writer-session path, so its hooks run): e.g. the delivery hook's
# Task, CarePlan, CareTeam and Subscription (gateway/delivery/). Keyed by hook name, like
# WRITE_HOOKS.
WATCHED_TYPES: dict[str, frozenset[str]] = {}

# Server-owned content of a type, shaped before it is stored, for every writer (trusted ones
# too): (caller or None, interaction, the live stored resource or None, what would be stored or
# None) -> what to store; raises FhirError for content the server will not take. E.g. a
# Subscription's endpoint checked against its organisation's registration and its `status` set
# by the server (gateway/delivery/subscriptions.py). Keyed by resource type.
WriteShaper = Callable[
    [ConsentCaller | None, str, Mapping[str, Any] | None, dict[str, Any] | None],
    dict[str, Any] | None,
]
WRITE_SHAPERS: dict[str, WriteShaper] = {}


def watched(resource_type: str) -> bool:
    """Whether a write hook must see writes of this type (see WATCHED_TYPES)."""
    return any(resource_type in types for types in WATCHED_TYPES.values())


def shape_trusted(
    interaction: str, resource_type: str, live: Mapping[str, Any] | None, new: dict[str, Any]
) -> dict[str, Any]:
    """What a trusted writer's plain create stores (only the WRITE_SHAPERS apply)."""
    shaper = WRITE_SHAPERS.get(resource_type)
    shaped = shaper(None, interaction, live, new) if shaper is not None else new
    assert shaped is not None
    return shaped


def request_id(headers: Mapping[str, str]) -> str:
    """The request's X-Request-Id when it is a plain token, else a fresh one (echoed back)."""
    given = (headers.get("x-request-id") or "").strip()
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


class RepoLoader:
    """`ConsentLoader` over one open storage session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def read(self, keys: Collection[Key]) -> Mapping[Key, Mapping[str, Any]]:
        out: dict[Key, Mapping[str, Any]] = {}
        ordered = list(keys)
        for start in range(0, len(ordered), _CHUNK):
            for sv in self.session.current_many(ordered[start : start + _CHUNK]):
                out[(sv.resource_type, sv.id)] = orjson.loads(sv.body)
        return out

    def consents(self, client_ids: Collection[str]) -> Iterable[Mapping[str, Any]]:
        ids = sorted(client_ids)
        keys: dict[Key, None] = {}
        for start in range(0, len(ids), _CHUNK):
            part = ids[start : start + _CHUNK]
            marks = ", ".join("?" for _ in part)
            # No DISTINCT (duplicates are dropped here): with it, SQLite without statistics
            # plans a scan of every Consent's references instead of the target index.
            rows = self.session.query(
                "SELECT res_id FROM sp_reference WHERE target_type = 'Patient' "
                f"AND target_id IN ({marks}) AND res_type = 'Consent' AND param = 'patient'",
                part,
            )
            keys.update((("Consent", r[0]), None) for r in rows)
        return list(self.read(list(keys)).values())


@dataclass
class Shown:
    """One stored version the caller may see, as it may be shown."""

    version: StoredVersion
    body: bytes  # the stored bytes, or the masked copy serialised
    decision: Decision

    @property
    def masked(self) -> bool:
        return self.body is not self.version.body


@dataclass
class Gate:
    """The disclosure gate and audit trail of one request."""

    caller: Caller | None
    audit: AuditContext | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    events: list[dict[str, Any]] = field(default_factory=list)  # stored with what they record
    denials: list[dict[str, Any]] = field(default_factory=list)  # stored even when it fails
    # Provenance of each write by a named professional: stored with the write, never alone.
    provenance: list[dict[str, Any]] = field(default_factory=list)
    sync_reads: bool = False  # read events wait for the disk too (Settings.audit_reads_fsync)
    # Set by routes.py when the process's audit writer stores read events after the interaction
    # returns (gateway/audit/writer.py): then flush_reads/flush_denials leave them to it.
    deferred: bool = False
    # Set while a `$`-operation applies writes it has authorised by its own domain rule (e.g.
    # "only the receiver accepts a handover"; gateway/coordination/common.apply): the generic
    # write rules are not applied to them, and the operation stores its own Provenance.
    authority: str | None = None
    written: list[Written] = field(default_factory=list)  # for WRITE_HOOKS, by flush_into
    _context: ConsentContext | None = None
    _who: ConsentCaller | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def trusted(cls) -> Gate:
        """No caller: in-process tools (CLI load, `require_auth` off). Permits all, records
        nothing; never built for a request that carried a token."""
        return cls(None, None)

    @classmethod
    def for_caller(
        cls,
        caller: Caller,
        server: str,
        request: str,
        purpose: str | None = None,
        sync_reads: bool = False,
    ) -> Gate:
        audit = AuditContext(
            client_id=caller.client_id,
            server=server,
            organization_id=caller.organization,
            practitioner_role_id=caller.acting_role,
            purpose_of_use=(purpose,) if purpose else (),
            request_id=request,
        )
        who = ConsentCaller(
            caller.organization,
            caller.acting_role,
            (PURPOSE_SYSTEM, purpose) if purpose else None,
        )
        return cls(caller, audit, audit.when, sync_reads=sync_reads, _who=who)

    @property
    def is_trusted(self) -> bool:
        return self.caller is None

    @property
    def organization(self) -> str | None:
        return None if self.caller is None else self.caller.organization

    # -- deciding ----------------------------------------------------------------------------
    def context(self, session: Session) -> ConsentContext:
        """The request's consent context, reading through `session` from now on."""
        if self._context is None:
            self._context = ConsentContext(RepoLoader(session), self.now)
        else:
            self._context.loader = RepoLoader(session)
        return self._context

    def start(self, interaction: str, resource_type: str | None) -> None:
        """403 unless the caller may begin this interaction at all (hooks.start_operation)."""
        if self._who is None:
            return
        verdict = hooks.start_operation(self._who, interaction, resource_type)
        if verdict.outcome is hooks.Start.DENY:
            self.note_deny(None, Decision(Verdict.DENY, Reason.OPERATION_REFUSED))
            raise FhirError(
                Category.FORBIDDEN,
                f"{interaction} on {resource_type or 'the system'} is not permitted "
                f"({verdict.reason})",
            )

    def decide(self, session: Session, resource: Mapping[str, Any]) -> Decision:
        """May the caller see `resource` now (hooks.can_see), the record holder decided first."""
        if self._who is None:
            return TRUSTED
        ctx = self.context(session)
        if self._who.organization in ctx.holders(resource):
            return Decision(
                Verdict.PERMIT, Reason.RECORD_HOLDER, clients=self._clients(ctx, resource)
            )
        return hooks.can_see(self._who, resource, ctx)

    def _clients(self, ctx: ConsentContext, resource: Mapping[str, Any]) -> frozenset[str]:
        direct, via = client_links(resource)
        if not via:
            return direct
        return frozenset(c.id for c in ctx.clients(resource))

    def disclose(self, session: Session, versions: Sequence[StoredVersion]) -> list[Shown | None]:
        """For each live version, what the caller may see of it (None = hidden, as if it did
        not exist). Hidden ones are recorded as denials; callers record what they disclose."""
        if self._who is None:
            return [Shown(sv, sv.body, TRUSTED) for sv in versions]
        parsed = [orjson.loads(sv.body) for sv in versions]
        ctx = self.context(session)
        decisions: list[Decision | None] = []
        rest: list[Mapping[str, Any]] = []
        for resource in parsed:  # holders first: they need no Patient or Consent
            if self._who.organization in ctx.holders(resource):
                clients = self._clients(ctx, resource)
                decisions.append(Decision(Verdict.PERMIT, Reason.RECORD_HOLDER, clients=clients))
            else:
                decisions.append(None)
                rest.append(resource)
        if rest:
            ctx.prepare(rest)  # one bulk load for the page
        out: list[Shown | None] = []
        for sv, resource, decided in zip(versions, parsed, decisions, strict=True):
            decision = decided or hooks.can_see(self._who, resource, ctx)
            if not decision.allowed:
                self.note_deny(f"{sv.resource_type}/{sv.id}", decision)
                out.append(None)
                continue
            if decided is not None:
                out.append(Shown(sv, sv.body, decision))
                continue
            view = hooks.will_see(self._who, resource, ctx)
            body = sv.body if view is resource else orjson.dumps(view)
            out.append(Shown(sv, body, decision))
        return out

    def disclose_one(self, session: Session, sv: StoredVersion) -> Shown | None:
        return self.disclose(session, [sv])[0]

    def shown_as(self, session: Session, resource: Mapping[str, Any]) -> Mapping[str, Any]:
        """`resource` as the caller may be shown it (hooks.will_see: a TURVAKIELTO client's
        identity masked for others), for an operation that has decided by its own rule that the
        caller may have it (coordination/common.read_document)."""
        if self._who is None:
            return resource
        return hooks.will_see(self._who, resource, self.context(session))

    def visible_keys(self, session: Session, keys: Sequence[Key]) -> list[Key]:
        """The keys among `keys` whose current version the caller may see, in order (search
        internals: includes, chains, `_has`, conditional matches). Nothing is recorded: these
        keys are not disclosed here; what is disclosed goes through `disclose`."""
        if self._who is None or not keys:
            return list(keys)
        allowed: set[Key] = set()
        ordered = list(dict.fromkeys(keys))
        for start in range(0, len(ordered), _CHUNK):
            versions = session.current_many(ordered[start : start + _CHUNK])
            ctx = self.context(session)
            parsed = [(sv, orjson.loads(sv.body)) for sv in versions]
            ctx.prepare(r for _, r in parsed if self._who.organization not in ctx.holders(r))
            for sv, resource in parsed:
                if self.decide(session, resource).allowed:
                    allowed.add((sv.resource_type, sv.id))
        return [k for k in keys if k in allowed]

    def visible_ids(self, session: Session, resource_type: str, ids: Sequence[str]) -> list[str]:
        return [i for _, i in self.visible_keys(session, [(resource_type, i) for i in ids])]

    def check_write(
        self,
        session: Session,
        interaction: str,
        resource_type: str,
        old: StoredVersion | None,
        new: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """What may be stored for this write (the write rules of consent/writes.py; the new
        resource may come back stamped with the caller as custodian), and its audit event.
        Refused: 403, or 404 when the target is one the caller may not see at all."""
        what = f"{resource_type}/{(new or {}).get('id') or (old.id if old else '')}"
        self.start(interaction, resource_type)
        live = None if old is None or old.deleted else orjson.loads(old.body)
        shaper = WRITE_SHAPERS.get(resource_type)
        if self._who is None:
            return shaper(None, interaction, live, new) if shaper is not None else new
        if self.authority is not None:
            return _authorised(live, new)
        try:
            stored = writes.check_write(self._who, interaction, live, new, self.context(session))
            if shaper is not None:  # after the write rules: a hidden target stays 404
                stored = shaper(self._who, interaction, live, stored)
            for guard in WRITE_GUARDS:  # domain rules of the workflows (after the write rules,
                guard(interaction, resource_type, live, stored)  # so a hidden target stays 404)
        except FhirError:
            clients = frozenset(client_links(live or new or {})[0])
            self.note_deny(what, Decision(Verdict.DENY, Reason.WRITE_REFUSED, clients=clients))
            raise
        return stored

    # -- audit -------------------------------------------------------------------------------
    def note_read(self, shown: Shown, interaction: str = "read") -> None:
        if self.audit is None:
            return
        sv = shown.version
        what, patients = f"{sv.resource_type}/{sv.id}", sorted(shown.decision.clients)
        if interaction == "vread":
            self.events.append(builders.vread(self.audit, what, str(sv.version), patients))
        else:
            self.events.append(builders.read(self.audit, what, patients))

    def note_query(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        shown: Iterable[Shown],
        interaction: str = "search-type",
    ) -> None:
        """One BALP Query event for one page served: every client the page discloses."""
        if self.audit is None:
            return
        patients = sorted({c for s in shown for c in s.decision.clients})
        self.events.append(builders.query_page(self.audit, path, params, patients, interaction))

    def note_write(
        self,
        interaction: str,
        what: str,
        resource: Mapping[str, Any] | None,
        version: int | None = None,
    ) -> None:
        """BALP Create/Update/Delete for a write about to be stored (`resource`: the new
        content, or the last live one for a delete), and, when the caller names its acting
        professional, the Provenance of `version` (the version the write makes)."""
        if self._context is not None and resource is not None:
            self._context.forget(resource)  # later decisions in this request see this write
        self.written.append(Written(interaction, what, version, resource))
        if self.audit is None:
            return
        if self.audit.practitioner_role_id and version is not None and self.authority is None:
            target = f"{what}/_history/{version}"
            self.provenance.append(
                builders.provenance(self.audit, interaction, target, CUSTODIAN_EXTENSION)
            )
        patients = sorted(client_links(resource)[0]) if resource else []
        build = {
            "create": builders.create,
            "update": builders.update,
            "patch": builders.patch,
            "delete": builders.delete,
        }[interaction]
        self.events.append(build(self.audit, what, patients))

    def note_export(self, patient_id: str, what: Sequence[str]) -> None:
        """BALP PrivacyDisclosure: data leaving other than as a REST answer (a CDA export, the
        client-readable plan, a partner push). The caller must have passed every resource in
        `what` through `disclose` first; this records that it left."""
        if self.audit is not None:
            self.events.append(builders.export(self.audit, patient_id, what))

    def note_deny(self, what: str | None, decision: Decision) -> None:
        """BALP AuthZconsent deny: one per withheld resource (or refused request)."""
        if self.audit is None:
            return
        consents = [decision.consent] if decision.consent else []
        self.denials.append(
            builders.consent_decision(
                self.audit,
                decision.client or next(iter(sorted(decision.clients)), None),
                builders.Decision.DENY,
                consents,
                what=what,
                reason=decision.reason.value,
            )
        )

    def take(self) -> list[dict[str, Any]]:
        """The collected events and denials, handed over to be stored (by the audit writer).
        Provenance not stored with its write by now is dropped: its write did not happen."""
        events, self.events, self.denials = self.events + self.denials, [], []
        self.provenance, self.written = [], []
        return events

    def take_denials(self) -> list[dict[str, Any]]:
        """After a refused or failed request: its denials; the rest is dropped (what it recorded
        did not happen: a rolled-back write, an unsent answer)."""
        denials, self.events, self.denials, self.provenance = self.denials, [], [], []
        self.written = []
        return denials

    def flush_reads(self, repo: Repository) -> None:
        """Store the collected events before the response is sent (recorder.py), unless the
        audit writer will (`deferred`)."""
        if not self.deferred:
            self._store(repo, self.take(), self.sync_reads)

    def flush_denials(self, repo: Repository) -> None:
        """Store the denials of a refused or failed request (`take_denials`), unless the audit
        writer will (`deferred`)."""
        if not self.deferred:
            self._store(repo, self.take_denials(), self.sync_reads)

    @staticmethod
    def _store(repo: Repository, events: list[dict[str, Any]], sync: bool) -> None:
        if not events:
            return
        try:
            record_reads(repo, events, sync)
        except FhirError:
            raise
        except Exception:
            raise FhirError(
                Category.BUSY, "the access could not be recorded; nothing was disclosed"
            ) from None

    def _written(self, indexer: Indexer) -> list[Prepared]:
        provenance = self.provenance
        out = [prepare_event(e, indexer) for e in self.take()]
        return out + [prepare_new("Provenance", new_id(), p, indexer) for p in provenance]

    def flush_into(self, session: Session) -> None:
        """Store the collected events (and Provenance) in the caller's open writer
        transaction, after the WRITE_HOOKS have seen this request's writes."""
        self.run_hooks(session)
        session.insert_many(self._written(session.indexer))

    def run_hooks(self, session: Session) -> None:
        """The WRITE_HOOKS over this request's writes so far, in `session`."""
        self.take_hooks()(session)

    def take_hooks(self) -> Callable[[Session], None]:
        """The WRITE_HOOKS over this request's writes so far, to run later in a session (a
        plain create runs them in its own transaction: Repository.insert_new's `hook`)."""
        written, self.written = self.written, []
        hooks = list(WRITE_HOOKS.values())

        def run(session: Session) -> None:
            for hook in hooks:
                hook(session, written)

        return run

    def prepared_events(self, indexer: Indexer) -> list[Prepared]:
        """The collected events (and Provenance) made ready to insert beside a plain create
        (one commit); take the write hooks first (`take_hooks`): this forgets the writes."""
        return self._written(indexer)


def _authorised(old: Mapping[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an operation's authorised write stores: `new` with the stored custodian kept and
    the server-owned meta fields dropped (as the write rules would), nothing else checked."""
    if new is None:
        return None
    return writes.without_volatile(dict(writes.keep_custodian(old, new) if old else new))
