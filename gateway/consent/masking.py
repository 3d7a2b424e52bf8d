"""What a non-custodian may see of a TURVAKIELTO (non-disclosure) client's plan resources.

The Patient itself is never shown to them (decisions.py). In the plan resources they may see
under consent, the client's identity is removed: the narrative (`text`, which repeats names),
`display` and `identifier` of every reference to the client, every Identifier in the HETU
system wherever it sits, and contained Patients. `meta.security` gains v3 REDACTED (R4
security-labels.html, integrity labels) so the receiver knows. Returns new dicts and never
changes its input. Free text the client or a worker wrote (Goal.description, notes) is content,
not identity, and is shown as it is.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from gateway.consent.records import reference_key
from gateway.consent.vocabulary import HETU_SYSTEM, REDACTED

_DROP = object()


def mask(resource: Mapping[str, Any], clients: Collection[str]) -> dict[str, Any]:
    """A copy of `resource` with the identity of these protected clients removed."""
    masked = _walk(resource, frozenset(clients))
    masked.pop("text", None)
    if "contained" in masked:
        masked["contained"] = [c for c in masked["contained"] if not _is_patient(c)]
        if not masked["contained"]:
            del masked["contained"]
    meta = dict(masked.get("meta") or {})
    meta["security"] = [*(meta.get("security") or []), dict(REDACTED)]
    masked["meta"] = meta
    return masked


def _walk(value: Mapping[str, Any], clients: frozenset[str]) -> dict[str, Any]:
    key = reference_key(value)
    is_client = key is not None and key[0] == "Patient" and key[1] in clients
    out: dict[str, Any] = {}
    for name, item in value.items():
        if is_client and name in ("display", "identifier"):
            continue
        kept = _value(item, clients)
        if kept is not _DROP and kept != []:
            out[name] = kept
    return out


def _value(item: Any, clients: frozenset[str]) -> Any:
    """The masked value; _DROP for a HETU Identifier (wherever it sits: identifier, value[x])."""
    if isinstance(item, Mapping):
        return _DROP if item.get("system") == HETU_SYSTEM else _walk(item, clients)
    if isinstance(item, list):
        return [v for v in (_value(i, clients) for i in item) if v is not _DROP]
    return item


def _is_patient(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "Patient"
