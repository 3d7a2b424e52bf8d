"""Parse search request parameters into a `Query`: criteria, result parameters and what was ignored.

Parsing only: nothing here runs SQL. Unknown parameters are collected (lenient) or rejected
(`Prefer: handling=strict`); invalid values of known parameters always raise a 400 naming the
parameter (http://hl7.org/fhir/R4/search.html#errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import invalid
from gateway.fhir_api.context import digits
from gateway.search.registry import params_for

# Shape the response (handled in routes or by the engine), never criteria.
RESPONSE_PARAMS = ("_format", "_pretty", "_getpages", "_getpagesoffset")
INCLUDE_PARAMS = ("_include", "_revinclude")
# Every criterion, chain link and `_has` level nests one more subquery: bounded well inside what
# SQLite parses (its expression depth stops at 1000, its parser stack at about 6 nested `IN`s).
MAX_CRITERIA = 100
MAX_LINKS = 4


@dataclass
class Criterion:
    name: str  # as sent, e.g. "subject:Patient.name:exact"
    value: str


@dataclass
class Query:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    includes: list[tuple[str, bool]] = field(default_factory=list)  # (value, iterate)
    revincludes: list[tuple[str, bool]] = field(default_factory=list)
    count: int = 20
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    elements: list[str] = field(default_factory=list)
    summary: str | None = None
    total: str = "accurate"
    ignored: list[str] = field(default_factory=list)


def known(resource_type: str, name: str) -> bool:
    """Whether a criterion name starts with a parameter of the type (modifiers, chains aside)."""
    if name.startswith("_has:"):
        return True
    head = name.split(".", 1)[0].split(":", 1)[0]
    return head in params_for(resource_type)


def _count(value: str, maximum: int) -> int:
    count = digits(value, maximum)
    if count is None:
        raise invalid("_count must be a non-negative integer", "_count")
    return count


def _sort(value: str, resource_type: str) -> list[tuple[str, bool]]:
    keys = []
    for part in value.split(","):
        part = part.strip()
        desc = part.startswith("-")
        code = part[1:] if desc else part  # one "-" only: "--date" is not a sort key
        if code not in params_for(resource_type):
            raise invalid(f"_sort names unknown parameter '{code[:60]}'", "_sort")
        keys.append((code, desc))
    return keys


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}", name)
    return value


def _criterion(name: str, value: str, before: int) -> Criterion:
    if before >= MAX_CRITERIA:
        raise invalid(f"a search takes at most {MAX_CRITERIA} criteria", name[:60])
    if name.count(".") + name.count("_has:") > MAX_LINKS:
        raise invalid(f"chains and _has nest at most {MAX_LINKS} levels", name[:60])
    return Criterion(name, value)


def parse(
    resource_type: str, params: list[tuple[str, str]], default_count: int, max_count: int
) -> Query:
    q = Query(resource_type, count=default_count)
    for name, value in params:
        if "\x00" in name or "\x00" in value:
            # No stored value holds NUL, and PostgreSQL text cannot even be compared with one.
            raise invalid("a search parameter must not contain a NUL character", name[:60] or "?")
        base = name.split(":", 1)[0]
        if name in RESPONSE_PARAMS:
            continue
        if base in INCLUDE_PARAMS:
            iterate = name.endswith((":iterate", ":recurse"))
            target = q.includes if base == "_include" else q.revincludes
            target.extend((v, iterate) for v in value.split(",") if v)
        elif name == "_count":
            q.count = _count(value, max_count)
        elif name == "_sort":
            q.sort = _sort(value, resource_type)
        elif name == "_elements":
            q.elements = [e.strip() for e in value.split(",") if e.strip()]
        elif name == "_summary":
            q.summary = _choice(name, value, ("true", "false", "text", "data", "count"))
        elif name == "_total":
            q.total = _choice(name, value, ("none", "estimate", "accurate"))
        elif known(resource_type, name):
            q.criteria.append(_criterion(name, value, len(q.criteria)))
        else:
            q.ignored.append(name)
    return q
