"""adapters/hl7v2/ack.py: ACK shapes for AA, AE and AR, checked by hl7apy (validate_outbound)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.hl7v2.ack import ack, reject
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import parse
from adapters.hl7v2.parse import validate_outbound
from tests.adapters.hl7v2.samples import load

NOW = datetime(2025, 3, 14, 9, 30, 1, tzinfo=UTC)
# hl7apy's table 0396 lists the pattern "HL7nnnn" literally; "HL70357" is what v2.5.1 2.16.35
# (table 0396, "HL7nnnn: HL7 defined codes where nnnn is the HL7 table number") asks for.
HL7APY_0396 = "warning: value not in table HL70396 in element ERR_3.CWE_3"


def _segments(er7: str) -> dict[str, list[str]]:
    assert er7.endswith("\r") and "\n" not in er7
    return {line[:3]: line.split("|") for line in er7.split("\r") if line}


def _clean(er7: str) -> list[str]:
    return [p for p in validate_outbound(er7) if p != HL7APY_0396]


def test_aa_swaps_sender_and_receiver_and_echoes_the_control_id() -> None:
    er7 = ack(parse(load("adt_a04")), "AA", None, NOW)
    seg = _segments(er7)
    assert list(seg) == ["MSH", "MSA"]
    msh = seg["MSH"]  # split on "|", so msh[n] is MSH-(n+1)
    assert msh[2:6] == [  # MSH-3..6: the original's MSH-5, 6, 3, 4
        "PLAN_GATEWAY",
        "TYOKYKYTIIMI^1.2.246.10.1234567.10.0^ISO",
        "PEGASOS",
        "SATSHP^1.2.246.10.2345678.10.0^ISO",
    ]
    assert msh[6] == "20250314093001+0000"  # MSH-7
    assert msh[8] == "ACK^A04^ACK"  # MSH-9
    assert msh[9] != "PGS000123" and len(msh[9]) <= 20  # MSH-10: our own control id
    assert seg["MSA"] == ["MSA", "AA", "PGS000123"]  # MSA-2 = original MSH-10
    assert validate_outbound(er7) == []


def test_ae_names_segment_occurrence_and_field_with_a_table_0357_code() -> None:
    error = Hl7Error("missing-field", "PID-3 holds no HETU", "PID", 3, sequence=3)
    er7 = ack(parse(load("adt_a04")), "AE", error, NOW)
    seg = _segments(er7)
    assert seg["MSA"][1:] == ["AE", "PGS000123"]
    err = seg["ERR"]
    assert err[2] == "PID^1^3"  # ERR-2: segment id ^ first PID ^ field 3
    assert err[3] == "101^^HL70357"  # ERR-3: required field missing
    assert err[4] == "E"  # ERR-4 severity
    assert err[7] == "missing-field: PID-3 holds no HETU"  # ERR-7, no message content
    assert _clean(er7) == []


def test_ar_for_an_unsupported_event() -> None:
    error = Hl7Error("unsupported-event", "no mapping for MSH-9", "MSH", 9, sequence=1)
    er7 = ack(parse(load("adt_a40")), "AR", error, NOW)
    seg = _segments(er7)
    assert seg["MSH"][8] == "ACK^A40^ACK"
    assert seg["MSA"][1:] == ["AR", "PGS000789"]
    assert seg["ERR"][2:4] == ["MSH^1^9", "201^^HL70357"]  # unsupported event code
    assert _clean(er7) == []


def test_an_error_without_a_location_or_a_fitting_0357_code() -> None:
    er7 = ack(parse(load("adt_a04")), "AE", Hl7Error("too-large", "over the limit"), NOW)
    err = _segments(er7)["ERR"]
    assert err[2] == ""  # no ERR-2 when the segment is not known
    assert err[3] == "207^^HL70357"  # the stated default: application internal error
    assert _clean(er7) == []


def test_other_delimiters_are_rewritten_and_text_is_escaped() -> None:
    original = "MSH#$~\\&#PEGASOS#SATSHP$1.2.3$ISO#GW#TYK#20250314093000##ADT$A04#X|1#P#2.5.1\r"
    error = Hl7Error("invalid-value", "a | b ^ c", "PID", 7)
    seg = _segments(ack(parse(original), "AE", error, NOW))
    assert seg["MSH"][4:6] == ["PEGASOS", "SATSHP^1.2.3^ISO"]  # MSH-5/6 from $-components
    assert seg["MSA"][2] == "X\\F\\1"  # MSA-2 with the field separator escaped
    assert seg["ERR"][7] == "invalid-value: a \\F\\ b \\S\\ c"
    assert seg["ERR"][2] == "PID^1^7"


def test_the_ack_is_reproducible_and_its_control_id_changes_with_time() -> None:
    msg = parse(load("adt_a04"))
    assert ack(msg, "AA", None, NOW) == ack(msg, "AA", None, NOW)
    later = ack(msg, "AA", None, NOW.replace(second=2))
    assert _segments(later)["MSH"][9] != _segments(ack(msg, "AA", None, NOW))["MSH"][9]


@pytest.mark.parametrize(
    "code, error", [("XX", None), ("AA", Hl7Error("missing-field", "x", "PID", 3))]
)
def test_a_wrong_code_or_an_error_with_aa_is_refused(code: str, error: Hl7Error | None) -> None:
    with pytest.raises(ValueError):
        ack(parse(load("adt_a04")), code, error, NOW)


# -- input that did not parse: reject() ---------------------------------------------------------
@pytest.mark.parametrize(
    "raw, control, trigger",
    [
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A04|X123|P\r", "X123", "A04"),  # MSH-12 missing
        ("MSH#^~\\&#A#B#C#D#2025##ADT^A08#Y9#P#2.5.1", "Y9", "A08"),  # another separator
        ("garbage", "", ""),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A04|" + "Z" * 40, "Z" * 20, "A04"),  # MSA-2 is ST 20
        ("MSH|^~\\&|A|B|C|D|2025||x|\x07ctl\x00|P", "ctl", ""),  # printable only
    ],
)
def test_a_reject_echoes_what_can_be_read_of_msh(raw: str, control: str, trigger: str) -> None:
    error = Hl7Error("bad-delimiters", "MSH-1/MSH-2 are not 5 distinct delimiters", "MSH", 2)
    er7 = reject(raw, "AR", error, NOW)
    seg = _segments(er7)
    assert seg["MSA"][1:] == ["AR", control]
    assert seg["MSH"][8] == f"ACK^{trigger}^ACK"
    assert seg["ERR"][2:4] == ["MSH^1^2", "102^^HL70357"]
    if control:  # hl7apy requires MSA-2; an input with no readable MSH-10 cannot give one
        assert _clean(er7) == []


def test_a_reject_is_never_aa() -> None:
    with pytest.raises(ValueError):
        reject("x", "AA", Hl7Error("not-hl7", "x"), NOW)
