"""ADT^A04 (register) and ADT^A08 (update patient information) -> the Patient, created or updated
by its HETU (conditional update), through the sender's ordinary write rules (no authority: the
record system writes the Patient as any organisation would, and holds what it creates).

A PID carries no merge state: the elements the mapping lists as `kept-from-stored` (`active`,
`link`: set by ADT^A40) are carried over from the stored Patient, so an update of a retired
identity does not undo its merge.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.hl7v2.convert import to_bundle
from gateway.intake.inbound import Inbound, Writes
from mappings import hl7v2_event


def register_or_update(inbound: Inbound) -> Writes:
    """The event's mapping (mappings/hl7v2/ADT_A0x.json) as transaction entries."""
    entries = to_bundle(inbound.message, inbound.ids)["entry"]
    kept = (hl7v2_event(inbound.message.event) or {}).get("kept-from-stored", [])
    for entry in entries:
        resource = entry["resource"]
        stored = _stored(inbound, resource["resourceType"], resource["id"]) if kept else None
        for name in kept:
            if stored is not None and name in stored and name not in resource:
                resource[name] = stored[name]
    return Writes(entries)


def _stored(inbound: Inbound, resource_type: str, id: str) -> dict[str, Any] | None:
    """The stored version the update starts from (never a masked view: nothing is disclosed)."""
    with inbound.svc.repo.reader(consistent=False) as session:
        sv = session.current(resource_type, id)
    return orjson.loads(sv.body) if sv is not None and not sv.deleted else None
