"""The thin FastAPI shell over the FHIR interactions: HTTP in, `FhirRequest` to an interaction,
`FhirResponse` out in the negotiated format. Every error becomes an OperationOutcome here, in one
place; an unexpected exception is logged without request data and answered as a 500 outcome.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from urllib.parse import parse_qsl

import anyio.to_thread
import orjson
from anyio import CapacityLimiter
from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.consent.enforcement import Gate, request_id
from gateway.consent.model import Decision, Reason, Verdict
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api import conformance, formats
from gateway.fhir_api.capability import capability_statement
from gateway.fhir_api.context import (
    RESOURCE_TYPES,
    FhirRequest,
    FhirResponse,
    Services,
    check_id,
    digits,
)
from gateway.fhir_api.interactions import (
    create,
    delete,
    history,
    patch,
    read,
    search,
    transaction,
    update,
    vread,
)
from gateway.fhir_api.operations import Operation
from gateway.security.authenticate import (
    authenticate_request,
    authorize,
    bearer_caller,
    is_public,
)

log = logging.getLogger("gateway.fhir")
Interaction = Callable[[Services, FhirRequest], FhirResponse]

# Parameters that shape the response rather than select data; handled here, not by interactions.
FORMAT_PARAMS = ("_format", "_pretty")
# Headers that carry one value: a repeated one is ambiguous (which condition holds?), so a 400.
# Others repeat by the HTTP rule and are joined with ", " (RFC 9110 section 5.3).
SINGLE_HEADERS = ("content-type", "if-match", "if-none-exist", "if-none-match", "if-modified-since")
# X-Purpose-Of-Use: a v3-ActReason code (CAREMGT, TREAT, …) the caller states for this request;
# compared with Consent.provision.purpose and recorded in AuditEvent.purposeOfEvent.
PURPOSE_HEADER = "x-purpose-of-use"
_PURPOSE = re.compile(r"^[A-Za-z][A-Za-z0-9\-]{0,31}$")


def _base(request: Request, svc: Services) -> str:
    if svc.settings.base_url:
        return svc.settings.base_url.rstrip("/")
    return str(request.base_url).rstrip("/") + "/fhir"


def _headers(request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        if key in out and key in SINGLE_HEADERS:
            raise invalid(f"the {key} header is given more than once", key)
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _prefer(req: FhirRequest) -> dict[str, str]:
    out = {}
    # Preferences are separated by ";" or "," (RFC 7240 lists several in one header).
    for part in re.split(r"[;,]", req.header("prefer") or ""):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip().lower()] = v.strip().strip('"').lower()
    return out


def _respond(req: FhirRequest, resp: FhirResponse) -> Response:
    if req.request_id:
        resp.headers["X-Request-Id"] = req.request_id
    if isinstance(resp.body, bytes) and "Content-Type" in resp.headers:
        # A rendering (an operation's HTML or PDF): served as it is, with its own media type.
        return Response(resp.body, status_code=resp.status, headers=resp.headers)
    fmt = formats.negotiate(req.param("_format"), req.header("accept"))
    pretty = (req.param("_pretty") or "").lower() == "true"
    body = resp.body
    # POST [base] (batch/transaction) applies Prefer to each entry inside its response Bundle.
    writes = req.resource_type is not None and req.method in ("POST", "PUT", "PATCH")
    if writes and body is not None and resp.status < 300:
        ret = _prefer(req).get("return")
        if ret == "minimal":
            body = None
        elif ret == "operationoutcome":
            body = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "information",
                        "code": "informational",
                        "diagnostics": f"{req.method} succeeded",
                    }
                ],
            }
    if req.request_id:
        resp.headers["X-Request-Id"] = req.request_id
    if body is None:
        return Response(status_code=resp.status, headers=resp.headers)
    content, ctype = formats.render(body, fmt, pretty)
    return Response(content, status_code=resp.status, headers=resp.headers, media_type=ctype)


def _error(req: FhirRequest | None, err: FhirError, rid: str = "") -> Response:
    fmt, pretty = "json", False
    if req is not None:
        try:
            fmt = formats.negotiate(req.param("_format"), req.header("accept"))
        except FhirError:
            fmt = "json"
        pretty = (req.param("_pretty") or "").lower() == "true"
    try:
        content, ctype = formats.render(err.outcome(), fmt, pretty)
    except FhirError:
        content, ctype = formats.render(err.outcome(), "json", pretty)
    headers = dict(err.headers)
    if rid:
        headers["X-Request-Id"] = rid
    return Response(content, status_code=err.status, headers=headers, media_type=ctype)


async def _store_audit(svc: Services, gate: Gate, events: list[dict]) -> None:
    """Store a request's remaining AuditEvents before its answer leaves: by the process's audit
    writer (batched, gateway/audit/writer.py), else in a thread of its own."""
    if not events:
        return
    if svc.audit is not None:
        await svc.audit.store(events)
    else:
        gate.events = events
        await anyio.to_thread.run_sync(gate.flush_reads, svc.repo)


async def _audit_refused_role(
    svc: Services, request: Request, headers: dict[str, str], rid: str, refused: FhirError
) -> None:
    """A 403 for an acting role that is not the caller's is a denial of a known caller: audited.
    (A 401 has no caller to record.)"""
    if refused.category is not Category.FORBIDDEN:
        return
    caller = bearer_caller(svc, headers)
    gate = Gate.for_caller(caller, _base(request, svc), rid or request_id(headers))
    gate.note_deny(None, Decision(Verdict.DENY, Reason.FOREIGN_ROLE))
    await _store_audit(svc, gate, gate.take_denials())


def _purpose(headers: dict[str, str]) -> str | None:
    value = headers.get(PURPOSE_HEADER)
    if value is None:
        return None
    if not _PURPOSE.match(value.strip()):
        raise invalid("X-Purpose-Of-Use takes one v3-ActReason code, e.g. CAREMGT", PURPOSE_HEADER)
    return value.strip()


async def _build(
    request: Request,
    svc: Services,
    resource_type: str | None,
    id: str | None,
    vid: str | None,
    route: str | None = None,
    rid: str = "",
    op: Operation | None = None,
) -> FhirRequest:
    if resource_type == "metadata":  # only GET /metadata has its own route
        raise FhirError(Category.METHOD_NOT_ALLOWED, "/metadata answers GET only")
    if op is None and (resource_type or "").startswith("$"):
        # [base]/$name with another method than the operation routes take.
        raise FhirError(Category.METHOD_NOT_ALLOWED, "an operation is invoked with GET or POST")
    if resource_type is not None and resource_type not in RESOURCE_TYPES:
        raise FhirError(
            Category.NOT_FOUND, f"resource type '{resource_type[:60]}' is not served here"
        )
    caller = None
    # Who calls is known before the body is read (gateway.security.authenticate).
    if svc.settings.require_auth and not is_public(request.method, route):
        headers = _headers(request)
        try:
            caller = await authenticate_request(svc, headers)
        except FhirError as refused:
            await _audit_refused_role(svc, request, headers, rid, refused)
            raise
    declared = digits(request.headers.get("content-length") or "")
    limit = svc.settings.max_body_bytes
    if declared is not None and declared > limit:
        raise FhirError(Category.TOO_LARGE, f"the body is larger than {limit} bytes")
    raw = b""
    if request.method in ("POST", "PUT", "PATCH"):
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise FhirError(Category.TOO_LARGE, f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
    params = parse_qsl(request.url.query, keep_blank_values=True)
    req = FhirRequest(
        method=request.method,
        base=_base(request, svc),
        resource_type=resource_type,
        id=id,
        vid=vid,
        params=params,
        headers=_headers(request),
        raw_body=raw,
    )
    # An unsupported _format is refused before the interaction runs, not after it has written.
    # An operation that renders other media types (Operation.produces) negotiates them itself.
    if op is None or not op.produces:
        formats.negotiate(req.param("_format"), req.header("accept"))
    ctype = request.headers.get("content-type")
    if raw and formats.media_type(ctype) == "application/x-www-form-urlencoded":
        # POST [type]/_search carries its parameters in a form body.
        req.params = params + parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    elif raw and op is not None and formats.media_type(ctype) in op.consumes:
        pass  # the operation reads req.raw_body itself
    elif raw and formats.media_type(ctype) not in formats.PATCH_TYPES:
        req.resource = formats.parse_body(ctype, raw, svc.settings.max_json_depth)
    elif (
        request.method in ("POST", "PUT")
        and not raw
        and resource_type
        and op is None  # an operation's parameters may all be in the query, or absent
        and not request.url.path.endswith("/_search")
    ):
        raise invalid("a resource body is required", resource_type)
    req.request_id = rid or request_id(req.headers)
    if op is not None:
        req.operation = op.name
        req.operation_scope = op.needs(resource_type, id is not None)
    if caller is not None:
        req.caller = caller
        req.gate = Gate.for_caller(
            caller,
            req.base,
            req.request_id,
            _purpose(req.headers),
            svc.settings.audit_reads_fsync,
        )
        req.gate.deferred = svc.audit is not None  # read events: stored by the audit writer
        try:
            authorize(caller, route, req)
        except FhirError:
            # A refusal by scope is a denial too: audited, then answered.
            req.gate.note_deny(None, Decision(Verdict.DENY, Reason.INSUFFICIENT_SCOPE))
            await _store_audit(svc, req.gate, req.gate.take_denials())
            raise
    return req


def install(app: FastAPI, svc: Services) -> None:
    """Register every FHIR route under /fhir."""

    # A read by id on the embedded store is one indexed SELECT in this process (tens of µs):
    # cheaper on the event loop than the thread hand-off around it. PostgreSQL waits on the
    # network, so there every interaction runs in the thread pool.
    quick_reads = svc.repo.dialect == "sqlite"
    # A read's AuditEvent is committed by the audit writer after the interaction returns (the
    # request awaits it), so an audited read too may run inline; without the writer it commits
    # inside the interaction and must not block the loop.
    inline_reads = quick_reads and (svc.audit is not None or not svc.settings.require_auth)
    # Reads are CPU-bound Python plus, on SQLite, in-process database work: beyond a few threads
    # they only contend for the GIL, and every SQLite thread keeps its own connection and page
    # cache. Writes mostly wait (for the writer queue, for fsync, or on PostgreSQL for the
    # network), and the more of them wait together, the more creates share one group commit.
    read_threads = svc.settings.worker_threads or (8 if quick_reads else 32)
    readers, writers = CapacityLimiter(read_threads), CapacityLimiter(max(read_threads, 40))

    def route(path: str, methods: list[str], interaction: Interaction, quick: bool = False) -> None:
        inline = quick and inline_reads
        limiter = readers if methods == ["GET"] or path.endswith("/_search") else writers
        is_operation = "${op}" in path

        async def endpoint(request: Request) -> Response:
            p = request.path_params
            req: FhirRequest | None = None
            rid = request_id({"x-request-id": request.headers.get("x-request-id") or ""})
            try:
                op = None
                if is_operation:
                    rtype = p.get("rtype")
                    if rtype is not None and rtype not in RESOURCE_TYPES:
                        raise FhirError(
                            Category.NOT_FOUND, f"resource type '{rtype[:60]}' is not served here"
                        )
                    op = svc.operations.find(p["op"], rtype, "rid" in p, request.method)
                req = await _build(
                    request, svc, p.get("rtype"), p.get("rid"), p.get("vid"), path, rid, op
                )
                if inline:
                    resp = interaction(svc, req)
                else:
                    resp = await anyio.to_thread.run_sync(interaction, svc, req, limiter=limiter)
                # What the answer discloses is on record before the answer leaves.
                await _store_audit(svc, req.gate, req.gate.take())
                return _respond(req, resp)
            except FhirError as err:
                answer = err
                if req is not None and req.gate.denials:
                    # A refusal is audited even though nothing else of the request happened.
                    try:
                        await _store_audit(svc, req.gate, req.gate.take_denials())
                    except FhirError as failed:
                        answer = failed
                return _error(req, answer, rid)
            except Exception:
                log.exception("unexpected failure in %s %s", request.method, path)
                fault = FhirError(Category.FAULT, "internal error; see server log")
                return _error(req, fault, rid)

        app.add_api_route(
            "/fhir" + path,
            endpoint,
            methods=methods,
            include_in_schema=True,
            name=f"{'_'.join(methods)} {path}",
        )

    route("/metadata", ["GET"], capability_statement)
    for ctype in conformance.TYPES:  # read-only, public, before the generic type routes
        route(f"/{ctype}", ["GET"], conformance.searcher(ctype))
        route(f"/{ctype}/{{rid}}", ["GET"], conformance.reader(ctype))
    # `$`-operations before the id routes, which would otherwise take `$name` for an id.
    for path in ("/${op}", "/{rtype}/${op}", "/{rtype}/{rid}/${op}"):
        route(path, ["GET", "POST"], _run_operation)
    route("", ["POST"], transaction.bundle)
    route("", ["GET"], search.search)  # system level: only `_getpages` paging links
    route("/_history", ["GET"], history.history)
    route("/{rtype}", ["GET"], search.search)
    route("/{rtype}/_search", ["POST"], search.search)
    route("/{rtype}", ["POST"], create.create)
    route("/{rtype}", ["PUT"], update.update)
    route("/{rtype}", ["DELETE"], delete.delete)
    route("/{rtype}/_history", ["GET"], history.history)
    route("/{rtype}/{rid}", ["GET"], read.read, quick=True)
    route("/{rtype}/{rid}", ["PUT"], update.update)
    route("/{rtype}/{rid}", ["PATCH"], patch.patch)
    route("/{rtype}/{rid}", ["DELETE"], delete.delete)
    route("/{rtype}/{rid}/_history", ["GET"], history.history)
    route("/{rtype}/{rid}/_history/{vid}", ["GET"], vread.vread, quick=True)


def _run_operation(svc: Services, req: FhirRequest) -> FhirResponse:
    assert req.operation is not None
    if req.id is not None:
        check_id(req.id)
    req.gate.start("operation", req.resource_type)
    op = svc.operations.find(req.operation, req.resource_type, req.id is not None, req.method)
    return op.handler(svc, req)


def outcome_response(err: FhirError) -> Response:
    return Response(
        orjson.dumps(err.outcome()),
        status_code=err.status,
        media_type=formats.JSON + "; charset=utf-8",
    )
