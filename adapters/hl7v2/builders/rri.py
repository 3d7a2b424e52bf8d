"""RRI^I12 (HL7 v2.5.1 ch. 11.3.2, return referral information): the answer to a referring record
system when the referral's Task is accepted, rejected or completed. Pure: `build` writes ER7 text
from an `Answer` the gateway has gathered; validation with hl7apy is parse.validate_outbound's
(the relay runs it before sending). Every value goes through escape(); nothing here logs.

What leaves (mappings/hl7v2/RRI_I12.json): MSA-2 = the REF's MSH-10, RF1-1 = the status
(ConceptMap task-status-to-v2-0283), RF1-6 = the referral id, PRD RP/RT = the organisations by
their SOTE OIDs, PID-3 = the HETU and PID-5 = the client's name as the referral gave it (both
required by the standard; the record system already holds them), NTE = the partner's note.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.hl7v2.builders import translate
from adapters.hl7v2.escape import Delimiters, escape
from mappings import load

OUT = Delimiters()
_OID = re.compile(r"[0-2](\.\d+)+")


def mapping() -> dict[str, Any]:
    """mappings/hl7v2/RRI_I12.json."""
    return load("hl7v2/RRI_I12.json")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Party:
    """An organisation in a PRD segment: its name and identifier (a SOTE OID, else its id)."""

    name: str
    identifier: str


@dataclass(frozen=True)
class Answer:
    """Everything one RRI^I12 says."""

    status: str  # the Task's FHIR status: accepted, rejected or completed
    control_id: str  # MSH-10 of the REF^I12 answered (MSA-2)
    referral_id: str  # RF1-6
    receiver: tuple[str, str]  # MSH-5, MSH-6: the record system's application and facility
    referring: Party  # PRD RP (the sender, Task.requester)
    referred_to: Party  # PRD RT (Task.owner): also MSH-4
    hetu: str  # PID-3
    family: str = ""  # PID-5.1
    given: str = ""  # PID-5.2
    priority: str = ""  # FHIR request priority -> RF1-2
    start: str = ""  # FHIR date -> RF1-7
    due: str = ""  # FHIR date -> RF1-8
    note: str = ""  # NTE-3 (a rejection's reason, a completion's last note)


def reported(status: str) -> bool:
    """Whether a Task status is one the return path answers with an RRI^I12."""
    return status in mapping()["reported-statuses"]


def control_id(*parts: str) -> str:
    """MSH-10 of an RRI: unique per (Task, version), reproducible, at most 20 characters."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def build(answer: Answer, message_id: str, now: datetime) -> str:
    """The RRI^I12 as ER7 text (segments ended by CR). Raises ValueError for a status the
    return path does not report (a caller checks `reported` first)."""
    spec = mapping()
    status = translate(spec["code-maps"]["status"], answer.status)
    if status is None or not reported(answer.status):
        raise ValueError("no RF1-1 code for this Task status")
    segments = [
        _msh(spec, answer, message_id, now),
        f"MSA|AA|{_leaf(answer.control_id)}",
        _rf1(spec, answer, status, now),
        _prd("RP", answer.referring),
        _prd("RT", answer.referred_to),
        _pid(spec, answer),
    ]
    if answer.note:
        segments.append(f"NTE|1||{_leaf(answer.note)}")
    return "\r".join(segments) + "\r"


def _msh(spec: dict[str, Any], answer: Answer, message_id: str, now: datetime) -> str:
    application, facility = answer.receiver
    fields = [
        "MSH",
        "^~\\&",
        _leaf(spec["sending-application"]),
        hd(answer.referred_to.identifier),
        _leaf(application),
        hd(facility),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        "RRI^I12^RRI_I12",
        _leaf(message_id),
        spec["processing-id"],
        spec["version"],
        "",
        "",
        spec["accept-ack"],
        spec["application-ack"],
        "",
        spec["charset"],
    ]
    return "|".join(fields)


def _rf1(spec: dict[str, Any], answer: Answer, status: str, now: datetime) -> str:
    systems = spec["code-maps"], spec["coding-systems"]
    priority = translate(systems[0]["priority"], answer.priority or "routine") or "R"
    fields = [
        "RF1",
        f"{status}^{_display(systems[0]['status'], status)}^{systems[1]['status']}",
        f"{priority}^^{systems[1]['priority']}",
        "",
        "",
        "",
        _leaf(answer.referral_id),
        _dt(answer.start),
        _dt(answer.due),
        now.strftime("%Y%m%d"),  # RF1-9 process date: when the status changed
    ]
    return "|".join(fields).rstrip("|")


def _prd(role: str, party: Party) -> str:
    # PRD-2 XPN: an organisation's name goes in XPN-1, with name type (XPN-7) "L" (legal name)
    name = f"{_leaf(party.name[:50])}^^^^^^L" if party.name else ""
    return f"PRD|{role}|{name}|||||{_leaf(party.identifier)}"


def _pid(spec: dict[str, Any], answer: Answer) -> str:
    hetu = spec["hetu"]
    cx = f"{_leaf(answer.hetu)}^^^&{hetu['oid']}&ISO^{hetu['identifier-type']}"
    # PID-5 is required: without a stored name it is sent as the explicit null ""
    name = f"{_leaf(answer.family)}^{_leaf(answer.given)}" if answer.family else '""'
    return f"PID|1||{cx}||{name}"


def hd(text: str) -> str:
    """An HD (hierarchic designator): an OID as universal id (^OID^ISO), else a namespace id."""
    return f"^{text}^ISO" if _OID.fullmatch(text) else _leaf(text[:20])


def _display(concept_map: str, code: str) -> str:
    group = load(f"hl7v2/codes/{concept_map}.json")["group"][0]
    for element in group["element"]:
        for target in element.get("target", []):
            if target["code"] == code:
                return str(target.get("display", ""))
    return ""


def _dt(fhir_date: str) -> str:
    return fhir_date[:10].replace("-", "") if fhir_date else ""


def _leaf(text: str) -> str:
    return escape(text, OUT)
