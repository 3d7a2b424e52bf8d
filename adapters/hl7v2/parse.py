"""The only module that imports hl7apy: a strict parse and validation of the messages we build
(ACK, RRI^I12) before they are sent. Inbound parsing is message.py's (hl7apy is too slow there).
hl7apy's errors leave this module as Hl7Error("invalid-outbound"); no text quotes a value.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import ValidationError
from hl7apy.parser import parse_message
from hl7apy.validation import Validator

from adapters.hl7v2.errors import Hl7Error

# hl7apy's table warnings start with the value itself: keep the table and element, not the value
_VALUE = re.compile(r"^Value .* not in table", re.DOTALL)


def validate_outbound(er7: str) -> list[str]:
    """The problems hl7apy finds in a message we built ("error: …" / "warning: …", [] when
    none) against the standard structure of its MSH-9.3 and MSH-12. Raises Hl7Error when hl7apy
    cannot parse it at all."""
    try:
        message = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT)
    except Exception as exc:  # hl7apy also raises bare ValueError/IndexError on bad input
        raise Hl7Error(
            "invalid-outbound", f"hl7apy cannot parse it ({type(exc).__name__})"
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"  # hl7apy lists every problem only in a report file
        try:
            Validator.validate(message, report_file=str(report))
        except ValidationError:  # the first error, already in the report
            pass
        except Exception as exc:
            raise _invalid("validate", exc) from None
        lines = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
    return [_problem(line) for line in lines if line.strip()]


def _invalid(step: str, exc: Exception) -> Hl7Error:
    return Hl7Error("invalid-outbound", f"hl7apy cannot {step} it ({type(exc).__name__})")


def _problem(line: str) -> str:
    kind, _, text = line.partition(": ")
    return f"{kind.lower()}: {_VALUE.sub('value not in table', text)}"
