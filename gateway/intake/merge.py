"""ADT^A40 (merge patient): the retired Patient (MRG-1) marked inactive and `replaced-by` the
survivor (PID-3), the survivor `replaces` it, and every plan resource pointing at the retired one
(CarePlan, CareTeam, Task, Consent, ServiceRequest, Goal, QuestionnaireResponse, ...) re-pointed
to the survivor, in ONE transaction with its Provenance. Already merged and nothing left to
re-point: no writes (the same merge twice merges once, even with a new MSH-10).

Merges never chain or loop: a survivor (PID-3) that a merge has retired, or a retired patient
(MRG-1) already `replaced-by` another survivor, is AE naming that field.

Rule (decided here, issue 5): both Patients must be visible to the sending record system (found
by HETU through its disclosure gate; else AE naming PID-3 or MRG-1). The re-pointing then covers
EVERY resource that refers to the retired Patient, also those the record system may not see (a
social-welfare plan): identity maintenance is the register keeper's duty, and a merge that left
part of a client's plans on a retired identity would split the client. So the writes run with
authority "patient-merge" (the generic write rules are not applied), nothing of the hidden
resources is disclosed to the sender (its ACK says AA and nothing more), and each write is
audited under the sender and covered by the Provenance. Every write is If-Match its stored
version: a concurrent change makes the merge fail (AE) and the sender resends it.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.hl7v2.builders import merge
from adapters.hl7v2.builders.patient import HETU_SYSTEM
from adapters.hl7v2.errors import Hl7Error
from gateway.coordination.common import UPDATE, provenance_entry, put, search_visible
from gateway.intake.inbound import Inbound, Writes
from gateway.storage.base import StoredVersion

AUTHORITY = "patient-merge"
MAX_REFERRERS = 10_000  # a client has tens of plan resources; more is no client of ours
_CHUNK = 500


def merge_patients(inbound: Inbound) -> Writes:
    target_hetu, source_hetu = merge.hetus(inbound.message)
    target = _patient(inbound, target_hetu, "PID", 3)
    source = _patient(inbound, source_hetu, "MRG", 1)
    source_ref, target_ref = f"Patient/{source.id}", f"Patient/{target.id}"
    source_body, target_body = orjson.loads(source.body), orjson.loads(target.body)
    _check_chain(source_body, target_body)
    writes: list[tuple[dict[str, Any], StoredVersion]] = []
    for sv in _referrers(inbound, source.id):
        changed = merge.repointed(orjson.loads(sv.body), source_ref, target_ref)
        if changed is not None:
            writes.append((changed, sv))
    if not merge.is_merged(source_body, target_body):
        writes.append((merge.retired(source_body, target_ref), source))
        writes.append((merge.surviving(target_body, source_ref), target))
    if not writes:
        return Writes([], AUTHORITY)
    entries = [put(resource, if_match=str(sv.version)) for resource, sv in writes]
    targets = [f"{sv.resource_type}/{sv.id}/_history/{sv.version + 1}" for _, sv in writes]
    provenance = provenance_entry(inbound.req, targets, UPDATE, "patient merge (ADT^A40)")
    return Writes([*entries, provenance], AUTHORITY)


def _check_chain(source: dict[str, Any], target: dict[str, Any]) -> None:
    """Merges never chain or loop: the survivor must not itself be retired (AE naming PID-3),
    and a patient already retired into ANOTHER survivor is not retired again (AE naming MRG-1).
    The same pair merged again passes (a no-op, or the re-pointing of what is left)."""
    if merge.is_retired(target):
        raise Hl7Error("conflict", "PID-3 names a patient retired by an earlier merge", "PID", 3)
    if any(ref != f"Patient/{target['id']}" for ref in merge.replaced_by(source)):
        raise Hl7Error("conflict", "MRG-1 names a patient merged into another one", "MRG", 1)


def _patient(inbound: Inbound, hetu: str, segment: str, field: int) -> StoredVersion:
    """The stored Patient of a HETU, which the sender must see (writes start from the stored
    version, never from a masked view of it)."""
    found = _visible(inbound, hetu)
    if len(found) != 1:
        problem = "names no patient known" if not found else "names several patients"
        raise Hl7Error("not-found", f"{segment}-{field} {problem}", segment, field)
    with inbound.svc.repo.reader() as session:
        sv = session.current("Patient", found[0])
    if sv is None or sv.deleted:
        raise Hl7Error("not-found", f"{segment}-{field} names no patient known", segment, field)
    return sv


def _visible(inbound: Inbound, hetu: str) -> list[str]:
    shown = search_visible(
        inbound.svc, inbound.req, "Patient", [("identifier", f"{HETU_SYSTEM}|{hetu}")], limit=2
    )
    return [str(p["id"]) for p in shown]


def _referrers(inbound: Inbound, patient_id: str) -> list[StoredVersion]:
    """Every live resource whose indexed references name Patient/`patient_id` (read from
    storage, not through the gate: see the module's rule)."""
    with inbound.svc.repo.reader() as session:
        rows = session.query(
            "SELECT DISTINCT res_type, res_id FROM sp_reference "
            "WHERE target_type = 'Patient' AND target_id = ?",
            (patient_id,),
        )
        if len(rows) > MAX_REFERRERS:
            raise Hl7Error("conflict", "the retired patient has too many records to merge")
        keys = sorted((str(t), str(i)) for t, i in rows)
        return [
            sv
            for start in range(0, len(keys), _CHUNK)
            for sv in session.current_many(keys[start : start + _CHUNK])
        ]
