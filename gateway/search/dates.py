"""FHIR date/dateTime/instant values as microsecond ranges [low, high] in UTC.

A partial date covers its whole precision: `2024` is 2024-01-01T00:00 to 2024-12-31T23:59:59.999999.
Values without a time zone are read as UTC (the server's zone), per R4 search rules.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

from gateway.errors import invalid

_DATE_RE = re.compile(  # ASCII digits only, as in R4 datatypes.html#dateTime
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})"
    r"(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$",
    re.ASCII,
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -(2**62)
MAX_US = 2**62


def _us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def _end_us(lo: datetime, width: timedelta) -> int:
    """The last microsecond of [lo, lo + width). `datetime` stops at year 9999, so a range that
    reaches past it (9999-12-31, a late instant with a negative offset) is summed in integers."""
    try:
        return _us(lo + width) - 1
    except OverflowError:
        return _us(lo) + width // timedelta(microseconds=1) - 1


def date_range(value: str, where: str = "date") -> tuple[int, int]:
    """The inclusive [low, high] microsecond range a FHIR date/dateTime/instant covers."""
    m = _DATE_RE.match(value.strip())
    if not m:
        raise invalid(f"'{value[:40]}' is not a FHIR date, dateTime or instant", where)
    try:
        y = int(m["y"])
        if m["m"] is None:
            lo = datetime(y, 1, 1, tzinfo=UTC)
            return _us(lo), _end_us(lo, timedelta(days=366 if calendar.isleap(y) else 365))
        mo = int(m["m"])
        if m["d"] is None:
            lo = datetime(y, mo, 1, tzinfo=UTC)
            days = calendar.monthrange(y, mo)[1]
            return _us(lo), _end_us(lo, timedelta(days=days))
        d = int(m["d"])
        if m["H"] is None:
            lo = datetime(y, mo, d, tzinfo=UTC)
            return _us(lo), _end_us(lo, timedelta(days=1))
        tz = UTC
        if m["tz"] and m["tz"] != "Z":
            sign = 1 if m["tz"][0] == "+" else -1
            hh, mm = int(m["tz"][1:3]), int(m["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hh, minutes=mm))
        sec = int(m["S"]) if m["S"] else 0
        frac = m["f"] or ""
        micro = int((frac[1:] + "000000")[:6]) if frac else 0
        lo = datetime(y, mo, d, int(m["H"]), int(m["M"]), sec, micro, tzinfo=tz)
        if m["S"] is None:
            width = timedelta(minutes=1)
        elif frac:
            width = timedelta(microseconds=10 ** max(0, 6 - (len(frac) - 1)))
        else:
            width = timedelta(seconds=1)
        return _us(lo), _end_us(lo, width)
    except ValueError as e:
        raise invalid(f"'{value[:40]}' is not a valid date: {e}", where) from None


def parse_instant_us(value: str, where: str) -> int:
    """The start of a date/instant value in microseconds (for `_since`, `_at`)."""
    return date_range(value, where)[0]
