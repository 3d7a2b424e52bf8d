"""Wire formats: parse request bodies and render responses as FHIR JSON (XML added by xml.py).

Stored canonical bytes go out unchanged unless the caller asked for a transformation
(`_pretty`, `_elements`, `_summary`, XML).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import Category, FhirError, invalid

JSON = "application/fhir+json"
XML = "application/fhir+xml"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir", "json")
XML_TYPES = ("application/fhir+xml", "application/xml", "application/xml+fhir", "text/xml", "xml")
PATCH_TYPES = ("application/json-patch+json",)


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def parse_json(raw: bytes, max_depth: int) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise invalid(
            f"the body is not valid JSON: {e.msg} (at character {e.pos})", "body"
        ) from None
    if not _depth_ok(value, max_depth):
        raise invalid(f"the body nests deeper than {max_depth} levels", "body")
    return value


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_body(content_type: str | None, raw: bytes, max_depth: int) -> Any:
    """A parsed resource (dict) from a JSON or XML body."""
    mt = media_type(content_type)
    if mt in XML_TYPES:
        from gateway.fhir_api import xml

        return xml.parse(raw, max_depth)
    if mt in JSON_TYPES or mt in PATCH_TYPES or mt in ("", "text/plain"):
        return parse_json(raw, max_depth)
    raise FhirError(Category.UNSUPPORTED_MEDIA, f"content type '{mt[:60]}' is not supported")


def negotiate(format_param: str | None, accept: str | None) -> str:
    """'json' or 'xml' from `_format` (wins) or the Accept header; JSON by default."""
    if format_param:
        f = format_param.strip().lower()
        if f in XML_TYPES or f.startswith(("application/fhir+xml", "application/xml")):
            return "xml"
        if f in JSON_TYPES or f.startswith(("application/fhir+json", "application/json")):
            return "json"
        raise FhirError(Category.NOT_ACCEPTABLE, f"_format '{f[:40]}' is not supported")
    for part in (accept or "").split(","):
        mt = media_type(part)
        if mt in XML_TYPES:
            return "xml"
        if mt in JSON_TYPES or mt in ("*/*", "application/*", ""):
            return "json"
    return "json"


def to_plain(body: bytes | dict[str, Any]) -> dict[str, Any]:
    """A plain dict for transformation (resolves embedded orjson.Fragments)."""
    return orjson.loads(body if isinstance(body, bytes) else orjson.dumps(body))


def render(body: bytes | dict[str, Any], fmt: str, pretty: bool) -> tuple[bytes, str]:
    if fmt == "xml":
        from gateway.fhir_api import xml

        return xml.render(to_plain(body), pretty), XML + "; charset=utf-8"
    if isinstance(body, bytes) and not pretty:
        return body, JSON + "; charset=utf-8"
    opts = orjson.OPT_INDENT_2 if pretty else 0
    # Pretty output must re-read embedded stored bytes (orjson.Fragment is emitted verbatim).
    data = to_plain(body) if pretty or isinstance(body, bytes) else body
    return orjson.dumps(data, option=opts), JSON + "; charset=utf-8"
