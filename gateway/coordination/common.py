"""What every coordination workflow (`$`-operation) shares: its parameters in, its Parameters
out, reading and searching through the caller's disclosure gate, and applying its writes as one
FHIR transaction.

An operation never reads storage around the gate and never writes outside `apply`: what it
shows passed `Gate.disclose` and is audited, what it writes is validated, audited and
all-or-nothing like a REST transaction. READY (the helpers' marker that this API is in place).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

from gateway.consent.model import Decision, Reason, Verdict
from gateway.errors import Category, FhirError, Issue, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services, check_id
from gateway.fhir_api.interactions.bundle_envelope import read_bundle
from gateway.fhir_api.interactions.read import live_version
from gateway.fhir_api.interactions.transaction import run_transaction

# Query parameters that shape the answer, never an operation's input.
FORMAT_PARAMS = frozenset({"_format", "_pretty"})
_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})$")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
# Provenance.activity of an operation's writes (v3-DataOperation, as the per-write Provenance).
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
CREATE = {"system": DATA_OPERATION, "code": "CREATE"}
UPDATE = {"system": DATA_OPERATION, "code": "UPDATE"}
# What one operation works on at most per search (a client network has tens of resources; a
# follow-up report over a whole organisation thousands), and how many rows one SELECT loads.
MAX_MATCHES = 10_000
_CHUNK = 500
_TEXT_VALUES = ("valueString", "valueCode", "valueMarkdown", "valueUri", "valueId")


def where(name: str) -> str:
    """The path an error about parameter `name` names."""
    return f"Parameters.parameter[{name}]"


class Params:
    """An operation's input: a Parameters body and the query string, merged (FHIR R4
    operations.html: simple parameters may come in the URL)."""

    def __init__(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        self._items = items  # (name, the parameter element: value[x] / resource / part)

    @classmethod
    def of(cls, req: FhirRequest, allowed: Collection[str] | None = None) -> Params:
        """The request's parameters; with `allowed`, any other name is a 400 naming it."""
        items: list[tuple[str, dict[str, Any]]] = []
        body = req.resource
        if body is not None:
            if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
                raise invalid(
                    "an operation takes a Parameters resource as its body", "resourceType"
                )
            raw = body.get("parameter", [])
            if not isinstance(raw, list):
                raise invalid("Parameters.parameter must be a list", "Parameters.parameter")
            for i, p in enumerate(raw):
                if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                    raise invalid("each parameter needs a name", f"Parameters.parameter[{i}]")
                items.append((p["name"], p))
        for name, value in req.params:
            if name not in FORMAT_PARAMS:
                items.append((name, {"name": name, "_query": value}))
        if allowed is not None:
            for name, _ in items:
                if name not in allowed:
                    raise invalid(f"unknown parameter '{name[:60]}'", where(name[:60]))
        return cls(items)

    def all(self, name: str) -> list[dict[str, Any]]:
        """Every occurrence of `name` (the raw parameter elements)."""
        return [p for n, p in self._items if n == name]

    def _one(self, name: str, required: bool) -> dict[str, Any] | None:
        found = self.all(name)
        if len(found) > 1:
            raise invalid(f"parameter '{name}' is given more than once", where(name))
        if not found:
            if required:
                raise invalid(f"parameter '{name}' is required", where(name))
            return None
        return found[0]

    def str(self, name: str, required: bool = False) -> str | None:
        p = self._one(name, required)
        if p is None:
            return None
        for key in ("_query", *_TEXT_VALUES):
            if isinstance(p.get(key), str) and p[key].strip():
                return p[key].strip()
        raise invalid(f"parameter '{name}' takes a text value", where(name))

    def boolean(self, name: str, required: bool = False) -> bool | None:
        p = self._one(name, required)
        if p is None:
            return None
        value = p.get("valueBoolean", p.get("_query"))
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise invalid(f"parameter '{name}' takes true or false", where(name))

    def date(self, name: str, required: bool = False) -> str | None:
        """A FHIR date or dateTime, as given."""
        p = self._one(name, required)
        if p is None:
            return None
        value = next(
            (p[k] for k in ("_query", "valueDate", "valueDateTime", "valueInstant") if k in p), None
        )
        if isinstance(value, str) and (_DATE.match(value) or _DATETIME.match(value)):
            return value
        raise invalid(f"parameter '{name}' takes a date (YYYY-MM-DD) or dateTime", where(name))

    def ref(self, name: str, required: bool = False, types: Collection[str] = ()) -> str | None:
        """A local reference `Type/id` (valueReference, or the query text), of `types`."""
        p = self._one(name, required)
        if p is None:
            return None
        value = p.get("_query")
        if value is None and isinstance(p.get("valueReference"), dict):
            value = p["valueReference"].get("reference")
        found = _REFERENCE.match(value) if isinstance(value, str) else None
        if found is None:
            raise invalid(f"parameter '{name}' takes a reference such as Type/id", where(name))
        if types and found.group(1) not in types:
            raise invalid(f"parameter '{name}' refers to {' or '.join(types)}", where(name))
        return value

    def coding(self, name: str, required: bool = False) -> dict[str, str] | None:
        """A Coding (valueCoding, the first coding of a valueCodeableConcept, or `system|code`
        in the query)."""
        p = self._one(name, required)
        if p is None:
            return None
        if isinstance(p.get("_query"), str) and "|" in p["_query"]:
            system, code = p["_query"].split("|", 1)
            coding = {"system": system, "code": code}
        elif isinstance(p.get("valueCoding"), dict):
            coding = p["valueCoding"]
        elif isinstance(p.get("valueCodeableConcept"), dict):
            codings = p["valueCodeableConcept"].get("coding") or [{}]
            first = codings[0] if isinstance(codings, list) and codings else {}
            coding = first if isinstance(first, dict) else {}
        else:
            coding = {}
        if not (isinstance(coding.get("system"), str) and isinstance(coding.get("code"), str)):
            raise invalid(f"parameter '{name}' takes a Coding with system and code", where(name))
        return {k: v for k, v in coding.items() if k in ("system", "code", "display")}

    def resource(self, name: str, required: bool = False) -> dict[str, Any] | None:
        p = self._one(name, required)
        if p is None:
            return None
        if not isinstance(p.get("resource"), dict):
            raise invalid(f"parameter '{name}' takes a resource", where(name))
        return p["resource"]


# -- answers ------------------------------------------------------------------------------------
def part(name: str, **value: Any) -> dict[str, Any]:
    """One Parameters.parameter: `part("unit", valueCoding={...})`, `part("x", part=[...])`."""
    return {"name": name, **{k: v for k, v in value.items() if v is not None}}


def parameters(*parts: dict[str, Any] | Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A Parameters resource of the given parts (lists of parts are flattened)."""
    flat: list[dict[str, Any]] = []
    for p in parts:
        flat.extend([p] if isinstance(p, dict) else p)
    return {"resourceType": "Parameters", "parameter": flat}


def ok(body: dict[str, Any], status: int = 200) -> FhirResponse:
    return FhirResponse(status, body)


# -- reading through the gate -------------------------------------------------------------------
def read_visible(svc: Services, req: FhirRequest, resource_type: str, id: str) -> dict[str, Any]:
    """The current `resource_type/id` as the caller may see it (its stored meta.versionId
    included), the read audited; 404 when missing or hidden, 410 when deleted."""
    check_id(id, f"{resource_type}.id")
    with svc.repo.reader() as session:
        sv = live_version(session, resource_type, id, req.gate)
        shown = req.gate.disclose_one(session, sv)
    if shown is None:
        raise FhirError(Category.NOT_FOUND, f"{resource_type}/{id} is not known")
    req.gate.note_read(shown)
    return orjson.loads(shown.body)


def read_ref(svc: Services, req: FhirRequest, reference: str) -> dict[str, Any]:
    """`read_visible` of a local reference `Type/id`."""
    found = _REFERENCE.match(reference)
    if found is None:
        raise invalid(f"'{reference[:80]}' is not a local reference Type/id", "reference")
    return read_visible(svc, req, found.group(1), found.group(2))


def read_document(svc: Services, req: FhirRequest, id: str) -> dict[str, Any]:
    """A stored document (Composition) for `Composition/$document`.

    Documents are custodian-only (consent/vocabulary.DOCUMENT_TYPES): their stored text
    aggregates records under different consent rules. `$document` rebuilds one entry by entry
    through the gate (and withholds each narrative over a hidden entry), so a caller who may see
    the record the document summarises (`Composition.event.detail`, read through the gate: 404
    otherwise) gets the Composition to rebuild from, as the caller may be shown it (a protected
    client's identity masked). Only that use may call this."""
    check_id(id, "Composition.id")
    with svc.repo.reader() as session:
        sv = live_version(session, "Composition", id, req.gate)
        stored = orjson.loads(sv.body)
        decision = req.gate.decide(session, stored)
        composition = dict(req.gate.shown_as(session, stored))  # TURVAKIELTO masking
    if decision.allowed:
        return composition
    details = [
        d.get("reference")
        for event in composition.get("event") or []
        for d in (event.get("detail") or [])
        if isinstance(d, dict)
    ]
    summarised = [r for r in details if isinstance(r, str) and _REFERENCE.match(r)]
    if not summarised:
        raise FhirError(Category.NOT_FOUND, f"Composition/{id} is not known")
    read_ref(svc, req, summarised[0])  # 404 (and a denial on record) when that is hidden too
    return composition


def search_visible(
    svc: Services,
    req: FhirRequest,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    limit: int = MAX_MATCHES,
) -> list[dict[str, Any]]:
    """Every current `resource_type` matching `params` (search criteria) that the caller may
    see, as it may see it; the query is audited as one search page. More than `limit` matches
    is a 413 asking for narrower criteria: an operation never works on a silently cut list."""
    with svc.repo.reader() as session:
        keys = svc.search.match_keys(session, resource_type, list(params), req.gate, limit + 1)
        if len(keys) > limit:
            raise FhirError(
                Category.TOO_LARGE,
                f"more than {limit} {resource_type} resources match; narrow the request",
            )
        versions = [
            sv
            for start in range(0, len(keys), _CHUNK)
            for sv in session.current_many(keys[start : start + _CHUNK])
        ]
        shown = req.gate.disclose(session, versions)
    visible = [s for s in shown if s is not None]
    req.gate.note_query(resource_type, list(params), visible)
    return [orjson.loads(s.body) for s in visible]


# -- writing --------------------------------------------------------------------------------------
def apply(
    svc: Services,
    req: FhirRequest,
    entries: list[dict[str, Any]],
    authority: str | None = None,
) -> list[FhirResponse]:
    """Run `entries` (Bundle.entry items: `{"resource": ..., "request": {"method", "url",
    "ifMatch"?}}`) as ONE FHIR transaction of the caller: validated, audited, all-or-nothing.

    `authority` names the domain rule the operation has already checked (e.g.
    "handover-receiver"); the generic write rules (consent/writes.py) are then not applied to
    these entries, and the operation adds its own Provenance (`provenance_entry`).
    """
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    _, parsed = read_bundle(svc, bundle, req.base)
    previous, req.gate.authority = req.gate.authority, authority
    try:
        results = run_transaction(svc, req.base, parsed, req.gate)
    finally:
        req.gate.authority = previous
    return [r for r in results if isinstance(r, FhirResponse)]


def body_of(resp: FhirResponse) -> dict[str, Any]:
    """The resource of a write's response."""
    body = resp.body
    if isinstance(body, bytes):
        return orjson.loads(body)
    return orjson.loads(orjson.dumps(body)) if body is not None else {}


def put(resource: dict[str, Any], if_match: str | None = None) -> dict[str, Any]:
    """A transaction entry that writes `resource` at its id (If-Match its stored version)."""
    request: dict[str, Any] = {
        "method": "PUT",
        "url": f"{resource['resourceType']}/{resource['id']}",
    }
    if if_match is not None:
        request["ifMatch"] = f'W/"{if_match}"'
    return {"resource": resource, "request": request}


def version_of(resource: dict[str, Any]) -> str:
    """The stored meta.versionId of a resource read through `read_visible`."""
    return str((resource.get("meta") or {}).get("versionId", ""))


def next_version(resource: dict[str, Any]) -> str:
    """The versioned reference the next write of `resource` makes (`Type/id/_history/n+1`)."""
    v = int(version_of(resource) or 0) + 1
    return f"{resource['resourceType']}/{resource['id']}/_history/{v}"


def new_id() -> str:
    """A server-chosen id for a resource an operation creates (known before the write, so a
    Provenance in the same transaction can name its version 1)."""
    return str(uuid.uuid4())


def provenance_entry(
    req: FhirRequest,
    targets: list[str],
    activity: dict[str, str],
    reason: str | None = None,
) -> dict[str, Any]:
    """A Provenance (PUT at a new id) of an operation's writes: `targets` are the versioned
    references written, the author the acting PractitionerRole on behalf of the calling
    organisation (or the organisation), which holds the Provenance (custodian extension)."""
    from gateway.consent.vocabulary import CUSTODIAN_EXTENSION

    org = caller_org(req)
    role = acting_role(req)
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                }
            ]
        },
        "who": {"reference": role or org or "Organization/unknown"},
    }
    if role and org:
        agent["onBehalfOf"] = {"reference": org}
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": new_id(),
        "target": [{"reference": t} for t in targets],
        "recorded": now(req),
        "activity": {"coding": [activity]},
        "agent": [agent],
    }
    if org:
        resource["extension"] = [{"url": CUSTODIAN_EXTENSION, "valueReference": {"reference": org}}]
    if reason:
        resource["reason"] = [{"text": reason}]
    return put(resource)


# -- the caller ----------------------------------------------------------------------------------
def now(req: FhirRequest) -> str:
    """The request's instant (the gate's clock), as a FHIR instant with offset."""
    stamp: datetime = req.gate.now
    return stamp.replace(microsecond=0).isoformat()


def today(req: FhirRequest) -> str:
    return req.gate.now.date().isoformat()


def caller_org(req: FhirRequest) -> str | None:
    """`Organization/<id>` of the calling organisation (None when auth is off)."""
    return f"Organization/{req.caller.organization}" if req.caller is not None else None


def acting_role(req: FhirRequest) -> str | None:
    """`PractitionerRole/<id>` the caller acts as (X-Acting-Practitioner-Role), if any."""
    if req.caller is None or not req.caller.acting_role:
        return None
    return f"PractitionerRole/{req.caller.acting_role}"


def refuse(
    rule: str, message: str, path: str, req: FhirRequest | None = None, what: str | None = None
) -> FhirError:
    """403 naming the domain rule that refuses the request; with `req`, the refusal is audited
    as a denial (of `what`, e.g. "Task/123") like a refused REST write."""
    if req is not None:
        req.gate.note_deny(what, Decision(Verdict.DENY, Reason.WRITE_REFUSED))
    return FhirError(
        Category.FORBIDDEN,
        f"{message} (rule: {rule})",
        issues=[Issue(f"{message} (rule: {rule})", (path,), code="forbidden")],
    )


def conflict(rule: str, message: str, path: str) -> FhirError:
    """409 naming the domain rule the current state breaks."""
    return FhirError(
        Category.CONFLICT,
        f"{message} (rule: {rule})",
        issues=[Issue(f"{message} (rule: {rule})", (path,), code="conflict")],
    )
