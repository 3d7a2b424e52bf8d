"""Parse an inbound HL7 v2 ER7 message into an immutable `Message` for the hot path. It reads only:
it never builds, validates against a message structure or touches personal data beyond returning it.

Why not hl7apy here: hl7apy builds a typed element tree with a reference lookup per field and
parsed 25-66 msgs/s on this machine; issue 5 asks for >= 1,000 msgs/s (parse + map) on one core.
This parser splits segments and fields eagerly and components, subcomponents and escapes lazily,
on access (bench/hl7v2_parse.py measures both in the same run). hl7apy stays in parse.py for the
messages we build (validate_outbound).

Rules (HL7 v2.5.1 ch. 2.5-2.7): delimiters come from MSH-1 (field) and MSH-2 (component,
repetition, escape, subcomponent; a 5th character, v2.7 truncation, is accepted and ignored);
MSH-1 is the field separator itself, so MSH fields are numbered from it; segments end with CR,
and LF or CR LF (files, copy-paste) are read as CR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.escape import Delimiters, unescape

MAX_SIZE = 1_000_000  # characters; an ADT or REF message is a few KB
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
# ER7 text holds no control characters but the segment ends (v2.5.1 2.7: they are written as
# \Xhh\ escapes); a raw one is damage, and PostgreSQL refuses NUL in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: `fields[n]` is field n as ER7 text (`fields[0]` is the segment id)."""

    fields: tuple[str, ...]
    delimiters: Delimiters

    @property
    def name(self) -> str:
        return self.fields[0]

    def raw(self, field: int) -> str:
        """Field `field` as ER7 text, all repetitions, escapes not decoded; "" when absent."""
        return self.fields[field] if 0 < field < len(self.fields) else ""

    def repetitions(self, field: int) -> tuple[str, ...]:
        """The ER7 text of each repetition of a field (MSH-1/MSH-2 are never split)."""
        text = self.raw(field)
        if not text:
            return ()
        if self.name == "MSH" and field <= 2:
            return (text,)
        return tuple(text.split(self.delimiters.repetition))

    def get(self, field: int, rep: int = 0, component: int = 1, subcomponent: int = 1) -> str:
        """One leaf value, escapes decoded; "" when absent. A primitive field is its own first
        component, so `get(8)` of PID-8 "F" is "F". Numbering is 1-based except `rep`."""
        reps = self.repetitions(field)
        if rep >= len(reps) or component < 1 or subcomponent < 1:
            return ""
        if self.name == "MSH" and field <= 2:
            return reps[0] if component == subcomponent == 1 else ""
        d = self.delimiters
        parts = reps[rep].split(d.component)
        if component > len(parts):
            return ""
        subs = parts[component - 1].split(d.subcomponent)
        return unescape(subs[subcomponent - 1], d) if subcomponent <= len(subs) else ""


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed message: its segments in order and the delimiters they were written with."""

    all_segments: tuple[Segment, ...]
    delimiters: Delimiters

    def segments(self, name: str | None = None) -> tuple[Segment, ...]:
        """Every segment with this id, in order (every segment when name is None)."""
        if name is None:
            return self.all_segments
        return tuple(s for s in self.all_segments if s.fields[0] == name)

    def segment(self, name: str, index: int = 0) -> Segment | None:
        """The `index`-th (0-based) segment with this id, or None."""
        for seg in self.all_segments:
            if seg.fields[0] == name:
                if not index:
                    return seg
                index -= 1
        return None

    def get(
        self, name: str, field: int, rep: int = 0, component: int = 1, sub: int = 1, index: int = 0
    ) -> str:
        """`Segment.get` on the `index`-th segment `name`; "" when there is none."""
        seg = self.segment(name, index)
        return seg.get(field, rep, component, sub) if seg else ""

    @property
    def msh(self) -> Segment:
        return self.all_segments[0]

    @property
    def control_id(self) -> str:
        """MSH-10, echoed in MSA-2 of the ACK."""
        return self.msh.get(10)

    @property
    def event(self) -> str:
        """MSH-9.1^MSH-9.2, e.g. "ADT^A04" (always written with "^")."""
        return f"{self.msh.get(9, component=1)}^{self.msh.get(9, component=2)}"

    @property
    def version(self) -> str:
        """MSH-12.1, e.g. "2.5.1"."""
        return self.msh.get(12)


def decode(data: bytes) -> str:
    """Bytes from the wire as text: UTF-8, else ISO-8859-1 (which decodes any byte)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _delimiters(first: str) -> Delimiters:
    if len(first) < 8 or first[3] in "\r\n":
        raise Hl7Error("bad-delimiters", "MSH is too short to hold MSH-1 and MSH-2", "MSH", 2)
    sep = first[3]
    enc = first[4:].split(sep, 1)[0]
    chars = sep + enc[:4]
    if (
        not 4 <= len(enc) <= 5
        or len(set(chars)) != 5
        or any(c.isalnum() or c.isspace() for c in chars)
    ):
        raise Hl7Error("bad-delimiters", "MSH-1/MSH-2 are not 5 distinct delimiters", "MSH", 2)
    return Delimiters(sep, enc[0], enc[1], enc[2], enc[3])


def _segment(text: str, d: Delimiters, sequence: int) -> Segment:
    fields = text.split(d.field)
    if not _SEGMENT_ID.match(fields[0]) or (fields[0] == "MSH") != (sequence == 1):
        # a second MSH would be a batch (BHS/FHS), which this parser does not read
        problem = "has no valid segment id" if fields[0] != "MSH" else "is a second MSH"
        raise Hl7Error("bad-segment", f"segment {sequence} {problem}", sequence=sequence)
    if sequence == 1:  # MSH-1 is the separator between "MSH" and MSH-2
        fields.insert(1, d.field)
    return Segment(tuple(fields), d)


def _refuse_control(lines: list[str], d: Delimiters) -> None:
    """Raise invalid-value naming the segment and field of the first raw control character."""
    for sequence, line in enumerate(lines, 1):
        found = _CONTROL.search(line)
        if found:
            field = line[: found.start()].count(d.field) + (1 if sequence == 1 else 0)
            name = line[:3] if _SEGMENT_ID.match(line[:3]) else None
            raise Hl7Error(
                "invalid-value",
                "a field holds a control character",
                name,
                field or None,
                sequence=sequence,
            )


def _require(msh: Segment, field: int, what: str) -> None:
    if not msh.get(field):
        raise Hl7Error("missing-field", f"MSH-{field} ({what}) is empty", "MSH", field, sequence=1)


def parse(text: str | bytes, max_size: int = MAX_SIZE) -> Message:
    """Parse one ER7 message. Raises Hl7Error (and nothing else) when it cannot be read."""
    if isinstance(text, bytes | bytearray):
        text = decode(bytes(text))
    if len(text) > max_size:
        raise Hl7Error("too-large", f"message is over {max_size} characters")
    text = text.lstrip("\ufeff \t\r\n").replace("\r\n", "\r").replace("\n", "\r")
    lines = [s for s in text.split("\r") if s]
    if not lines or not _SEGMENT_ID.match(lines[0][:3]):
        raise Hl7Error("not-hl7", "the input does not start with a segment id")
    if lines[0][:3] != "MSH":
        raise Hl7Error("no-msh", "the first segment is not MSH", sequence=1)
    d = _delimiters(lines[0])
    if _CONTROL.search(text):
        _refuse_control(lines, d)
    message = Message(tuple(_segment(s, d, i) for i, s in enumerate(lines, 1)), d)
    _require(message.msh, 9, "message type")
    _require(message.msh, 10, "message control id")
    _require(message.msh, 12, "version id")
    if not message.msh.get(9, component=2):
        raise Hl7Error("missing-field", "MSH-9.2 (trigger event) is empty", "MSH", 9, sequence=1)
    return message
