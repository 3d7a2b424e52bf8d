"""Bundle.entry.request.url: what a batch or transaction entry points at
(http://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.request.url).

Relative URLs (`Patient`, `Patient/1`, `Patient/1/_history/2`, `Patient?identifier=…`) and
absolute URLs on this server's base are accepted; this module never accepts a URL on another
server, and never looks anything up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from gateway.errors import invalid
from gateway.fhir_api.context import RESOURCE_TYPES, check_id, digits

# Response-shaping parameters, not criteria (routes.py handles them for plain requests).
_FORMAT_PARAMS = ("_format", "_pretty")


@dataclass
class Target:
    """The resource type, and an id (and version), or search/conditional criteria."""

    resource_type: str
    id: str | None = None
    vid: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)

    @property
    def conditional(self) -> bool:
        return self.id is None

    def query(self) -> str:
        return urlencode(self.params)


def parse_query(query: str, where: str, required: bool = False) -> list[tuple[str, str]]:
    params = [
        (k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in _FORMAT_PARAMS
    ]
    if required and not params:
        raise invalid(f"{where} needs search criteria", where)
    return params


def _relative(url: str, base: str, where: str) -> str:
    if url.startswith(base + "/"):
        return url[len(base) + 1 :]
    if "://" in url or url.startswith("urn:"):
        raise invalid(f"{where} must be relative or on this server's base ({base})", where)
    return url.lstrip("/")


def parse_url(url: str, base: str, method: str, where: str) -> Target:
    """The entry's target, checked against what `method` allows there."""
    path, _, query = _relative(url, base, where).partition("?")
    parts = path.split("/")
    resource_type = parts[0]
    if resource_type not in RESOURCE_TYPES:
        raise invalid(f"{where}: resource type '{resource_type[:60]}' is not served here", where)
    params = parse_query(query, where)
    if len(parts) == 1:
        return _type_level(resource_type, params, method, where)
    if len(parts) == 2:
        if query and method != "GET":
            raise invalid(f"{where}: {method} [type]/[id] takes no search criteria", where)
        if method == "POST":
            raise invalid(f"{where}: POST takes a type, not an id (the server assigns it)", where)
        return Target(resource_type, check_id(parts[1], where), params=params)
    if len(parts) == 4 and parts[2] == "_history" and method == "GET":
        vid = digits(parts[3])
        if vid is None:
            raise invalid(f"{where}: a version id is a positive integer", where)
        return Target(resource_type, check_id(parts[1], where), str(vid))
    raise invalid(f"{where}: '{method} {path[:80]}' is not a supported entry request", where)


def _type_level(
    resource_type: str, params: list[tuple[str, str]], method: str, where: str
) -> Target:
    if method == "POST" and params:
        raise invalid(f"{where}: a conditional create uses request.ifNoneExist", where)
    if method in ("PUT", "PATCH", "DELETE") and not params:
        raise invalid(f"{where}: {method} needs an id or search criteria", where)
    return Target(resource_type, params=params)
