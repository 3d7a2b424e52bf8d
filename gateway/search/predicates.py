"""SQL conditions for one search value of each parameter type, over one index-table row.

Each function returns (condition, args) written with `?` placeholders against the columns of its
index table (see storage/migrations.py). Bad values raise a 400 naming the parameter; nothing
here runs SQL or knows the request.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal, InvalidOperation

from gateway.errors import invalid
from gateway.search.dates import date_range
from gateway.search.extract import normalise, split_reference
from gateway.search.registry import DATE_PREFIXES, NUMBER_PREFIXES

Sql = tuple[str, list]
_PREFIX = re.compile(r"^([a-z]{2})(?=[\d-])")


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def split_prefix(value: str, allowed: tuple[str, ...], where: str) -> tuple[str, str]:
    m = _PREFIX.match(value)
    if not m:
        return "eq", value
    if m[1] not in allowed:
        raise invalid(f"'{m[1]}' is not a valid prefix for {where}", where)
    return m[1], value[2:]


def token(value: str, modifier: str | None) -> Sql:
    if "|" not in value:
        return "code = ?", [value]
    system, code = value.split("|", 1)
    if not code:
        return "system = ?", [system]
    return "system = ? AND code = ?", [system, code]


def string(value: str, modifier: str | None) -> Sql:
    if modifier == "exact":
        return "exact = ?", [value]
    pattern = like_escape(normalise(value)) + "%"
    if modifier == "contains":
        pattern = "%" + pattern
    return "norm LIKE ? ESCAPE '\\'", [pattern]


def uri(value: str, modifier: str | None) -> Sql:
    if modifier == "below":
        return "value LIKE ? ESCAPE '\\'", [like_escape(value) + "%"]
    if modifier == "above":
        return "? LIKE value || '%'", [value]
    return "value = ?", [value]


def reference(value: str, type_modifier: str | None, base: str, where: str) -> Sql:
    """`id`, `Type/id`, our own absolute URL (made relative), or any other URL/canonical."""
    if value.startswith(base + "/"):
        value = value[len(base) + 1 :]
    value = value.split("|")[0]
    absolute = "://" in value or value.startswith("urn:")
    rtype, rid, url = split_reference(value) if absolute or "/" in value else ("", "", "")
    if url:
        return "url = ?", [url]
    local = "(url = '' OR url LIKE ? ESCAPE '\\')"
    local_args = [like_escape(base) + "/%"]
    if rtype:
        if type_modifier and type_modifier != rtype:
            raise invalid(f"'{value[:60]}' is not a {type_modifier} reference", where)
        return f"target_id = ? AND target_type = ? AND {local}", [rid, rtype, *local_args]
    if "/" in value or not value:
        raise invalid(f"'{value[:60]}' is not a valid reference", where)
    if type_modifier:
        return f"target_id = ? AND target_type = ? AND {local}", [value, type_modifier, *local_args]
    return f"target_id = ? AND {local}", [value, *local_args]


_DATE_CONDITIONS = {
    # Range semantics (R4 search.html#prefix, with R5's clarification that ge/le include an
    # overlap with the search value itself): [lo, hi] is the indexed value's range, [q_lo, q_hi]
    # the search value's; "eq" means the search range contains the value's.
    "eq": ("{lo} >= ? AND {hi} <= ?", ("q_lo", "q_hi")),
    "ne": ("NOT ({lo} >= ? AND {hi} <= ?)", ("q_lo", "q_hi")),
    "gt": ("{hi} > ?", ("q_hi",)),
    "lt": ("{lo} < ?", ("q_lo",)),
    "ge": ("{hi} >= ?", ("q_lo",)),
    "le": ("{lo} <= ?", ("q_hi",)),
    "sa": ("{lo} > ?", ("q_hi",)),
    "eb": ("{hi} < ?", ("q_lo",)),
    # within 10% of the gap to now, at least a day
    "ap": ("({lo} <= ? AND {hi} >= ?)", ("ap_hi", "ap_lo")),
}


def date(value: str, where: str, lo: str = "lo", hi: str = "hi") -> Sql:
    """A date condition over the columns `lo`/`hi` (both `lu_us` for _lastUpdated)."""
    prefix, text = split_prefix(value, DATE_PREFIXES, where)
    q_lo, q_hi = date_range(text, where)
    gap = max(abs(time.time_ns() // 1000 - q_lo) // 10, 86_400_000_000)
    bounds = {"q_lo": q_lo, "q_hi": q_hi, "ap_lo": q_lo - gap, "ap_hi": q_hi + gap}
    template, names = _DATE_CONDITIONS[prefix]
    return template.format(lo=lo, hi=hi), [bounds[n] for n in names]


def _decimal(text: str, where: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise invalid(f"'{text[:40]}' is not a number", where) from None
    if not d.is_finite():
        raise invalid(f"'{text[:40]}' is not a number", where)
    return d


def number(value: str, where: str) -> Sql:
    prefix, text = split_prefix(value, NUMBER_PREFIXES, where)
    d = _decimal(text, where)
    exponent = d.as_tuple().exponent
    half = Decimal(5) * Decimal(10) ** (int(exponent) - 1)  # implied precision: 100 = [99.5, 100.5)
    v, lo, hi = float(d), float(d - half), float(d + half)
    conditions = {
        "eq": ("value >= ? AND value < ?", [lo, hi]),
        "ne": ("NOT (value >= ? AND value < ?)", [lo, hi]),
        "gt": ("value > ?", [v]),
        "lt": ("value < ?", [v]),
        "ge": ("value >= ?", [v]),
        "le": ("value <= ?", [v]),
        "ap": ("value >= ? AND value <= ?", [v - abs(v) * 0.1, v + abs(v) * 0.1]),
    }
    return conditions[prefix]


def quantity(value: str, where: str) -> Sql:
    """`[prefix]number|system|code` (system and code optional)."""
    parts = value.split("|")
    sql, args = number(parts[0], where)
    if len(parts) == 3:
        if parts[1]:
            sql, args = f"{sql} AND system = ?", [*args, parts[1]]
        if parts[2]:
            sql, args = f"{sql} AND code = ?", [*args, parts[2]]
    elif len(parts) != 1:
        raise invalid("a quantity is [prefix]number|system|code", where)
    return sql, args
