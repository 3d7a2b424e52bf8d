"""adapters/cda/timestamps.py: HL7 TS <-> FHIR date/dateTime keeps the precision, both ways
(Hypothesis round trips), and refuses what is neither."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.cda import timestamps

zones = st.sampled_from(["+02:00", "+03:00", "-05:00", "+00:00"])


@st.composite
def fhir_times(draw: st.DrawFn) -> str:
    year = draw(st.integers(1900, 2100))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    precision = draw(st.sampled_from(["y", "m", "d", "t", "f"]))
    if precision == "y":
        return f"{year:04d}"
    if precision == "m":
        return f"{year:04d}-{month:02d}"
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if precision == "d":
        return date
    h, mi, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = f".{draw(st.integers(0, 999)):03d}" if precision == "f" else ""
    return f"{date}T{h:02d}:{mi:02d}:{s:02d}{frac}{draw(zones)}"


@given(fhir_times())
def test_fhir_to_ts_and_back_is_identity(value: str) -> None:
    assert timestamps.to_fhir(timestamps.from_fhir(value)) == value


def test_examples() -> None:
    assert timestamps.from_fhir("2026-09-14T10:00:00+03:00") == "20260914100000+0300"
    assert timestamps.from_fhir("2026-09-14T10:00:00Z") == "20260914100000+0000"
    assert timestamps.to_fhir("202609141000+0300") == "2026-09-14T10:00:00+03:00"
    assert timestamps.to_fhir("20260914100000") == "2026-09-14"  # no zone: the date only


@pytest.mark.parametrize("bad", ["", "2026-09-14", "yesterday", "20261", "2026091410000000+03"])
def test_not_a_ts_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        timestamps.to_fhir(bad)
