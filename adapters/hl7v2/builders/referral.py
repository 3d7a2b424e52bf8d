"""REF^I12 (HL7 v2.5.1 ch. 11.3.1, patient referral) -> the parts of a network responsibility:
`read` takes what the referral says (mappings/hl7v2/REF_I12.json names every field), `resources`
builds the ServiceRequest (responsibility-request) and Task (network-responsibility) once the
gateway has resolved the client, the plan and the organisations. Pure: no storage, no logging,
and no error text quotes a value (a referral holds personal data).

Ids come from `Ids.derived(sender, RF1-6, type)`: the same referral from the same sender always
gives the same resources, so importing it twice changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from adapters.hl7v2.builders import translate
from adapters.hl7v2.builders.patient import hetu_of
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import Message, Segment
from adapters.ids import Ids
from mappings import load

CANONICAL = "https://fhir-plan-gateway.example"
SERVICE_KIND = f"{CANONICAL}/CodeSystem/service-kind"
REQUEST_PROFILE = f"{CANONICAL}/StructureDefinition/responsibility-request"
TASK_PROFILE = f"{CANONICAL}/StructureDefinition/network-responsibility"
SENT = {"system": f"{CANONICAL}/CodeSystem/business-status", "code": "lahetetty"}
FULFILL = {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
_PATH = re.compile(r"([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?")
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})(?:\d{2,6}(?:\.\d{1,4})?)?(?:[+-]\d{4})?")


def mapping() -> dict[str, Any]:
    """mappings/hl7v2/REF_I12.json."""
    return load("hl7v2/REF_I12.json")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Referral:
    """What one REF^I12 says, codes already translated (ConceptMaps of mappings/hl7v2/codes)."""

    control_id: str  # MSH-10, answered in MSA-2 of the RRI^I12
    referral_id: str  # RF1-6
    service: dict[str, str]  # service-kind Coding (RF1-3)
    type_text: str  # RF1-3.2, as the sender wrote it
    priority: str  # FHIR request priority (RF1-2)
    start: str  # FHIR date: RF1-7, else MSH-7
    due: str  # FHIR date: RF1-8, else start + the mapping's due-days
    hetu: str  # PID-3 (assigning authority 1.2.246.21)
    referred_to: str  # PRD-7.1 of the PRD with role RT: an organisation OID or id
    notes: tuple[str, ...]  # NTE-3
    reasons: tuple[dict[str, Any], ...]  # DG1-3 as CodeableConcepts


def read(message: Message) -> Referral:
    """The referral of a REF^I12. Raises Hl7Error naming the segment and field that is missing
    or malformed (never its value)."""
    spec = mapping()
    fields = spec["fields"]
    for name in spec["required"]:
        if not _value(message, fields[name]):
            raise _error(message, "missing-field", fields[name], "is empty")
    kind = _value(message, fields["referral-type"])
    code = translate(spec["code-maps"]["referral-type"], kind)
    if code is None:
        raise _error(message, "invalid-value", fields["referral-type"], "is no known referral type")
    start = _date(message, fields["effective-date"]) or _msh_date(message)
    due = _date(message, fields["expiration-date"])
    if due is None:
        due = (date.fromisoformat(start) + timedelta(days=spec["defaults"]["due-days"])).isoformat()
    pid = _segment(message, "PID", "PID-3")
    try:
        hetu = hetu_of(pid)
    except Hl7Error as error:
        error.sequence = _position(message, pid)
        raise
    return Referral(
        control_id=message.control_id,
        referral_id=_value(message, fields["referral-id"]),
        service={"system": SERVICE_KIND, "code": code},
        type_text=_value(message, fields["referral-type-text"]),
        priority=translate(spec["code-maps"]["priority"], _value(message, fields["priority"]))
        or "routine",
        start=start,
        due=due,
        hetu=hetu,
        referred_to=_provider(message, spec, "referred-to"),
        notes=tuple(t for t in _all(message, fields["note"]) if t.strip()),
        reasons=_reasons(message, spec),
    )


def ids_of(ids: Ids, sender: str, referral_id: str) -> tuple[str, str]:
    """The (ServiceRequest id, Task id) of a sender's referral."""
    return (
        ids.derived("hl7v2-referral", sender, referral_id, "ServiceRequest"),
        ids.derived("hl7v2-referral", sender, referral_id, "Task"),
    )


def identifier_system(kind: str, sender: str) -> str:
    """The identifier system of a sender's referrals ("referral") or messages ("message")."""
    return str(mapping()["identifier-systems"][kind]).replace("{sender}", sender)


def resources(
    referral: Referral,
    *,
    ids: Ids,
    sender: str,
    patient: str,
    plan: str,
    owner: str,
    now: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ServiceRequest and Task of `referral` from organisation `sender` (an Organization
    id, the requester) to `owner` ("Organization/<id>"), for `patient` ("Patient/<id>") in
    `plan` ("CarePlan/<id>"); `now` is the FHIR instant of the import."""
    sr_id, task_id = ids_of(ids, sender, referral.referral_id)
    referral_identifier = {
        "system": identifier_system("referral", sender),
        "value": referral.referral_id,
    }
    requester = {"reference": f"Organization/{sender}"}
    based_on = [{"reference": plan}]
    code: dict[str, Any] = {"coding": [referral.service]}
    if referral.type_text:
        code["text"] = referral.type_text
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": sr_id,
        "meta": {"profile": [REQUEST_PROFILE]},
        "identifier": [referral_identifier],
        "basedOn": based_on,
        "status": "active",
        "intent": "order",
        "priority": referral.priority,
        "code": code,
        "subject": {"reference": patient},
        "occurrencePeriod": {"start": referral.start, "end": referral.due},
        "authoredOn": now,
        "requester": requester,
        "performer": [{"reference": owner}],
    }
    if referral.reasons:
        request["reasonCode"] = list(referral.reasons)
    if referral.notes:
        request["note"] = [{"text": text} for text in referral.notes]
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": task_id,
        "meta": {"profile": [TASK_PROFILE]},
        "identifier": [
            referral_identifier,
            {"system": identifier_system("message", sender), "value": referral.control_id},
        ],
        "basedOn": based_on,
        "status": "requested",
        "businessStatus": {"coding": [SENT]},
        "intent": "order",
        "priority": referral.priority,
        "code": {"coding": [FULFILL]},
        "focus": {"reference": f"ServiceRequest/{sr_id}"},
        "for": {"reference": patient},
        "authoredOn": now,
        "lastModified": now,
        "requester": requester,
        "owner": {"reference": owner},
        "restriction": {"period": {"end": referral.due}},
    }
    if referral.type_text:
        task["description"] = referral.type_text
    return request, task


# -- reading fields ------------------------------------------------------------------------------
def _split(path: str) -> tuple[str, int, int]:
    found = _PATH.fullmatch(path)
    if found is None:
        raise ValueError(f"bad field path {path!r} in REF_I12.json")
    return found.group(1), int(found.group(2)), int(found.group(3) or 1)


def _value(message: Message, path: str) -> str:
    """The first value at `path` (first segment, first repetition), "" when absent."""
    name, field, component = _split(path)
    return message.get(name, field, 0, component).strip()


def _all(message: Message, path: str) -> list[str]:
    """The value at `path` of every segment of that name and every repetition."""
    name, field, component = _split(path)
    return [
        seg.get(field, rep, component)
        for seg in message.segments(name)
        for rep in range(len(seg.repetitions(field)))
    ]


def _date(message: Message, path: str) -> str | None:
    """A DT/DTM field as a FHIR date (the time dropped); None when empty."""
    text = _value(message, path)
    if not text:
        return None
    parsed = _as_date(text)
    if parsed is None:
        raise _error(message, "invalid-value", path, "is not a date")
    return parsed


def _msh_date(message: Message) -> str:
    parsed = _as_date(message.msh.get(7))
    if parsed is None:
        raise Hl7Error("invalid-value", "MSH-7 is not a date", "MSH", 7, sequence=1)
    return parsed


def _as_date(text: str) -> str | None:
    """YYYYMMDD[HHMM[SS[.S]]][+ZZZZ] -> YYYY-MM-DD; None when it is no calendar date."""
    found = _DATE.fullmatch(text)
    if found is None:
        return None
    try:
        return date(*(int(g) for g in found.groups())).isoformat()
    except ValueError:
        return None


def _provider(message: Message, spec: dict[str, Any], role: str) -> str:
    """PRD-7.1 of the first PRD whose PRD-1 is the mapping's code for `role`."""
    fields, code = spec["fields"], spec["provider-roles"][role]
    role_name, role_field, role_component = _split(fields["provider-role"])
    _, id_field, id_component = _split(fields["provider-identifier"])
    for seg in message.segments(role_name):
        if seg.get(role_field, 0, role_component) == code:
            value = seg.get(id_field, 0, id_component).strip()
            if not value:
                raise Hl7Error(
                    "missing-field",
                    f"PRD-{id_field} of the {role} provider ({code}) is empty",
                    role_name,
                    id_field,
                    sequence=_position(message, seg),
                )
            return value
    raise Hl7Error(
        "missing-segment", f"no PRD with PRD-1 {code} ({role} provider)", role_name, role_field
    )


def _reasons(message: Message, spec: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    fields = spec["fields"]
    out = []
    for seg in message.segments(_split(fields["diagnosis-code"])[0]):
        code, text, system = (
            seg.get(_split(fields[n])[1], 0, _split(fields[n])[2]).strip()
            for n in ("diagnosis-code", "diagnosis-text", "diagnosis-system")
        )
        uri = translate(spec["code-maps"]["diagnosis-system"], system)
        concept: dict[str, Any] = {}
        if code and uri:
            concept["coding"] = [
                {"system": uri, "code": code, **({"display": text} if text else {})}
            ]
        if text:
            concept["text"] = text
        if concept:
            out.append(concept)
    return tuple(out)


def _segment(message: Message, name: str, what: str) -> Segment:
    seg = message.segment(name)
    if seg is None:
        raise Hl7Error("missing-segment", f"the message has no {name} segment ({what})", name)
    return seg


def _position(message: Message, segment: Segment) -> int:
    return next(i for i, s in enumerate(message.segments(), 1) if s is segment)


def _error(message: Message, code: str, path: str, problem: str) -> Hl7Error:
    name, field, component = _split(path)
    seg = message.segment(name)
    where = f"{name}-{field}" + (f".{component}" if component > 1 else "")
    return Hl7Error(
        code,
        f"{where} {problem}",
        name,
        field,
        sequence=_position(message, seg) if seg is not None else None,
    )
