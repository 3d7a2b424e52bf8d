"""Build the ACK of an inbound message (HL7 v2.5.1 ch. 2.9 original acknowledgment mode, 2.15.8
ERR, 2.15.9 MSA). Written in v2.5.1 whatever the inbound version, since ERR's layout depends on it.
Never quotes message content: ERR-7 holds only the Hl7Error code and its content-free text.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from adapters.hl7v2.builders import translate
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.escape import Delimiters, escape
from adapters.hl7v2.message import Message, Segment

OUT = Delimiters()  # we always write | ^ ~ \ &
VERSION = "2.5.1"
CODES = ("AA", "AE", "AR")  # HL7 table 0008, original mode


def ack(message: Message, code: str, error: Hl7Error | None, now: datetime) -> str:
    """The ACK as ER7 text (segments ended by CR). `code` is AA, AE or AR; `error`, when given,
    becomes one ERR segment (not allowed with AA)."""
    if code not in CODES or (code == "AA" and error is not None):
        raise ValueError(f"cannot ACK with {code!r} and error {error is not None}")
    segments = [_msh(message, now), f"MSA|{code}|{_leaf(message.control_id)}"]
    if error is not None:
        segments.append(_err(message, error))
    return "\r".join(segments) + "\r"


def reject(raw: str, code: str, error: Hl7Error, now: datetime) -> str:
    """The ACK of input that could not be parsed into a Message: MSH-3..6 empty (who sent it is
    unknown), MSA-2 the original MSH-10 when it can still be read (`best_control_id`)."""
    if code not in ("AE", "AR"):
        raise ValueError(f"cannot reject with {code!r}")
    control, trigger = best_control_id(raw), _best_trigger(raw)
    fields = ["MSH", "^~\\&", "", "", "", "", now.strftime("%Y%m%d%H%M%S%z"), ""]
    fields.append(f"ACK^{trigger}^ACK")
    fields += [_control_id(control, now), "P", VERSION]
    location = f"{_leaf(error.segment)}^1^{error.field or ''}".rstrip("^") if error.segment else ""
    hl7_code = translate("hl7v2-error-to-v2-0357", error.code)
    err = ["ERR", "", location, f"{hl7_code}^^HL70357", "E", "", ""]
    err.append(_leaf(f"{error.code}: {error.message}"))
    return "\r".join(["|".join(fields), f"MSA|{code}|{_leaf(control)}", "|".join(err)]) + "\r"


def best_control_id(raw: str) -> str:
    """MSH-10 read naively (the 4th character as field separator) from input that did not parse;
    "" when there is no MSH. Printable ASCII only, at most 20 characters (MSA-2 is ST 20)."""
    return "".join(c for c in _naive_msh(raw, 9) if " " <= c <= "~")[:20]


def _best_trigger(raw: str) -> str:
    """MSH-9.2 read naively (its first non-alphanumeric character taken as the component
    separator), when it looks like a trigger event ("A04"); else ""."""
    value = _naive_msh(raw, 8)
    trigger = re.split(r"[^A-Za-z0-9]", value)[1] if re.match(r"[A-Z]{3}\W", value) else ""
    return trigger if re.fullmatch(r"[A-Z][A-Z0-9]{2}", trigger) else ""


def _naive_msh(raw: str, index: int) -> str:
    line = raw.lstrip("\ufeff \t\r\n")[:4096].split("\r", 1)[0].split("\n", 1)[0]
    if not line.startswith("MSH") or len(line) < 4:
        return ""
    fields = line.split(line[3])
    return fields[index] if len(fields) > index else ""


def _msh(message: Message, now: datetime) -> str:
    msh = message.msh
    trigger = msh.get(9, component=2)
    fields = [
        "MSH",
        "^~\\&",
        _copy(msh, 5),  # our application and facility are where the message was sent to
        _copy(msh, 6),
        _copy(msh, 3),
        _copy(msh, 4),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        f"ACK^{_leaf(trigger)}^ACK",
        _control_id(message.control_id, now),
        _leaf(msh.get(11)) or "P",
        VERSION,
    ]
    return "|".join(fields)


def _control_id(original: str, now: datetime) -> str:
    """MSH-10 of the ACK: unique per (original, time), reproducible, at most 20 characters."""
    return hashlib.sha256(f"{original}|{now.isoformat()}".encode()).hexdigest()[:20]


def _err(message: Message, error: Hl7Error) -> str:
    hl7_code = translate("hl7v2-error-to-v2-0357", error.code)
    fields = [
        "ERR",
        "",  # ERR-1 is backward compatibility only in v2.5.1
        _location(message, error),
        f"{hl7_code}^^HL70357",
        "E",  # ERR-4 severity (table 0516)
        "",
        "",
        _leaf(f"{error.code}: {error.message}"),  # ERR-7 diagnostic information
    ]
    return "|".join(fields)


def _location(message: Message, error: Hl7Error) -> str:
    """ERR-2 (ERL): segment id ^ occurrence of that segment (1 for the first) ^ field."""
    if error.segment is None:
        return ""
    position = error.sequence or len(message.all_segments)
    before = message.all_segments[:position]
    occurrence = sum(1 for s in before if s.name == error.segment) or 1
    field = "" if error.field is None else str(error.field)
    return "^".join([_leaf(error.segment), str(occurrence), field]).rstrip("^")


def _copy(segment: Segment, field: int) -> str:
    """A field's first repetition re-encoded with our delimiters (the sender may use others)."""
    reps = segment.repetitions(field)
    if not reps:
        return ""
    d = segment.delimiters
    components = reps[0].split(d.component)
    return "^".join(
        "&".join(
            _leaf(segment.get(field, 0, c, s))
            for s in range(1, len(components[c - 1].split(d.subcomponent)) + 1)
        )
        for c in range(1, len(components) + 1)
    )


def _leaf(text: str) -> str:
    return escape(text, OUT)
