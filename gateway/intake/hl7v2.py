"""The HL7 v2 intake pipeline: one inbound message (bytes from MLLP, a file, a test) -> its ACK.
It never raises and never logs message content (only codes, the event and the peer address).

parse -> sender (MSH-3/MSH-4 against the registrations; else AR) -> event (the dispatch table,
gateway/intake/events.py, and the registration's allow-list; else AR) -> repeat of an MSH-10 this
sender has sent? (the same message: the stored ACK, nothing changes; a different message reusing
the MSH-10, told apart by its SHA-256 digest: AE naming MSH-10) -> the event's handler -> ONE
transaction of the sender (validate -> decide -> apply -> audit, as a FHIR transaction) that also
writes the `hl7v2_messages` row with the AA ACK and the digest -> AA. When the handler or the
transaction fails because a concurrent copy of the same message was applied meanwhile
(PostgreSQL: its If-Match writes fail), the copy is answered with the stored ACK, as a repeat.
A rejected message (AE/AR) changes nothing and is not logged, so it is processed again when
resent. ACK codes follow HL7 v2.5.1 2.9.2 (original mode):
AR when the message as such is refused (unreadable or unacceptable MSH, unknown sender,
unsupported event, the gateway busy or failing), AE for an error in its content.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.hl7v2 import ack as acks
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import Message, decode, parse
from adapters.ids import Ids
from gateway.audit import builders
from gateway.audit.context import AuditContext, Outcome
from gateway.audit.recorder import record_reads
from gateway.consent.enforcement import Gate
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, Services
from gateway.fhir_api.interactions.bundle_envelope import read_bundle
from gateway.fhir_api.interactions.transaction import run_transaction
from gateway.intake.events import EVENT_HANDLERS
from gateway.intake.inbound import Inbound, Writes
from gateway.security.authenticate import authorize
from gateway.security.caller import Caller
from gateway.security.registry import Organisation
from gateway.storage.base import Session

log = logging.getLogger("gateway.intake.hl7v2")
DEFAULT_BASE = "http://localhost/fhir"  # AuditEvent's server when no base_url is configured
UNKNOWN_SENDER = "hl7v2-unknown-sender"  # the AuditEvent client of a message nobody registered
# FhirError category -> our Hl7Error code (AE unless the code is answered AR, below)
_CATEGORY_CODE = {
    Category.NOT_FOUND: "not-found",
    Category.GONE: "not-found",
    Category.FORBIDDEN: "refused",
    Category.CONFLICT: "conflict",
    Category.PRECONDITION_FAILED: "conflict",
    Category.BUSY: "busy",
}
# Codes answered AR: the message as such is refused, not its content.
_REJECT = frozenset({"unknown-sender", "unsupported-event", "busy", "internal", "too-large"})
# Codes answered AE even without a segment or in the MSH: the message's content is the problem
# (a record it names; a control id it reuses, which resending with a new MSH-10 fixes).
_CONTENT = frozenset({"refused", "not-found", "conflict", "duplicate-control-id"})


class _Repeat(Exception):
    """Raised inside the transaction when the same MSH-10 of the sender was applied meanwhile:
    rolls this copy back; the stored ACK answers it (or AE when another message used it)."""

    def __init__(self, stored: tuple[str, str | None]) -> None:
        self.stored = stored


def handle(svc: Services, raw: bytes, peer: str | None = None) -> bytes:
    """The ACK (ER7, UTF-8) of one message. Never raises."""
    now = datetime.now(UTC)
    try:
        return _handle(svc, raw, peer, now).encode("utf-8")
    except Exception as exc:  # the last resort: a bare AR, nothing of the input in it
        log.error("hl7v2 intake: unexpected %s building an answer", type(exc).__name__)
        error = Hl7Error("internal", "the message could not be processed")
        return acks.reject("", "AR", error, now).encode("utf-8")


def _handle(svc: Services, raw: bytes, peer: str | None, now: datetime) -> str:
    try:
        message = parse(raw)
    except Hl7Error as error:
        _note(peer, "", error)
        return acks.reject(decode(raw), "AR" if _msh_level(error) else "AE", error, now)
    try:
        return _accept(svc, message, digest(raw), now, _address(peer))
    except Hl7Error as error:
        _note(peer, message.event, error)
        if error.code == "unknown-sender":
            _audit_unknown_sender(svc, peer, now)
        return acks.ack(message, _code(error), error, now)
    except FhirError as err:
        error = _from_fhir(err)
        _note(peer, message.event, error)
        return acks.ack(message, _code(error), error, now)
    except Exception as exc:
        log.error("hl7v2 intake: %s failed with %s", message.event[:7], type(exc).__name__)
        error = Hl7Error("internal", "the message could not be processed")
        return acks.ack(message, "AR", error, now)


def _accept(
    svc: Services, message: Message, message_digest: str, now: datetime, address: str | None
) -> str:
    sender = sender_of(svc, message, address)
    event = message.event
    handler = EVENT_HANDLERS.get(event)
    link = sender.hl7v2
    if handler is None or link is None or not link.allows(event):
        raise Hl7Error("unsupported-event", "MSH-9 is not an event accepted here", "MSH", 9)
    stored = stored_ack(svc, sender.client_id, message.control_id)
    if stored is not None:
        return _repeat_answer(stored, message_digest)
    req = request_for(svc, sender, message)
    ids = svc.ids or _missing_ids()
    answer = acks.ack(message, "AA", None, now)
    log_row = _logger(sender.client_id, message, message_digest, answer, now)
    try:
        writes = handler(Inbound(svc, req, message, sender, ids))
        _apply(svc, req, writes, log_row)
    except _Repeat as repeat:
        return _repeat_answer(repeat.stored, message_digest)
    except (FhirError, Hl7Error):
        req.gate.flush_denials(svc.repo)  # what failed did not happen; its denials did
        # A copy of this message applied meanwhile may be why this one failed (its writes
        # changed the versions this copy's If-Match named): then it is a repeat.
        stored = stored_ack(svc, sender.client_id, message.control_id, consistent=True)
        if stored is not None:
            return _repeat_answer(stored, message_digest)
        raise
    return answer


def sender_of(svc: Services, message: Message, address: str | None = None) -> Organisation:
    """The registered organisation whose record system sent `message`: MSH-3.1 is its
    application, MSH-4.1 (namespace id) or MSH-4.2 (universal id, an OID) its facility, and
    the connection's `address` one its registration's `peers` allow (None: in-process)."""
    registry = svc.security.registry if svc.security is not None else None
    msh = message.msh
    application = msh.get(3)
    for facility in (msh.get(4, component=2), msh.get(4)):
        org = registry.hl7v2_sender(application, facility) if registry and facility else None
        if org is not None and org.hl7v2 is not None and org.hl7v2.reachable_from(address):
            return org
    raise Hl7Error("unknown-sender", "MSH-3/MSH-4 name no registered sender", "MSH", 4)


def _address(peer: str | None) -> str | None:
    """The IP address of a peer given as "host:port" (IPv6 as "::1:port" or "[::1]:port")."""
    if peer is None:
        return None
    return peer.rsplit(":", 1)[0] if ":" in peer else peer


def request_for(svc: Services, sender: Organisation, message: Message) -> FhirRequest:
    """An in-process request of the sending organisation: its registered scopes, its own gate
    (decisions and AuditEvents under its name, the registration's purpose of use), the request
    id derived from sender and MSH-10 (so the audit trail of a message can be found again)."""
    caller = Caller(sender.organization, sender.client_id, sender.scopes)
    base = svc.settings.base_url or DEFAULT_BASE
    request_id = Ids.derived("hl7v2", sender.client_id, message.control_id).replace("-", "")
    purpose = sender.hl7v2.purpose if sender.hl7v2 is not None else None
    gate = Gate.for_caller(caller, base, request_id, purpose)
    return FhirRequest(method="POST", base=base, caller=caller, gate=gate, request_id=request_id)


Stored = tuple[str, str | None]  # (the ACK given, the message's digest; None: not recorded)


def stored_ack(
    svc: Services, sender: str, control_id: str, consistent: bool = False
) -> Stored | None:
    """The ACK already given to this sender's message `control_id` and that message's digest,
    if it was applied."""
    with svc.repo.reader(consistent=consistent) as session:
        return _stored(session, sender, control_id)


def _stored(session: Session, sender: str, control_id: str) -> Stored | None:
    rows = session.query(
        "SELECT ack, digest FROM hl7v2_messages WHERE sender = ? AND control_id = ?",
        (sender, control_id),
    )
    return (str(rows[0][0]), None if rows[0][1] is None else str(rows[0][1])) if rows else None


def digest(raw: bytes) -> str:
    """SHA-256 (hex) of a message as parse() reads it: leading blanks dropped, segment ends
    (CR, LF, CRLF) normalised to one CR, empty lines and trailing segment ends ignored, so a
    copy framed differently is the same message. MSH-7 (when the message was sent) is left out:
    a sender that stamps a resend anew is resending the same message."""
    text = decode(raw).lstrip("\ufeff \t\r\n").replace("\r\n", "\r").replace("\n", "\r")
    lines = [line for line in text.split("\r") if line]
    if lines and lines[0].startswith("MSH") and len(lines[0]) > 3:
        fields = lines[0].split(lines[0][3])  # MSH-n is fields[n - 1]
        if len(fields) > 6:
            fields[6] = ""
            lines[0] = lines[0][3].join(fields)
    return hashlib.sha256("\r".join(lines).encode("utf-8")).hexdigest()


def _repeat_answer(stored: Stored, message_digest: str) -> str:
    """The stored ACK for a repeat of the same message; AE naming MSH-10 when a different
    message reuses the control id (a digest logged before migration 4 is unknown: the same)."""
    ack, logged = stored
    if logged is not None and logged != message_digest:
        raise Hl7Error(
            "duplicate-control-id", "MSH-10 was already used by another message", "MSH", 10
        )
    return ack


def _logger(
    sender: str, message: Message, message_digest: str, answer: str, now: datetime
) -> Callable[[Session], None]:
    """The message-log write, run in the transaction after the entries. A copy of the same
    message applied meanwhile owns the row: the insert does nothing (PostgreSQL waits for that
    transaction first), and this one rolls back (_Repeat) to answer with the stored ACK."""
    control_id = message.control_id

    def write(session: Session) -> None:
        inserted = session.query(
            "INSERT INTO hl7v2_messages (sender, control_id, event, ack, received_us, digest) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sender, control_id) DO NOTHING "
            "RETURNING control_id",
            (
                sender,
                control_id,
                message.event,
                answer,
                int(now.timestamp() * 1_000_000),
                message_digest,
            ),
        )
        if not inserted:
            raise _Repeat(_stored(session, sender, control_id) or (answer, message_digest))

    return write


def _apply(
    svc: Services, req: FhirRequest, writes: Writes, log_row: Callable[[Session], None]
) -> None:
    """The handler's entries, `also` and the log row as ONE transaction of the sender: scopes
    checked as for a REST transaction, then validate -> decide -> apply -> audit."""
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": writes.entries}
    assert req.caller is not None
    authorize(req.caller, "", FhirRequest(method="POST", base=req.base, resource=bundle))
    req.gate.start("transaction", None)
    _, parsed = read_bundle(svc, bundle, req.base)

    def before_commit(session: Session) -> None:
        if writes.also is not None:
            writes.also(session)
        log_row(session)

    req.gate.authority = writes.authority
    try:
        run_transaction(svc, req.base, parsed, req.gate, before_commit=before_commit)
    finally:
        req.gate.authority = None


def _from_fhir(err: FhirError) -> Hl7Error:
    """A gateway refusal as an Hl7Error: its category and first issue text (our texts name
    paths and rules, never values of a record)."""
    code = _CATEGORY_CODE.get(err.category, "refused")
    text = err.issues[0].diagnostics if err.issues else str(err)
    return Hl7Error(code, f"{err.category.value}: {text}"[:200])


def _code(error: Hl7Error) -> str:
    return "AR" if error.code in _REJECT or _msh_level(error) else "AE"


def _msh_level(error: Hl7Error) -> bool:
    """An error in the MSH or in reading the message at all (v2.5.1 2.9.2.1: AR)."""
    return error.segment in (None, "MSH") and error.code not in _CONTENT


def _audit_unknown_sender(svc: Services, peer: str | None, now: datetime) -> None:
    """A message from no registered sender, recorded as a refused access (BALP AuthZ deny) of
    an unknown client: the connection's address, a fixed reason, nothing of the message (its
    MSH-3/MSH-4 are the sender's claim, not an identity). A failure to record is logged; the
    message is refused either way."""
    ctx = AuditContext(
        client_id=UNKNOWN_SENDER,
        server=svc.settings.base_url or DEFAULT_BASE,
        address=(peer or "").rsplit(":", 1)[0] or None,
        when=now,
        outcome=Outcome.SERIOUS_FAILURE,
    )
    event = builders.consent_decision(ctx, None, builders.Decision.DENY, reason="unknown-sender")
    try:
        record_reads(svc.repo, [event])
    except Exception as exc:
        log.warning("hl7v2 intake: the refusal could not be recorded (%s)", type(exc).__name__)


def _note(peer: str | None, event: str, error: Hl7Error) -> None:
    """One log line per refused message: codes and the peer only (never content)."""
    log.info("hl7v2 %s from %s refused: %s", event[:7] or "message", peer or "-", error.code)


def _missing_ids() -> Ids:
    raise Hl7Error("internal", "the gateway has no pseudonym key")
