"""ADT^A04 (register) and ADT^A08 (update patient information) -> the Patient, created or updated
by its HETU, through the sender's ordinary write rules (no authority: the record system writes
the Patient as any organisation would, and holds what it creates).

The stored Patient is found by its HETU identifier (whatever its id: one created over REST or by
the samples has no pseudonymous id) and updated in place, If-Match its stored version (a change
meanwhile: AE, the sender resends). A PID says little about a person: only the elements the
mapping lists as `replaced-from-message` and the HETU entry are replaced, so merge state,
security labels (turvakielto) and what other organisations recorded are never wiped by a PUT.
A Patient retired by a merge is not updated (AE naming PID-3): the rule is to update the
surviving patient. No match: the conditional update creates it under its pseudonymous id.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.hl7v2.builders import merge, patient
from adapters.hl7v2.convert import to_bundle
from adapters.hl7v2.errors import Hl7Error
from gateway.coordination.common import put
from gateway.intake.inbound import Inbound, Writes
from gateway.storage.base import StoredVersion
from mappings import hl7v2_event


def register_or_update(inbound: Inbound) -> Writes:
    """The event's mapping (mappings/hl7v2/ADT_A0x.json) as transaction entries."""
    mapping = hl7v2_event(inbound.message.event) or {}
    entries = to_bundle(inbound.message, inbound.ids)["entry"]
    replaced = mapping.get("replaced-from-message", [])
    return Writes(
        [
            _onto_stored(inbound, entry, spec, replaced)
            for entry, spec in zip(entries, mapping["builders"], strict=True)
        ]
    )


def _onto_stored(
    inbound: Inbound, entry: dict[str, Any], spec: dict[str, Any], replaced: list[str]
) -> dict[str, Any]:
    """The entry as an update of the stored resource matching its identifier, if there is one."""
    resource = entry["resource"]
    where = (spec["segment"], spec.get("field", 3))
    stored = _stored(inbound, resource, spec["identifier"], where)
    if stored is None:
        return entry
    body = orjson.loads(stored.body)
    if merge.is_retired(body):
        raise Hl7Error(
            "conflict",
            f"{where[0]}-{where[1]} names a patient retired by a merge; update the survivor",
            *where,
        )
    return put(patient.updated(body, resource, replaced), if_match=str(stored.version))


def _stored(
    inbound: Inbound, resource: dict[str, Any], system: str, where: tuple[str, int]
) -> StoredVersion | None:
    """The live stored resource with the identifier `system` of `resource` (never a masked
    view: nothing is disclosed). One the sender may not see is refused, never duplicated."""
    value = next(i["value"] for i in resource["identifier"] if i.get("system") == system)
    rtype, field = resource["resourceType"], f"{where[0]}-{where[1]}"
    svc = inbound.svc
    with svc.repo.reader() as session:
        keys = svc.search.match_keys(session, rtype, [("identifier", f"{system}|{value}")], None, 2)
        if len(keys) > 1:
            raise Hl7Error("conflict", f"{field} names several patients", *where)
        if keys and not inbound.req.gate.visible_keys(session, keys):
            raise Hl7Error("refused", f"{field} names a patient not shared with the sender", *where)
        sv = session.current(*keys[0]) if keys else None
    return sv if sv is not None and not sv.deleted else None
