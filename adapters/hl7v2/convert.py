"""An inbound HL7 v2 message -> a FHIR transaction Bundle, driven by the event's mapping file
(mappings/hl7v2/<EVENT>.json). Pure: the bundle is handed to the gateway's pipeline by its caller;
nothing here stores, logs or imports the gateway. Events without a mapping file are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from adapters.hl7v2.builders import patient
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import Message, Segment
from adapters.ids import Ids
from mappings import hl7v2_event

# resource name in a mapping file -> its builder (one per target resource, STYLE habit 3)
BUILDERS: dict[str, Callable[[Segment, Ids], dict[str, Any]]] = {"Patient": patient.build}


def to_bundle(message: Message, ids: Ids) -> dict[str, Any]:
    """The transaction Bundle for one message. Deterministic: the same message always gives the
    same bundle, and its conditional updates make importing it twice change nothing. Raises
    Hl7Error ("unsupported-event" for an event without a mapping; the builders' own codes)."""
    mapping = hl7v2_event(message.event)
    if mapping is None:
        raise Hl7Error("unsupported-event", "no mapping for MSH-9", "MSH", 9, sequence=1)
    interaction = INTERACTIONS.get(mapping["interaction"])
    if interaction is None:  # e.g. ADT^A40: a merge reads the store, it is no bundle mapping
        raise Hl7Error("unsupported-event", "MSH-9 maps to no bundle", "MSH", 9, sequence=1)
    entries = [_entry(message, spec, interaction, ids) for spec in mapping["builders"]]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _entry(
    message: Message, spec: dict[str, Any], interaction: Callable, ids: Ids
) -> dict[str, Any]:
    segment, sequence = _segment(message, spec["segment"])
    try:
        resource = BUILDERS[spec["resource"]](segment, ids)
    except Hl7Error as error:
        error.sequence = error.sequence or sequence
        raise
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": interaction(resource, spec),
    }


def _segment(message: Message, name: str) -> tuple[Segment, int]:
    """The first segment `name` and its 1-based position in the message."""
    for position, segment in enumerate(message.segments(), 1):
        if segment.name == name:
            return segment, position
    raise Hl7Error("missing-segment", f"the message has no {name} segment", name)


def _conditional_update(resource: dict[str, Any], spec: dict[str, Any]) -> dict[str, str]:
    """PUT Type?identifier=system|value (FHIR R4 3.1.0.4.3 conditional update): creates the
    resource when no match exists, updates the one match otherwise. The value is percent-encoded
    (a HETU's century sign may be "+", which a query would read as a space)."""
    system = spec["identifier"]
    value = next(i["value"] for i in resource["identifier"] if i.get("system") == system)
    url = f"{resource['resourceType']}?identifier={system}|{quote(value, safe='')}"
    return {"method": "PUT", "url": url}


# mapping "interaction" -> the Bundle.entry.request it makes
INTERACTIONS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, str]]] = {
    "create-or-update-by-identifier": _conditional_update,
}
