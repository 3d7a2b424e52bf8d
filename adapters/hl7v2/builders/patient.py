"""PID (HL7 v2.5.1 ch. 3.4.2) -> a FHIR R4 Patient dict, keyed by the Finnish personal identity
code (HETU, OID 1.2.246.21). Pure; it never puts the HETU into the resource id and never logs.

Read: PID-3 (the HETU only), PID-5 name, PID-7 birth date, PID-8 sex, PID-11 address, PID-13/14
telecom. Codes go through the ConceptMaps of mappings/hl7v2/codes/, which say what is lossy.
"""

from __future__ import annotations

import copy
import re
from datetime import date
from typing import Any

from adapters.hl7v2.builders import translate
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import Segment
from adapters.ids import Ids

HETU_OID = "1.2.246.21"
HETU_SYSTEM = f"urn:oid:{HETU_OID}"
# DTM (v2.5.1 2A.22): YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]; only the date is kept
_DTM = re.compile(r"(\d{4})(\d{2})?(\d{2})?(?:\d{2,6}(?:\.\d{1,4})?)?(?:[+-]\d{4})?")


def build(pid: Segment, ids: Ids) -> dict[str, Any]:
    """The Patient of one PID segment, its id `ids.personal` of the HETU. Raises Hl7Error when
    PID-3 holds no HETU or PID-7 is no date."""
    hetu = hetu_of(pid)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id(ids, hetu),
        "identifier": [{"use": "official", "system": HETU_SYSTEM, "value": hetu}],
    }
    optional = {
        "name": _names(pid),
        "telecom": _telecoms(pid, 13) + _telecoms(pid, 14),
        "gender": translate("v2-0001-to-administrative-gender", pid.get(8)),
        "birthDate": _birth_date(pid.get(7)),
        "address": _addresses(pid),
    }
    patient.update({key: value for key, value in optional.items() if value})
    return patient


def updated(stored: dict[str, Any], built: dict[str, Any], replaced: list[str]) -> dict[str, Any]:
    """The stored Patient with only what a PID says replaced: each element of `replaced` the
    PID carries (`built`, from `build`) and its HETU identifier entry. Everything else (active,
    link, meta.security and tags, managingOrganization, other identifiers, extensions, ...) is
    kept. An element the PID leaves empty keeps its stored value (v2.5.1 2.5.3: a field not
    present leaves the old value unchanged). The server's versionId/lastUpdated are dropped."""
    out = copy.deepcopy(stored)
    stored_meta = out.pop("meta", None)
    meta = {
        k: v
        for k, v in (stored_meta if isinstance(stored_meta, dict) else {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    if meta:
        out["meta"] = meta
    out.update({name: built[name] for name in replaced if name in built})
    (hetu,) = [i for i in built["identifier"] if i.get("system") == HETU_SYSTEM]
    kept = out.get("identifier") if isinstance(out.get("identifier"), list) else []
    at = next((n for n, i in enumerate(kept) if _same_identifier(i, hetu)), None)
    out["identifier"] = [*kept, hetu] if at is None else [*kept[:at], hetu, *kept[at + 1 :]]
    return out


def _same_identifier(entry: Any, hetu: dict[str, Any]) -> bool:
    return (
        isinstance(entry, dict)
        and entry.get("system") == hetu["system"]
        and entry.get("value") == hetu["value"]
    )


def patient_id(ids: Ids, hetu: str) -> str:
    """The Patient id of a HETU: a keyed pseudonym (adapters/ids.py), never the HETU itself."""
    return ids.personal(HETU_SYSTEM, hetu)


def hetu_of(pid: Segment, field: int = 3) -> str:
    """CX-1 of the repetition of `field` (PID-3, MRG-1) whose assigning authority (CX-4, HD
    universal id) is the HETU OID. Other identifiers (e.g. the record system's MR number) are
    not read."""
    for rep in range(len(pid.repetitions(field))):
        if pid.get(field, rep, 4, 2) == HETU_OID and pid.get(field, rep, 1):
            return pid.get(field, rep, 1)
    raise Hl7Error(
        "missing-field",
        f"{pid.name}-{field} holds no identifier assigned by 1.2.246.21",
        pid.name,
        field,
    )


def _names(pid: Segment) -> list[dict[str, Any]]:
    names = []
    for rep in range(len(pid.repetitions(5))):  # XPN: family^given^further given^suffix^prefix
        name = {
            "use": translate("v2-0200-to-name-use", pid.get(5, rep, 7)),
            "family": pid.get(5, rep, 1),  # XPN-1.1 surname (FN-1)
            "given": _present(pid.get(5, rep, 2), pid.get(5, rep, 3)),
            "suffix": _present(pid.get(5, rep, 4)),
            "prefix": _present(pid.get(5, rep, 5)),
        }
        if name["family"] or name["given"]:
            names.append({key: value for key, value in name.items() if value})
    return names


def _birth_date(ts: str) -> str | None:
    """TS/DTM YYYY[MM[DD[time]]] -> FHIR date at the precision given; the time is dropped."""
    if not ts:
        return None
    match = _DTM.fullmatch(ts)
    text = "-".join(part for part in match.groups() if part) if match else ""
    try:
        date.fromisoformat(text if len(text) == 10 else f"{text}-01-01"[:10])
    except ValueError:
        raise Hl7Error("invalid-value", "PID-7 is not a date", "PID", 7) from None
    return text


def _addresses(pid: Segment) -> list[dict[str, Any]]:
    addresses = []
    for rep in range(len(pid.repetitions(11))):  # XAD: street^other^city^state^zip^country^type
        address = {
            "use": translate("v2-0190-to-address-use", pid.get(11, rep, 7)),
            "line": _present(pid.get(11, rep, 1), pid.get(11, rep, 2)),
            "city": pid.get(11, rep, 3),
            "state": pid.get(11, rep, 4),
            "postalCode": pid.get(11, rep, 5),
            "country": pid.get(11, rep, 6),
        }
        if any(value for key, value in address.items() if key != "use"):
            addresses.append({key: value for key, value in address.items() if value})
    return addresses


def _telecoms(pid: Segment, field: int) -> list[dict[str, Any]]:
    telecoms = []
    for rep in range(len(pid.repetitions(field))):  # XTN: number^use^equipment^email^…^^unformatted
        equipment = pid.get(field, rep, 3)
        # an empty XTN-3 means XTN-1 is a telephone number (v2.5.1 2A.89, XTN-1)
        system = translate("v2-0202-to-contact-point-system", equipment) or "phone"
        value = (
            pid.get(field, rep, 4)
            if system == "email"
            else pid.get(field, rep, 1) or pid.get(field, rep, 12)
        )
        if value:
            use = translate("v2-0201-to-contact-point-use", pid.get(field, rep, 2))
            telecom = {"system": system, "value": value, "use": use}
            telecoms.append({key: item for key, item in telecom.items() if item})
    return telecoms


def _present(*values: str) -> list[str]:
    return [value for value in values if value]
