"""HL7 v3 TS (YYYYMMDDHHMMSS.fff+ZZZZ) <-> FHIR date/dateTime, keeping the precision given.
Pure string work; a value that is neither raises ValueError (the caller makes it a CdaError).
"""

from __future__ import annotations

import re

_TS = re.compile(r"(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?)?([+-]\d{4})?")
_FHIR = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}))?)?)?"
)


def to_fhir(value: str) -> str:
    """'20260914100000+0300' -> '2026-09-14T10:00:00+03:00'; '20260914' -> '2026-09-14'. A time
    without a zone cannot be a FHIR dateTime: only its date is kept (foreign documents only)."""
    m = _TS.fullmatch(value.strip())
    if m is None:
        raise ValueError("not an HL7 TS")
    year, month, day, hh, mm, ss, frac, zone = m.groups()
    date = "-".join(p for p in (year, month, day) if p)
    if hh is None or day is None or zone is None:
        return date
    return f"{date}T{hh}:{mm or '00'}:{ss or '00'}{frac or ''}{zone[:3]}:{zone[3:]}"


def from_fhir(value: str) -> str:
    """'2026-09-14T10:00:00+03:00' -> '20260914100000+0300' ('Z' is written as +0000)."""
    m = _FHIR.fullmatch(value.strip())
    if m is None:
        raise ValueError("not a FHIR date or dateTime")
    year, month, day, hh, mm, ss, frac, zone = m.groups()
    out = year + (month or "") + (day or "")
    if hh is None:
        return out
    zone = "+0000" if zone == "Z" else zone.replace(":", "")
    return f"{out}{hh}{mm}{ss}{(frac or '')[:7]}{zone}"
