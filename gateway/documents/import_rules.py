"""Who may import a CDA plan document, and what its transaction may write (rule `cda-custodian`).

A document is filed by its custodian, the register keeper (*rekisterinpitäjä*) whose record it
is: the caller's organisation must carry the SOTE organisation OID the document names as its
custodian (ClinicalDocument/custodian), else 403. The import then runs as one transaction under
that domain rule (common.apply with authority), because a plan document legitimately names other
organisations' professionals and responsibilities, which the generic write rules would refuse
in the importer's name (PractitionerRole.organization, requester). In exchange this module
checks what those rules would protect:

- the client: a Patient with the document's HETU that exists but is hidden from the caller is a
  403 (never a second identity for the same person);
- records: a plan resource the document's ids name that is already stored must be the caller's
  to write (a holder of it, or a custodian of its client), else 403;
- the directory: an Organization, Practitioner or PractitionerRole already stored is reused as
  it is, never overwritten by a document;
- custody: what the import creates without a custodian extension is stamped with the caller's
  organisation (as rule 2c of consent/writes.py stamps a REST create);
- a partner's work: a stored Task keeps its work state (writes.TASK_WORK_STATE: status,
  statusReason, businessStatus, output, note, executionPeriod, lastModified): the document is
  the requester's view, not the authority on what the owner has done (rule 5 of writes.py);
- a merged client: a document whose client (HETU) is a Patient retired by a merge (active
  false, link replaced-by) is a 409 (`client-merged`), never filed on the retired record;
- coordination: the write guards of gateway/coordination/guards.py (one open coordinator, a
  coordinator changed only by the operations), import_guards.py.

The checks read storage only through the gate's decisions; nothing here is disclosed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from adapters.cda.convert import CdaImport
from gateway.consent import writes
from gateway.consent.decisions import client_custodians
from gateway.consent.vocabulary import CUSTODIAN_EXTENSION, DIRECTORY_TYPES, SOTE_SYSTEM
from gateway.coordination.common import conflict, read_visible, refuse
from gateway.documents import import_guards
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, Services
from gateway.storage.base import Session

RULE = "cda-custodian"
Entry = dict[str, Any]


# -- who imports --------------------------------------------------------------------------------
def caller_oids(svc: Services, req: FhirRequest) -> set[str]:
    """The SOTE OIDs of the calling organisation (its Organization in the directory)."""
    assert req.caller is not None
    try:
        org = read_visible(svc, req, "Organization", req.caller.organization)
    except FhirError:
        return set()
    return {
        str(i.get("value"))
        for i in org.get("identifier") or []
        if isinstance(i, dict) and i.get("system") == SOTE_SYSTEM and i.get("value")
    }


def check_custodian(svc: Services, req: FhirRequest, imported: CdaImport) -> None:
    """403 (audited) unless the caller is the document's custodian organisation."""
    if req.caller is None:  # auth off: no caller, no rule (README: unsafe mode)
        return
    custodian = imported.custodian_oid
    if custodian is None or custodian not in caller_oids(svc, req):
        raise refuse(
            RULE,
            "only the document's custodian organisation (register keeper) imports it",
            "ClinicalDocument.custodian",
            req,
        )


def check_scopes(req: FhirRequest, entries: list[Entry]) -> None:
    """403 unless the token allows creating (and, for PUT, updating) every type written."""
    if req.caller is None:
        return
    for entry in entries:
        request = entry.get("request") or {}
        rtype = str(request.get("url", "")).split("/")[0].split("?")[0]
        letters = ("c", "u") if request.get("method") == "PUT" else ("c",)
        for letter in letters:
            if not req.caller.permits(rtype, letter):
                raise FhirError(
                    Category.FORBIDDEN,
                    f"the access token's scopes do not allow '{letter}' on {rtype[:40]}",
                )


# -- what the transaction writes ------------------------------------------------------------------
def prepared(svc: Services, req: FhirRequest, entries: list[Entry]) -> list[Entry]:
    """`entries` (the adapter's transaction entries) checked and stamped for the caller."""
    org = req.caller.organization if req.caller is not None else None
    with svc.repo.reader() as session:
        out = []
        for entry in entries:
            method = (entry.get("request") or {}).get("method")
            if method == "POST":
                _check_client_visible(svc, req, session, entry)
            elif method == "PUT":
                entry, kept = _checked_put(req, session, entry)
                if kept:  # a stored directory entry, written back as it is
                    out.append(entry)
                    continue
            out.append(_stamped(entry, org))
        import_guards.check(svc, req, session, out)
    return out


def _check_client_visible(svc: Services, req: FhirRequest, session: Session, entry: Entry) -> None:
    """A conditional create's match that exists but is hidden from the caller is a 403: the
    import would otherwise make a second record of the same person (or directory entry)."""
    criteria = (entry.get("request") or {}).get("ifNoneExist")
    if req.caller is None or not isinstance(criteria, str) or not criteria:
        return
    rtype = str(entry["request"].get("url", "")).split("?")[0]
    params = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
    stored = svc.search.match_keys(session, rtype, params, None, 2)
    if stored and not req.gate.visible_keys(session, stored):
        raise refuse(
            RULE,
            f"the document's {rtype} is held by another organisation and not shared with you",
            rtype,
            req,
        )
    if rtype == "Patient" and any(_retired(session, key) for key in stored):
        raise conflict(
            "client-merged",
            "the document's client (HETU) is a record retired by a merge: file it on the "
            "record that replaced it",
            "ClinicalDocument.recordTarget",
        )


def _retired(session: Session, key: tuple[str, str]) -> bool:
    """A Patient retired by a merge: inactive and replaced by another record."""
    sv = session.current(*key)
    if sv is None or sv.deleted:
        return False
    patient = orjson.loads(sv.body)
    links = patient.get("link") or []
    replaced = any(isinstance(x, dict) and x.get("type") == "replaced-by" for x in links)
    return patient.get("active") is False and replaced


def _checked_put(req: FhirRequest, session: Session, entry: Entry) -> tuple[Entry, bool]:
    """A PUT over a stored resource: a directory entry is kept as stored (True); a plan
    resource must be the caller's to write."""
    resource = entry.get("resource") or {}
    rtype, rid = str(resource.get("resourceType")), str(resource.get("id"))
    sv = session.current(rtype, rid)
    if sv is None or sv.deleted:
        return entry, False
    stored = orjson.loads(sv.body)
    if rtype in DIRECTORY_TYPES:
        return {**entry, "resource": writes.without_volatile(stored)}, True
    if req.caller is not None and not _may_write(req, session, stored):
        raise refuse(
            RULE,
            f"the document's {rtype} is stored and held by another organisation",
            rtype,
            req,
            what=f"{rtype}/{rid}",
        )
    if rtype == "Task":
        return {**entry, "resource": _work_state_kept(stored, resource)}, False
    return entry, False


# What of a stored Task the owner changes as it does the work (meta is the server's).
WORK_STATE = tuple(sorted(writes.TASK_WORK_STATE - {"meta"}))


def _work_state_kept(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The document's Task with the stored Task's work state: importing the document again,
    or a new version of it, never reverts what the owner has done."""
    out = {k: v for k, v in new.items() if k not in WORK_STATE}
    out.update({k: stored[k] for k in WORK_STATE if k in stored})
    return out


def _may_write(req: FhirRequest, session: Session, stored: dict[str, Any]) -> bool:
    """The caller sees `stored` and holds it for writing, or is a custodian of its clients."""
    assert req.caller is not None
    if not req.gate.decide(session, stored).allowed:
        return False
    ctx = req.gate.context(session)
    org = req.caller.organization
    if org in writes.write_holders(stored, ctx):
        return True
    clients = ctx.clients(stored)
    return bool(clients) and all(org in client_custodians(c) for c in clients)


def _stamped(entry: Entry, org: str | None) -> Entry:
    """The entry's resource with the caller as custodian when it names no custodian itself
    (deterministic: the same document always gives the same content)."""
    resource = entry.get("resource")
    if org is None or not isinstance(resource, dict) or _has_custodian(resource):
        return entry
    return {**entry, "resource": writes.stamp_custodian(resource, org)}


def _has_custodian(resource: dict[str, Any]) -> bool:
    return any(
        isinstance(e, dict) and e.get("url") == CUSTODIAN_EXTENSION
        for e in resource.get("extension") or []
    )
