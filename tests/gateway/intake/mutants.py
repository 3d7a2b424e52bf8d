"""Seeded mutations of sample HL7 v2 messages for the intake's fuzz test: byte flips, inserts and
deletes; field replacements (empty, delimiters, escapes, control characters, long or non-ASCII
text, wrong dates, other HETUs); segment drops, duplicates, swaps, junk segments, truncation;
line-end changes; two to four of them stacked. Each mutant first gets its own MSH-10, so no two
share a control id (unless a mutation makes one)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

FIELD_VALUES = (
    "",
    "^",
    "^^^^",
    "~",
    "&",
    "\\",
    "\\X0D\\",
    "\\F\\",
    '""',
    "x" * 300,
    "Ääkkönen^Öljy",
    "\x00\x01",
    "\x1c",
    "\x0b",
    "19901301",
    "1990x",
    "20250101",
    "010190-900P^^^&1.2.246.21&ISO",
    "010190-902S^^^&1.2.246.21&ISO",
    "150575-912F^^^&1.2.246.21&ISO",
    "^^^&1.2.246.21&ISO",
    "ADT^A04",
    "ADT^A08",
    "ADT^A40",
    "ORU^R01",
    "MRG",
    "Z",
    "F",
    "M",
    "2.5.1",
    "2.3",
)
JUNK_SEGMENTS = ("ZZZ|1|2", "NTE|1||hello", "PID|1", "MSH|^~\\&|X", "EVN", "mrg|x", "123|4")


def with_control_id(message: str, control: str) -> str:
    """`message` with MSH-10 replaced (standard delimiters assumed, as in the samples)."""
    first, _, rest = message.partition("\r")
    fields = first.split("|")
    while len(fields) < 12:
        fields.append("")
    fields[9] = control
    return "|".join(fields) + "\r" + rest


def _bytes(rng: random.Random, text: str) -> bytes:
    data = bytearray(text.encode("utf-8"))
    for _ in range(rng.randint(1, 6)):
        if not data:
            break
        at = rng.randrange(len(data))
        action = rng.randrange(3)
        if action == 0:
            data[at] = rng.randrange(256)
        elif action == 1:
            data.insert(at, rng.randrange(256))
        else:
            del data[at]
    return bytes(data)


# (segment, field) the mapping reads: where a mutation is most likely to make a message invalid
KEY_FIELDS = (("MSH", 9), ("MSH", 10), ("MSH", 12), ("PID", 3), ("PID", 7), ("MRG", 1))


def _fields(rng: random.Random, text: str) -> bytes:
    segments = [s for s in text.split("\r") if s]
    if not segments:
        return text.encode("utf-8")
    for _ in range(rng.randint(1, 3)):
        n = rng.randrange(len(segments))
        fields = segments[n].split("|")
        at = rng.randrange(1 if n else 2, max(2, len(fields) + 2))  # may add fields at the end
        key = [f for name, f in KEY_FIELDS if name == segments[n][:3]]
        if key and rng.random() < 0.8:
            at = rng.choice(key) - (1 if n == 0 else 0)  # MSH-1 is the separator itself
        while len(fields) <= at:
            fields.append("")
        action = rng.randrange(4)
        if action == 0:
            fields[at] = rng.choice(FIELD_VALUES)
        elif action == 1:
            fields[at] = fields[at] + rng.choice("^~&\\|")
        elif action == 2:
            fields[at] = ""
        else:
            fields[at] = rng.choice(FIELD_VALUES) + "~" + fields[at]
        segments[n] = "|".join(fields)
    return ("\r".join(segments) + "\r").encode("utf-8")


def _segments(rng: random.Random, text: str) -> bytes:
    segments = [s for s in text.split("\r") if s]
    if not segments:
        return text.encode("utf-8")
    action = rng.randrange(6)
    at = rng.randrange(len(segments))
    if action == 0:
        del segments[at]
    elif action == 1:
        segments.insert(at, segments[at])
    elif action == 2:
        other = rng.randrange(len(segments))
        segments[at], segments[other] = segments[other], segments[at]
    elif action == 3:
        segments.insert(rng.randrange(len(segments) + 1), rng.choice(JUNK_SEGMENTS))
    elif action == 4:
        joined = "\r".join(segments)
        return joined[: rng.randrange(len(joined) + 1)].encode("utf-8")
    else:
        segments[at] = segments[at][: rng.randrange(len(segments[at]) + 1)]
    return ("\r".join(segments) + "\r").encode("utf-8")


def _line_ends(rng: random.Random, text: str) -> bytes:
    return text.replace("\r", rng.choice(("\n", "\r\n", "\r\r", "\n\r"))).encode("utf-8")


MUTATIONS: tuple[Callable[[random.Random, str], bytes], ...] = (
    _bytes,
    _bytes,
    _fields,
    _fields,
    _fields,
    _segments,
    _segments,
    _line_ends,
)


def mutants(samples: list[str], count: int, seed: int) -> Iterator[bytes]:
    """`count` mutants of `samples` (ER7 with CR ends), reproducible from `seed`."""
    rng = random.Random(seed)
    for n in range(count):
        text = with_control_id(rng.choice(samples), f"FZ{seed}-{n}")
        for _ in range(rng.randint(2, 4)):  # stacked: a mutant of a mutant
            text = rng.choice(MUTATIONS)(rng, text).decode("utf-8", "replace").replace("\n", "\r")
        yield text.encode("utf-8")
