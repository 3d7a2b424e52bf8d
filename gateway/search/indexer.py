"""Index extraction on write: every stored version gets its search-index rows from here.

Plans (walker + converter per parameter) are compiled once per resource type and cached; this
runs inside the write transaction, so it must stay fast and must never raise on odd data or
touch the database.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from gateway.search.extract import CONVERTERS
from gateway.search.paths import Walker, compile_expression
from gateway.search.registry import indexed
from gateway.storage.base import IndexRows

Converter = Callable[[str, list[Any], IndexRows], None]


@cache
def plan(resource_type: str) -> tuple[tuple[str, Walker, Converter], ...]:
    """(code, walker, converter) for each indexed parameter of a type."""
    out = []
    for sp in indexed(resource_type):
        converter = CONVERTERS.get(sp.type)
        if converter is not None:
            out.append((sp.code, compile_expression(sp.expression, resource_type), converter))
    return tuple(out)


def index_rows(resource: dict[str, Any]) -> IndexRows:
    """All index rows of one resource (empty for a type we do not serve)."""
    rows = IndexRows()
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return rows
    for code, walk, convert in plan(rtype):
        values = walk(resource)
        if values:
            convert(code, values, rows)
    return rows
