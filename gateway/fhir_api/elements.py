"""`_elements` and `_summary` (http://hl7.org/fhir/R4/search.html#elements, #summary): the
reduced view of a stored resource that a caller asked for.

Works on stored canonical JSON bytes and returns a new dict; it must never change what is stored,
and marks every reduced resource with the SUBSETTED tag so nobody mistakes it for the whole.
"""

from __future__ import annotations

from typing import Any

import orjson

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
# Always kept: what makes a resource identifiable and processable.
MANDATORY = ("resourceType", "id", "meta")


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    resource["meta"] = meta
    return resource


def subset(body: bytes, elements: list[str]) -> dict[str, Any]:
    """Keep the mandatory and the listed top-level elements (`Type.element` also accepted)."""
    resource = orjson.loads(body)
    wanted = {e.split(".", 1)[1] if "." in e else e for e in elements}
    kept = {k: v for k, v in resource.items() if k in MANDATORY or k in wanted}
    return _tagged(kept)


def summary(body: bytes, mode: str) -> dict[str, Any] | bytes:
    """`_summary=text` keeps text (and mandatory); `data` drops the narrative; `false` = all."""
    if mode in ("false", "true"):
        return body  # `true` needs each element's isSummary flag; served in full (reported)
    resource = orjson.loads(body)
    if mode == "text":
        kept = {k: v for k, v in resource.items() if k in (*MANDATORY, "text")}
        return _tagged(kept)
    if mode == "data":
        resource.pop("text", None)
        return _tagged(resource)
    return body
