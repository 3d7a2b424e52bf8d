"""Property tests of adapters/hl7v2/message.py: built messages read back value for value, and no
input (random bytes, mutated samples) raises anything but Hl7Error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.escape import Delimiters, escape
from adapters.hl7v2.message import Message, parse
from tests.adapters.hl7v2.samples import NAMES, load

D = Delimiters()
MSH = "MSH|^~\\&|A|B|C|D|20250101||ADT^A08|ID1|P|2.5.1"

# any text but NUL: a \X00\ escape is kept as it stands (escape.py; PostgreSQL refuses NUL)
TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00"))
# a field: repetitions of components of subcomponents, each any text
components = st.lists(TEXT, min_size=1, max_size=3)
fields = st.lists(st.lists(components, min_size=1, max_size=3), min_size=1, max_size=3)


def _er7(field: list[list[list[str]]]) -> str:
    return "~".join("^".join("&".join(escape(s, D) for s in comp) for comp in rep) for rep in field)


@given(st.lists(fields, min_size=1, max_size=5))
def test_built_segment_reads_back(segment: list[list[list[list[str]]]]) -> None:
    msg = parse(MSH + "\rZPV|" + "|".join(_er7(f) for f in segment) + "\r")
    for n, field in enumerate(segment, 1):
        for r, rep in enumerate(field):
            for c, comp in enumerate(rep, 1):
                for s, text in enumerate(comp, 1):
                    assert msg.get("ZPV", n, rep=r, component=c, sub=s) == text


def _outcome(data: str | bytes) -> Message | Hl7Error:
    try:
        return parse(data)
    except Hl7Error as exc:
        return exc


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_hl7error(data: bytes) -> None:
    _outcome(data)
    _outcome(b"MSH" + data)
    _outcome(b"MSH|^~\\&|" + data)


@settings(max_examples=300)
@given(st.sampled_from(NAMES), st.data())
def test_mutated_samples_raise_only_hl7error(name: str, data: st.DataObject) -> None:
    text = load(name)
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = data.draw(st.sampled_from(["|", "^", "~", "\\", "&", "\r", "\n", "", "X", "\x00"]))
        cut = at + (1 if kind != "insert" else 0)
        text = text[:at] + ("" if kind == "delete" else piece) + text[cut:]
    result = _outcome(text)
    if isinstance(result, Message):  # whatever survives can be read through every accessor
        for seg in result.segments():
            for n in range(len(seg.fields)):
                for r in range(len(seg.repetitions(n))):
                    seg.get(n, rep=r, component=2, subcomponent=2)
        assert result.control_id and result.event and result.version
