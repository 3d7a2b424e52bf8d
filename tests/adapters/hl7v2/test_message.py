"""adapters/hl7v2/message.py: accessors on the sample messages, delimiters, line ends, errors."""

from __future__ import annotations

import pytest

from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import parse
from tests.adapters.hl7v2.samples import load

HETU_OID = "1.2.246.21"


def test_adt_a04_header_and_patient() -> None:
    msg = parse(load("adt_a04"))
    assert (msg.control_id, msg.event, msg.version) == ("PGS000123", "ADT^A04", "2.5.1")
    assert [s.name for s in msg.segments()] == ["MSH", "EVN", "PID", "PV1"]
    assert msg.get("PID", 3) == "010190-900P"  # PID-3.1 of the first repetition
    assert msg.get("PID", 3, rep=0, component=4, sub=2) == HETU_OID  # CX-4 HD universal id
    assert msg.get("PID", 3, rep=0, component=5) == "NNFIN"
    assert msg.get("PID", 3, rep=1, component=5) == "MR"
    assert msg.get("PID", 5, component=2) == "Aino"
    assert msg.get("PID", 13, rep=1, component=4) == "aino.virtanen@example.fi"
    assert len(msg.segment("PID").repetitions(3)) == 2


def test_msh_fields_are_numbered_from_the_field_separator() -> None:
    msh = parse(load("adt_a04")).msh
    assert (msh.get(1), msh.get(2)) == ("|", "^~\\&")  # never split nor unescaped
    assert msh.get(3) == "PEGASOS"  # MSH-3 sending application
    assert msh.get(4, component=2) == "1.2.246.10.2345678.10.0"
    assert msh.get(9, component=3) == "ADT_A01"
    assert msh.get(18) == "UNICODE UTF-8"


def test_other_events_and_escapes() -> None:
    a08 = parse(load("adt_a08"))
    assert a08.event == "ADT^A08"
    assert a08.get("PID", 11) == "Satamakatu 3 & 5"  # \T\ is the subcomponent separator
    assert a08.get("PID", 11, component=2) == "c/o Mäkelä"
    a40 = parse(load("adt_a40"))
    assert (a40.event, a40.get("MRG", 1), a40.get("MRG", 1, component=5)) == (
        "ADT^A40",
        "980001234",
        "PI",
    )
    ref = parse(load("ref_i12"))
    assert ref.event == "REF^I12"
    assert [p.get(1) for p in ref.segments("PRD")] == ["RP", "RT"]
    assert ref.get("PRD", 2, index=1) == "Työkykytiimi"
    assert ref.get("NTE", 3) == "Pitkä sairausloma\nArvio työkyvystä & kuntoutustarpeesta"


def test_absent_values_are_empty() -> None:
    msg = parse(load("adt_a40"))
    assert msg.get("PID", 99) == msg.get("PID", 5, rep=3) == msg.get("PID", 5, component=9) == ""
    assert msg.get("PV1", 2) == ""
    assert msg.segment("PV1") is None
    assert msg.get("PID", 5, component=0) == ""


def test_custom_delimiters() -> None:
    # field #, component !, repetition *, escape $, subcomponent %
    msg = parse("MSH#!*$%#A#B#C#D#2025##ADT!A04#X1#P#2.5.1\rPID#1##a!!!x%y*b#n$F$m\r")
    assert msg.delimiters == ("#", "!", "*", "$", "%")
    assert (msg.event, msg.control_id, msg.msh.get(1)) == ("ADT^A04", "X1", "#")
    assert msg.get("PID", 3, component=4, sub=2) == "y"
    assert msg.get("PID", 3, rep=1) == "b"
    assert msg.get("PID", 4) == "n#m"


@pytest.mark.parametrize("ends", ["\r", "\n", "\r\n", "\r\r\n"])
def test_segment_terminators_are_normalised(ends: str) -> None:
    text = load("adt_a04").replace("\r", ends)
    assert parse(text) == parse(load("adt_a04"))
    assert parse(text.encode()) == parse(load("adt_a04"))


def test_latin1_bytes_are_read() -> None:
    msg = parse(load("adt_a08").encode("latin-1"))
    assert msg.get("PID", 11, component=2) == "c/o Mäkelä"


@pytest.mark.parametrize(
    ("text", "code", "segment", "field"),
    [
        ("", "not-hl7", None, None),
        ("hello world", "not-hl7", None, None),
        ("PID|1||x\r", "no-msh", None, None),
        ("MSH|^~\r", "bad-delimiters", "MSH", 2),
        ("MSH|^~^&|A|B|C|D|2025||ADT^A04|1|P|2.5\r", "bad-delimiters", "MSH", 2),
        ("MSHA^~\\&A\r", "bad-delimiters", "MSH", 2),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A04|1|P|2.5\rpid|1\r", "bad-segment", None, None),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A04|1|P|2.5\rMSH|^~\\&\r", "bad-segment", None, None),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A04||P|2.5\r", "missing-field", "MSH", 10),
        ("MSH|^~\\&|A|B|C|D|2025||ADT|1|P|2.5\r", "missing-field", "MSH", 9),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A04|1|P\r", "missing-field", "MSH", 12),
    ],
)
def test_errors_have_stable_codes_and_locations(
    text: str, code: str, segment: str | None, field: int | None
) -> None:
    with pytest.raises(Hl7Error) as caught:
        parse(text)
    assert (caught.value.code, caught.value.segment, caught.value.field) == (code, segment, field)


def test_errors_name_the_segment_position_but_never_quote_content() -> None:
    text = load("adt_a04").replace("PV1|", "pv1|")
    with pytest.raises(Hl7Error) as caught:
        parse(text)
    assert (caught.value.code, caught.value.sequence) == ("bad-segment", 4)
    assert "pv1" not in str(caught.value) and "Virtanen" not in str(caught.value)


def test_too_large() -> None:
    with pytest.raises(Hl7Error) as caught:
        parse(load("adt_a04"), max_size=100)
    assert caught.value.code == "too-large"


@pytest.mark.parametrize("control", ["\x00", "\x08", "\x1b", "\x7f"])
def test_a_raw_control_character_is_invalid_value_naming_segment_and_field(control: str) -> None:
    er7 = f"MSH|^~\\&|A|B|C|D|20250101||ADT^A04|C1|P|2.5.1\rPID|1||x{control}y"
    with pytest.raises(Hl7Error) as caught:
        parse(er7)
    error = caught.value
    assert (error.code, error.segment, error.field, error.sequence) == (
        "invalid-value",
        "PID",
        3,
        2,
    )
