"""`_elements` and `_summary` (http://hl7.org/fhir/R4/search.html#elements, #summary): the
reduced view of a stored resource that a caller asked for, on search and on read.

Works on stored canonical JSON bytes and returns a new dict; it must never change what is stored,
and marks every reduced resource with the SUBSETTED tag so nobody mistakes it for the whole.
Which elements are mandatory (min ≥ 1) or in the summary view (isSummary) comes from the R4
StructureDefinitions (fhir_profiles/core/summary.json), never from a hand-kept list.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from fhir_profiles import load
from gateway.errors import invalid

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
# Kept on every reduced resource: what makes it identifiable and processable.
ALWAYS = frozenset(("resourceType", "id", "meta"))
SUMMARY_MODES = ("true", "false", "text", "data", "count")


@cache
def _names(resource_type: str, kind: str) -> frozenset[str]:
    """Top-level element names of a type ('mandatory' or 'summary'); choices as `name[x]`."""
    return frozenset(load("core/summary.json").get(resource_type, {}).get(kind, ()))


def _wanted(key: str, names: frozenset[str]) -> bool:
    if key in names:
        return True
    # A choice element `deceased[x]` appears in JSON as `deceasedBoolean`, `deceasedDateTime`…
    # (`statusReason` is not a choice of `status`: only `[x]` names take a type suffix.)
    return any(key[i].isupper() and f"{key[:i]}[x]" in names for i in range(1, len(key)))


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    resource["meta"] = meta
    return resource


def _keep(resource: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    rtype = str(resource.get("resourceType"))
    names = names | _names(rtype, "mandatory")
    return _tagged({k: v for k, v in resource.items() if k in ALWAYS or _wanted(k, names)})


def subset(body: bytes, elements: list[str]) -> dict[str, Any]:
    """The mandatory and the listed top-level elements (`Type.element` also accepted)."""
    wanted = frozenset(e.split(".", 1)[1] if "." in e else e for e in elements)
    return _keep(orjson.loads(body), wanted)


def summary(body: bytes, mode: str) -> dict[str, Any] | bytes:
    """`true`: the isSummary elements; `text`: text and mandatory; `data`: all but the
    narrative; `false` (or anything else): the whole resource, unchanged."""
    if mode not in ("true", "text", "data"):
        return body
    resource = orjson.loads(body)
    if mode == "data":
        resource.pop("text", None)
        return _tagged(resource)
    rtype = str(resource.get("resourceType"))
    names = _names(rtype, "summary") if mode == "true" else frozenset(("text",))
    return _keep(resource, names)


def for_read(body: bytes, elements: str | None, summary_mode: str | None) -> bytes | dict[str, Any]:
    """The view a read or vread asked for with `_elements` / `_summary` (stored bytes if none)."""
    if elements:
        return subset(body, [e.strip() for e in elements.split(",") if e.strip()])
    if summary_mode:
        if summary_mode not in SUMMARY_MODES or summary_mode == "count":
            raise invalid("_summary on a read takes true, text, data or false", "_summary")
        return summary(body, summary_mode)
    return body
