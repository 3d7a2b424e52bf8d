"""The HL7 v2 return path: when a referral's Task (gateway/intake/referral.py) becomes accepted,
rejected or completed — by REST, a transaction or any operation — an RRI^I12 goes back to the
referring record system's registered MLLP endpoint.

`enqueue` (a consent.enforcement WRITE_HOOK, installed by `install`) runs in the writer's own
session just before it commits: the outbox row (gateway/delivery/outbox.py, channel mllp,
stream = the record system's endpoint) commits with the Task change or not at all (a refused or
rolled-back change enqueues nothing). Row id = (Task, version): written once. What the RRI tells
is decided as the receiving organisation by the consent hooks (the Task: it is its requester;
the client's name: as it may see it, masked or left out) and recorded as a PrivacyDisclosure
AuditEvent in the same transaction. The delivery relay (gateway/delivery/relay.py) sends it over
MLLP, in order per record system, with retries, dead letters and re-sending like every push.
Nothing here logs content.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.hl7v2.builders import referral as ref_builder
from adapters.hl7v2.builders import rri
from adapters.ids import Ids
from gateway.audit import builders
from gateway.audit.context import AuditContext
from gateway.audit.recorder import prepare as prepare_event
from gateway.consent import hooks
from gateway.consent.context import ConsentContext
from gateway.consent.enforcement import PURPOSE_SYSTEM, WRITE_HOOKS, RepoLoader, Written
from gateway.consent.model import Caller as ConsentCaller
from gateway.consent.vocabulary import HETU_SYSTEM
from gateway.delivery import outbox
from gateway.fhir_api.context import Services
from gateway.security.registry import Registry
from gateway.storage.base import Session

log = logging.getLogger(__name__)
HOOK = "hl7v2-return-path"
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
            outbox.add(
                session,
                id=row_id,
                channel=outbox.MLLP,
                stream=receiver.endpoint,
                destination=receiver.endpoint,
                kind="message",
                now=created,
                error="build-failed",
            )
            continue
        if built is None:
            continue  # the receiver may not see the Task (no longer its requester)
        message, patient_id = built
        outbox.add(
            session,
            id=row_id,
            channel=outbox.MLLP,
            stream=receiver.endpoint,
            destination=receiver.endpoint,
            kind="message",
            payload=message,
            now=created,
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
