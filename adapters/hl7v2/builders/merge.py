"""ADT^A40 (merge) -> what the merge changes, as pure functions over resources: which HETUs
(PID-3 survives, MRG-1 is retired; mappings/hl7v2/ADT_A40.json), the two Patients' links
(FHIR R4 patient.html#links: the retired one `replaced-by`, inactive; the survivor `replaces`)
and a resource re-pointed from the retired Patient to the survivor. No storage, no logging.
"""

from __future__ import annotations

import copy
from typing import Any

from adapters.hl7v2.builders.patient import hetu_of
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import Message
from mappings import load


def mapping() -> dict[str, Any]:
    return load("hl7v2/ADT_A40.json")


def hetus(message: Message) -> tuple[str, str]:
    """(surviving HETU from PID-3, retired HETU from MRG-1). Raises Hl7Error naming the segment
    and field when one is missing or both are the same person."""
    spec = mapping()
    found = []
    for side in ("target", "source"):
        name, field = spec[side]["segment"], spec[side]["field"]
        segment = message.segment(name)
        if segment is None:
            raise Hl7Error("missing-segment", f"the message has no {name} segment", name)
        found.append(hetu_of(segment, field))
    if found[0] == found[1]:
        raise Hl7Error("invalid-value", "MRG-1 names the same person as PID-3", "MRG", 1)
    return found[0], found[1]


def retired(source: dict[str, Any], target_ref: str) -> dict[str, Any]:
    """The retired Patient: inactive, `replaced-by` the survivor (other links kept)."""
    out = _without_meta(source)
    out["active"] = False
    out["link"] = _with_link(out.get("link"), target_ref, mapping()["source-link"])
    return out


def surviving(target: dict[str, Any], source_ref: str) -> dict[str, Any]:
    """The surviving Patient: `replaces` the retired one (other links kept)."""
    out = _without_meta(target)
    out["link"] = _with_link(out.get("link"), source_ref, mapping()["target-link"])
    return out


def is_merged(source: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether both Patients already say so (then a merge changes nothing in them)."""
    s, t = f"Patient/{source['id']}", f"Patient/{target['id']}"
    return (
        source.get("active") is False
        and _has_link(source, t, mapping()["source-link"])
        and _has_link(target, s, mapping()["target-link"])
    )


def replaced_by(patient: dict[str, Any]) -> list[str]:
    """The references of a Patient's `replaced-by` links (empty: no merge retired it)."""
    kind = mapping()["source-link"]
    return [
        str((link.get("other") or {}).get("reference"))
        for link in patient.get("link") or []
        if isinstance(link, dict) and link.get("type") == kind
    ]


def is_retired(patient: dict[str, Any]) -> bool:
    """Whether a merge retired this Patient: inactive and `replaced-by` another."""
    return patient.get("active") is False and bool(replaced_by(patient))


def repointed(resource: dict[str, Any], source_ref: str, target_ref: str) -> dict[str, Any] | None:
    """A copy of `resource` with every Reference to `source_ref` (relative, or absolute ending
    in it) made `target_ref`; None when nothing refers to it or its type is not re-pointed
    (history: AuditEvent, Provenance; Patients are linked instead)."""
    if resource.get("resourceType") in mapping()["not-repointed"]:
        return None
    out = _without_meta(resource)
    return out if _rewrite(out, source_ref, target_ref) else None


def _rewrite(node: Any, source_ref: str, target_ref: str) -> bool:
    changed = False
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and (ref == source_ref or ref.endswith("/" + source_ref)):
            node["reference"] = target_ref
            changed = True
        for key, value in node.items():
            if key != "reference" and isinstance(value, dict | list):
                changed = _rewrite(value, source_ref, target_ref) or changed
    elif isinstance(node, list):
        for item in node:
            changed = _rewrite(item, source_ref, target_ref) or changed
    return changed


def _with_link(links: Any, other: str, kind: str) -> list[dict[str, Any]]:
    kept = [
        link
        for link in (links if isinstance(links, list) else [])
        if (link.get("other") or {}).get("reference") != other
    ]
    return [*kept, {"other": {"reference": other}, "type": kind}]


def _has_link(patient: dict[str, Any], other: str, kind: str) -> bool:
    return any(
        (link.get("other") or {}).get("reference") == other and link.get("type") == kind
        for link in patient.get("link") or []
        if isinstance(link, dict)
    )


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """A deep copy without the server's meta.versionId/lastUpdated (storage sets them)."""
    out = copy.deepcopy(resource)
    meta = out.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        if meta:
            out["meta"] = meta
        else:
            out.pop("meta")
    return out
