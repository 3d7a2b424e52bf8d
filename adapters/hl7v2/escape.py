"""ER7 escape sequences (HL7 v2.5.1 ch. 2.7): decode the text of one component or subcomponent,
and encode text so that it can be put back. Never fails: an unknown or malformed sequence is kept
as it stands, so that reading a message never loses or invents characters.

Decoded: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ (the delimiters), \\Xhh…\\ (bytes: UTF-8, else ISO-8859-1,
the charset of older Finnish record systems; one that would decode to NUL is kept as it stands)
and \\.br\\ (line break -> "\\n", for FHIR text).
Kept as they stand: the other formatting commands (\\.sp\\, \\.in\\, \\H\\, \\N\\, …) and
\\Z…\\/\\C…\\/\\M…\\, which only a renderer or a charset-switching reader can interpret.
"""

from __future__ import annotations

from typing import NamedTuple


class Delimiters(NamedTuple):
    """MSH-1 and the characters of MSH-2, in the standard's order."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


def _hex(body: str) -> str | None:
    if len(body) % 2 or not body:
        return None
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    # NUL is no text a record holds and no store keeps (PostgreSQL refuses it in text and
    # JSONB): the sequence is kept as it stands
    return None if "\x00" in text else text


def _sequence(body: str, d: Delimiters) -> str | None:
    """The text an escape sequence stands for, or None to keep it as it stands."""
    simple = {"F": d.field, "S": d.component, "T": d.subcomponent, "R": d.repetition}
    if body in simple:
        return simple[body]
    if body == "E":
        return d.escape
    if body == ".br":
        return "\n"
    if body[:1] == "X":
        return _hex(body[1:])
    return None


def unescape(text: str, d: Delimiters) -> str:
    """Decode the escape sequences of one leaf value (a component or subcomponent)."""
    esc = d.escape
    if not esc or esc not in text:
        return text
    parts = text.split(esc)
    out = [parts[0]]
    # parts at odd positions are sequence bodies; an even count means the last one is unclosed
    closed = len(parts) - (1 if len(parts) % 2 == 0 else 0)
    for i in range(1, closed, 2):
        decoded = _sequence(parts[i], d)
        out.append(esc + parts[i] + esc if decoded is None else decoded)
        out.append(parts[i + 1])
    if closed < len(parts):
        out.append(esc + parts[-1])
    return "".join(out)


def escape(text: str, d: Delimiters) -> str:
    """Encode text as one leaf value: the delimiters as \\F\\ … \\E\\, line breaks as \\.br\\,
    other control characters (a CR would end the segment) as \\Xhh\\."""
    out = []
    table = {d.escape: "E", d.field: "F", d.component: "S", d.subcomponent: "T", d.repetition: "R"}
    for ch in text:
        if ch in table:
            out.append(f"{d.escape}{table[ch]}{d.escape}")
        elif ch == "\n":
            out.append(f"{d.escape}.br{d.escape}")
        elif ch < " " or ch == "\x7f":
            out.append(f"{d.escape}X{ord(ch):02X}{d.escape}")
        else:
            out.append(ch)
    return "".join(out)
