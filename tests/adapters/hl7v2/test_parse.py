"""adapters/hl7v2/parse.py: hl7apy's strict validation of the messages we build."""

from __future__ import annotations

import pytest

from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.parse import validate_outbound

MSH = "MSH|^~\\&|PLAN_GATEWAY|TYOKYKYTIIMI|PEGASOS|SATSHP|20250314093001||ACK^A04^ACK|GW1|P|2.5.1\r"


def test_a_valid_ack_has_no_problems() -> None:
    assert validate_outbound(MSH + "MSA|AA|PGS000123\r") == []


def test_problems_name_the_element_but_not_the_value() -> None:
    problems = validate_outbound(MSH + "MSA|Virtanen|PGS000123\r")  # MSA-1 not in table 0008
    assert problems == ["warning: value not in table HL70008 in element MSA.MSA_1"]


def test_a_missing_required_segment_is_an_error() -> None:
    adt = MSH.replace("ACK^A04^ACK", "ADT^A04^ADT_A01") + "PID|1||010190-900P\r"
    assert "error: Missing required child ADT_A01.EVN" in validate_outbound(adt)


@pytest.mark.parametrize("er7", ["not a message", ""])
def test_unparseable_is_hl7error(er7: str) -> None:
    with pytest.raises(Hl7Error) as caught:
        validate_outbound(er7)
    assert caught.value.code == "invalid-outbound"
