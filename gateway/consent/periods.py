"""When a Consent rule is in force: FHIR Period and dateTime against the request's time.

R4 datatypes.html#Period: `start` and `end` are both inclusive, and a partial value covers its
whole precision ("2011-05-23 to 2011-05-27 includes all the times from the start of the 23rd
through to the end of the 27th"). A missing start or end is open. Values without a time zone are
read as UTC, as the search engine reads them (gateway/search/dates.py). The time is always an
argument: nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.errors import FhirError
from gateway.search.dates import EPOCH, MAX_US, MIN_US, date_range


class Unreadable(ValueError):
    """A period or dateTime that is not a FHIR date: its rule's conditions cannot be decided."""


def instant_us(now: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (a naive one is a programming error)."""
    if now.tzinfo is None:
        raise ValueError("the consent decision time must be timezone-aware")
    return (now.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


def _range(value: Any) -> tuple[int, int]:
    if not isinstance(value, str):
        raise Unreadable(repr(value)[:40])
    try:
        return date_range(value)
    except FhirError:
        raise Unreadable(value[:40]) from None


def bounds(period: Mapping[str, Any] | None) -> tuple[int, int]:
    """The inclusive [low, high] microseconds a Period covers; open ends are unbounded."""
    if period is None:
        return MIN_US, MAX_US
    if not isinstance(period, Mapping):
        raise Unreadable("period")
    low = _range(period["start"])[0] if "start" in period else MIN_US
    high = _range(period["end"])[1] if "end" in period else MAX_US
    return low, high


def not_before(value: Any) -> int:
    """The first microsecond of a dateTime (Consent.dateTime: the consent holds from then)."""
    return MIN_US if value is None else _range(value)[0]
