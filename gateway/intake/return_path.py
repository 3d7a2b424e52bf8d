"""The HL7 v2 return path: when a referral's Task (gateway/intake/referral.py) becomes accepted,
rejected or completed — by REST, a transaction or any operation — an RRI^I12 goes back to the
referring record system's registered MLLP endpoint.

Two halves, joined by the `hl7v2_outbox` table (migration 3):
- `enqueue` (a consent.enforcement WRITE_HOOK, installed by `install`) runs in the writer's own
  session just before it commits: the outbox row commits with the Task change or not at all (a
  refused or rolled-back change enqueues nothing). Row id = (Task, version): written once. What
  the RRI tells is decided as the receiving organisation by the consent hooks (the Task: it is
  its requester; the client's name: as it may see it, masked or left out) and recorded as a
  PrivacyDisclosure AuditEvent in the same transaction.
- `Relay` (a daemon thread, started with the app) claims due rows, validates each message with
  hl7apy, sends it over MLLP, marks it sent on AA/CA and otherwise retries with exponential
  backoff. Per destination the oldest unsent row goes first and alone, so a record system sees
  accepted before completed (a parked row does not hold the others up). PostgreSQL: claims use
  FOR UPDATE SKIP LOCKED, so several gateway processes never send one row twice at once;
  SQLite: its single writer serialises claims.

Deliberately simple (issue 6 generalises the outbox): no dead-letter queue (a row retries every
`max_backoff` seconds until it is sent; an invalid message is parked with last_error), the
endpoint is the one registered when the change was made, and nothing here logs content.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.hl7v2.builders import referral as ref_builder
from adapters.hl7v2.builders import rri
from adapters.hl7v2.client import DeliveryError, Reply, send
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.parse import validate_outbound
from adapters.ids import Ids
from gateway.audit import builders
from gateway.audit.context import AuditContext
from gateway.audit.recorder import prepare as prepare_event
from gateway.consent import hooks
from gateway.consent.context import ConsentContext
from gateway.consent.enforcement import PURPOSE_SYSTEM, WRITE_HOOKS, RepoLoader, Written
from gateway.consent.model import Caller as ConsentCaller
from gateway.consent.vocabulary import HETU_SYSTEM
from gateway.fhir_api.context import Services
from gateway.security.registry import Registry
from gateway.storage.base import Session

log = logging.getLogger(__name__)
HOOK = "hl7v2-return-path"
NEVER = 2**62  # next_us of a parked row (invalid, refused with AE, or given up)
GIVE_UP_US = 72 * 3600 * 1_000_000  # unreachable or refusing (AR) for 72 hours: parked
DEFAULT_BASE = "http://localhost/fhir"  # the AuditEvent's server without a configured base_url


def install(svc: Services) -> None:
    """Install the outbox hook for this gateway's registry (replaces an earlier one: one gateway
    per process; tests that build several apps install the same registrations)."""
    registry = svc.security.registry if svc.security is not None else None
    server = svc.settings.base_url or DEFAULT_BASE
    WRITE_HOOKS[HOOK] = lambda session, written: enqueue(registry, server, session, written)


def now_us() -> int:
    return time.time_ns() // 1000


# -- enqueue: in the Task change's own transaction ------------------------------------------------
@dataclass(frozen=True)
class _Receiver:
    """The referring organisation as the receiver of an RRI: its registration's HL7 v2 link."""

    organization: str
    client_id: str
    application: str
    facility: str
    endpoint: str
    purpose: str | None


def enqueue(
    registry: Registry | None, server: str, session: Session, written: Sequence[Written]
) -> None:
    """One outbox row per referral Task this transaction moved into a reported status, disclosed
    to the referring organisation as the consent rules let it see (decided and audited here, as
    a PrivacyDisclosure, in the same transaction)."""
    for write in written:
        task = write.resource
        if write.interaction == "delete" or not write.what.startswith("Task/") or task is None:
            continue
        status = str(task.get("status"))
        source = _source(task)
        if source is None or not rri.reported(status) or _was(session, write, status):
            continue
        receiver = _receiver(registry, source[0])
        if receiver is None:
            continue  # the sender registered no endpoint: it gets no answers (README)
        if not _referred(session, receiver, task, source):
            continue  # identifiers copied onto a Task the intake never made: no answer owed
        version = str(write.version or 0)
        row_id, created = Ids.derived("rri", write.what, version), now_us()
        try:
            built = _message(session, task, status, receiver, source, write.what, version)
        except Exception as exc:  # a bug here must not refuse the partner's Task change, nor
            # lose the answer silently: a parked row without a message says it is owed
            log.error("hl7v2 return path: no RRI^I12 built (%s)", type(exc).__name__)
            session.execute(
                "INSERT INTO hl7v2_outbox (id, destination, message, created_us, attempts, "
                "next_us, last_error) VALUES (?, ?, '', ?, 0, ?, 'build-failed') "
                "ON CONFLICT (id) DO NOTHING",
                (row_id, receiver.endpoint, created, NEVER),
            )
            continue
        if built is None:
            continue  # the receiver may not see the Task (no longer its requester)
        message, patient_id = built
        session.execute(
            "INSERT INTO hl7v2_outbox (id, destination, message, created_us, attempts, next_us) "
            "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING",
            (row_id, receiver.endpoint, message, created, created),
        )
        disclosed = [f"{write.what}/_history/{version}"]
        session.insert_many(
            [prepare_event(_audit(receiver, server, patient_id, disclosed), session.indexer)]
        )


def _message(
    session: Session,
    task: Mapping[str, Any],
    status: str,
    receiver: _Receiver,
    source: tuple[str, str, str],
    what: str,
    version: str,
) -> tuple[str, str] | None:
    """(the RRI, the client's Patient id), decided as the receiver: None when it may not see
    the Task; the client's name only as it may see it (none when hidden, masked when protected)."""
    purpose = (PURPOSE_SYSTEM, receiver.purpose) if receiver.purpose else None
    who = ConsentCaller(receiver.organization, None, purpose)
    context = ConsentContext(RepoLoader(session), datetime.now(UTC))
    if not hooks.can_see(who, task, context).allowed:
        return None
    reference = _ref(task.get("for")) or ""
    patient = _read(session, reference)
    if patient and hooks.can_see(who, patient, context).allowed:
        shown = hooks.will_see(who, patient, context)  # a protected client's name masked
    else:  # only the HETU its own referral named (PID-3 is required), no name
        shown = {"identifier": patient.get("identifier")} if patient else {}
    _, referral_id, control_id = source
    receiving = (receiver.application, receiver.facility)
    answer = _answer(session, task, shown, status, receiving, referral_id, control_id)
    message = rri.build(answer, rri.control_id(what, version), datetime.now(UTC))
    return message, reference.split("/", 1)[-1]


def _audit(receiver: _Receiver, server: str, patient_id: str, what: list[str]) -> dict[str, Any]:
    """BALP PrivacyDisclosure of an RRI: the referral's Task leaving to the record system."""
    context = AuditContext(
        client_id=receiver.client_id,
        server=server,
        organization_id=receiver.organization,
        purpose_of_use=(receiver.purpose,) if receiver.purpose else (),
    )
    return builders.export(context, patient_id, what)


def _source(task: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(sender Organization id, RF1-6, MSH-10) of a Task made from a REF^I12, else None."""
    prefixes = {k: ref_builder.identifier_system(k, "") for k in ("referral", "message")}
    found: dict[str, tuple[str, str]] = {}
    for identifier in task.get("identifier") or []:
        if not isinstance(identifier, Mapping):
            continue
        system, value = str(identifier.get("system", "")), identifier.get("value")
        for kind, prefix in prefixes.items():
            if system.startswith(prefix) and isinstance(value, str) and value:
                found[kind] = (system[len(prefix) :], value)
    if set(found) != {"referral", "message"} or found["referral"][0] != found["message"][0]:
        return None
    return found["referral"][0], found["referral"][1], found["message"][1]


def _referred(
    session: Session, receiver: _Receiver, task: Mapping[str, Any], source: tuple[str, str, str]
) -> bool:
    """Whether the Task is the one a REF^I12 of the receiver made: its requester is the
    receiver's organisation and the intake applied that message (its log row). Anybody who may
    write a Task could copy the referral identifiers onto it; only the intake writes the log."""
    if _ref(task.get("requester")) != f"Organization/{receiver.organization}":
        return False
    rows = session.query(
        "SELECT event FROM hl7v2_messages WHERE sender = ? AND control_id = ?",
        (receiver.client_id, source[2]),
    )
    return bool(rows) and str(rows[0][0]).startswith("REF^I12")


def _was(session: Session, write: Written, status: str) -> bool:
    """Whether the version before this write already had `status` (no change to report)."""
    if not write.version or write.version < 2:
        return False
    _, id = write.what.split("/", 1)
    before = session.version("Task", id, write.version - 1)
    if before is None or before.deleted:
        return False
    return bool(orjson.loads(before.body).get("status") == status)


def _receiver(registry: Registry | None, sender: str) -> _Receiver | None:
    """The sender's registered record system, when it registered where answers go."""
    org = registry.find(sender) if registry is not None else None
    link = getattr(org, "hl7v2", None)
    if org is None or link is None or not link.endpoint:
        return None
    purpose = getattr(link, "purpose", None)
    return _Receiver(
        org.organization, org.client_id, link.application, link.facility, link.endpoint, purpose
    )


def _answer(
    session: Session,
    task: Mapping[str, Any],
    patient: Mapping[str, Any],
    status: str,
    receiver: tuple[str, str],
    referral_id: str,
    control_id: str,
) -> rri.Answer:
    """What the RRI says, read from the stored records (the session sees this transaction) and
    the client's Patient as the receiver may see it."""
    request = _read(session, _ref(task.get("focus")))
    period = request.get("occurrencePeriod") or {}
    name = next(iter(patient.get("name") or []), {})
    return rri.Answer(
        status=status,
        control_id=control_id,
        referral_id=referral_id,
        receiver=receiver,
        referring=_party(session, _ref(task.get("requester"))),
        referred_to=_party(session, _ref(task.get("owner"))),
        hetu=next(
            (
                str(i.get("value"))
                for i in patient.get("identifier") or []
                if i.get("system") == HETU_SYSTEM
            ),
            "",
        ),
        family=str(name.get("family", "")),
        given=" ".join(name.get("given") or []),
        priority=str(task.get("priority", "")),
        start=str(period.get("start", "")),
        due=str((task.get("restriction") or {}).get("period", {}).get("end", "")),
        note=_note(task, status),
    )


def _note(task: Mapping[str, Any], status: str) -> str:
    """NTE-3: a rejection's reason, a completion's last note (RRI_I12.json "notes")."""
    element = rri.mapping()["notes"].get(status)
    if element == "statusReason":
        reason = task.get("statusReason") or {}
        codings = reason.get("coding") or [{}]
        return str(reason.get("text") or codings[0].get("display") or "")
    if element == "note":
        notes = task.get("note") or []
        return str(notes[-1].get("text", "")) if notes else ""
    return ""


def _party(session: Session, reference: str | None) -> rri.Party:
    """The organisation a Task party is (an Organization, or a PractitionerRole's)."""
    resource = _read(session, reference)
    if resource.get("resourceType") == "PractitionerRole":
        resource = _read(session, _ref(resource.get("organization")))
    system = rri.mapping()["organization-identifier-system"]
    oid = next(
        (
            str(i.get("value"))
            for i in resource.get("identifier") or []
            if i.get("system") == system
        ),
        str(resource.get("id", "")),
    )
    return rri.Party(str(resource.get("name", "")), oid)


def _ref(value: Any) -> str | None:
    return value.get("reference") if isinstance(value, Mapping) else None


def _read(session: Session, reference: str | None) -> dict[str, Any]:
    if not reference or reference.count("/") != 1:
        return {}
    resource_type, id = reference.split("/")
    sv = session.current(resource_type, id)
    return {} if sv is None or sv.deleted else orjson.loads(sv.body)


# -- the relay ----------------------------------------------------------------------------------
Sender = Callable[[str, str, float], Reply]
_ANY_DUE = "SELECT 1 FROM hl7v2_outbox WHERE sent_us IS NULL AND next_us <= ? LIMIT 1"


class Relay:
    """Sends due outbox rows; `run_once` is one round (tests call it), `start` runs rounds in a
    daemon thread every `interval` seconds until `stop`."""

    def __init__(
        self,
        svc: Services,
        *,
        interval: float = 1.0,
        timeout: float = 10.0,
        backoff: float = 2.0,
        max_backoff: float = 600.0,
        batch: int = 50,
        sender: Sender = send,
    ) -> None:
        self.svc = svc
        self.interval, self.timeout, self.batch = interval, timeout, batch
        self.backoff, self.max_backoff = backoff, max_backoff
        self.sender = sender
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="hl7v2-relay", daemon=True)
            self._thread.start()

    def stop(self, wait: float | None = None) -> None:
        """Stop after the send in flight (waits longer than one send may take, so a delivered
        message is recorded as sent rather than sent again by the next start)."""
        wait = self.timeout + 5.0 if wait is None else wait
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() > 0
            except Exception as exc:  # the database away: try again next round, never die
                log.warning("hl7v2 relay round failed (%s)", type(exc).__name__)
                busy = False
            if not busy:
                self._stop.wait(self.interval)

    def run_once(self) -> int:
        """Claim the due rows (the oldest unsent per destination), send them, record how each
        went. Returns how many were tried."""
        rows = self._claim(now_us())
        for row_id, destination, message, attempts, created in rows:
            if self._stop.is_set():
                break  # the rest stay leased until their lease ends, then due again
            self._deliver(row_id, destination, message, attempts, created)
        return len(rows)

    def _claim(self, now: int) -> list[tuple[str, str, str, int]]:
        """Take the rows to send in one short transaction: each gets attempts + 1 and a lease
        (next_us past the send's timeout), so no other relay takes it meanwhile, and a relay
        that dies mid-send leaves it due again once the lease ends."""
        # Rows of a round are sent one after another: the n-th row's lease covers the n sends
        # before it as well, so no relay takes it again while this one may still send it.
        lease = int((self.timeout * 2 + 1) * 1_000_000)
        with self.svc.repo.reader(consistent=False) as session:  # idle rounds take no write lock
            if not session.query(_ANY_DUE, (now,)):
                return []
        with self.svc.repo.writer() as session:
            lock = " FOR UPDATE SKIP LOCKED" if session.dialect == "postgres" else ""
            rows = session.query(
                "SELECT id, destination, message, attempts, created_us FROM hl7v2_outbox o "
                "WHERE o.sent_us IS NULL AND o.next_us <= ? AND NOT EXISTS ("
                "SELECT 1 FROM hl7v2_outbox p WHERE p.destination = o.destination "
                "AND p.sent_us IS NULL AND p.next_us < ? AND (p.created_us < o.created_us "
                "OR (p.created_us = o.created_us AND p.id < o.id))) "
                f"ORDER BY o.created_us, o.id LIMIT ?{lock}",
                (now, NEVER, self.batch),
            )
            for position, row in enumerate(rows, 1):
                session.execute(
                    "UPDATE hl7v2_outbox SET attempts = attempts + 1, next_us = ? WHERE id = ?",
                    (now + lease * position, row[0]),
                )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3]) + 1, int(r[4])) for r in rows]

    def _deliver(
        self, row_id: str, destination: str, message: str, attempts: int, created: int
    ) -> None:
        problem = _invalid(message)
        if problem is not None:
            self._park(row_id, problem)
            return
        try:
            reply = self.sender(destination, message, self.timeout)
            error = None if reply.accepted else f"nack-{reply.code}"
        except DeliveryError as exc:
            error = exc.code
        if error is None:
            self._record(row_id, now_us(), None, None)
            return
        if error in ("nack-AE", "nack-CE"):
            # the receiver read it and refused its content: sending it again cannot help, and
            # retrying would hold up every later answer to that record system (in order)
            self._park(row_id, error)
            return
        if now_us() - created > GIVE_UP_US:
            self._park(row_id, f"gave-up-{error}")
            return
        delay = min(self.max_backoff, self.backoff * 2 ** (attempts - 1))
        self._record(row_id, None, error, now_us() + int(delay * 1_000_000))

    def _park(self, row_id: str, problem: str) -> None:
        """Out of the sending order for good, its problem kept (`last_error`) to be looked at."""
        self._record(row_id, None, problem, NEVER)
        log.warning("hl7v2 outbox row parked: %s", problem)

    def _record(
        self, row_id: str, sent: int | None, error: str | None, next_us: int | None
    ) -> None:
        with self.svc.repo.writer() as session:
            if sent is not None:
                session.execute(
                    "UPDATE hl7v2_outbox SET sent_us = ?, last_error = NULL WHERE id = ?",
                    (sent, row_id),
                )
            else:
                session.execute(
                    "UPDATE hl7v2_outbox SET last_error = ?, next_us = ? WHERE id = ?",
                    (error, next_us, row_id),
                )


def _invalid(message: str) -> str | None:
    """ "invalid-outbound" when hl7apy finds an error (not a warning) in the message."""
    try:
        problems = validate_outbound(message)
    except Hl7Error as exc:
        return exc.code
    return "invalid-outbound" if any(p.startswith("error:") for p in problems) else None
