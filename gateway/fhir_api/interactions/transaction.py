"""batch and transaction: POST [base] with a Bundle (http://hl7.org/fhir/R4/http.html#transaction).

Every entry is checked before any session opens. A transaction runs in ONE writer session in the
spec's order (DELETE, then POST, then PUT/PATCH, then GET) and is all-or-nothing: the first
failure rolls everything back and is answered with that entry's OperationOutcome. A batch runs
each entry on its own. This module must never store anything outside that one session, nor let
a failure in one batch entry reach another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gateway.consent.enforcement import Gate
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.interactions.bundle_apply import Key, apply_entry, resolve_target
from gateway.fhir_api.interactions.bundle_entries import Entry
from gateway.fhir_api.interactions.bundle_envelope import read_bundle
from gateway.fhir_api.interactions.bundle_errors import at_entry, combined
from gateway.fhir_api.interactions.bundle_refs import References
from gateway.fhir_api.interactions.bundle_response import (
    error_entry,
    prefer_return,
    response_bundle,
    success_entry,
)
from gateway.fhir_api.interactions.conditional import lock_key
from gateway.storage.base import Session
from gateway.validation.rules import rule_issues

Result = FhirResponse | FhirError
T = TypeVar("T")


def bundle(svc: Services, req: FhirRequest) -> FhirResponse:
    kind, entries = read_bundle(svc, req.resource, req.base)
    req.gate.start(kind, None)
    if kind == "transaction":
        results: list[Result] = list(run_transaction(svc, req.base, entries, req.gate))
    else:
        results = run_batch(svc, req.base, entries, req.gate)
    prefer = prefer_return(req)
    out = [
        _response_entry(req.base, raw, res, prefer)
        for raw, res in zip(entries, results, strict=True)
    ]
    return FhirResponse(200, response_bundle(kind, out))


def _response_entry(base: str, entry: Entry | FhirError, res: Result, prefer: str) -> dict:
    if isinstance(res, FhirError):
        return error_entry(res)
    assert isinstance(entry, Entry)
    return success_entry(base, entry.method, res, prefer)


# -- transaction ------------------------------------------------------------------------------
def run_transaction(
    svc: Services,
    base: str,
    entries: list[Entry | FhirError],
    gate: Gate,
    before_commit: Callable[[Session], None] | None = None,
) -> list[Result]:
    """All entries in one writer session, or a FhirError naming the entry that failed. The
    entries' AuditEvents commit with them. `before_commit` (an intake's message log row: the
    HL7 v2 pipeline, gateway/intake/hl7v2.py) runs in the same session after the entries; what
    it raises rolls everything back."""
    errors = [e for e in entries if isinstance(e, FhirError)]
    if errors:
        raise combined(errors)
    checked = [e for e in entries if isinstance(e, Entry)]
    with svc.repo.writer() as session:
        results = list(_Transaction(svc, session, base, gate).run(checked))
        if before_commit is not None:
            before_commit(session)
        gate.flush_into(session)
        return results


class _Transaction:
    def __init__(self, svc: Services, session: Session, base: str, gate: Gate) -> None:
        self.svc, self.session, self.base, self.gate = svc, session, base, gate
        self.refs = References(svc, session, base, {}, gate)
        self.targets: dict[Key, int] = {}  # resource -> the entry that changes it

    def run(self, entries: list[Entry]) -> list[FhirResponse]:
        self._prelock(entries)
        by_method: dict[str, list[Entry]] = {m: [] for m in ("DELETE", "POST", "PUT", "GET")}
        for e in entries:
            by_method["PUT" if e.method == "PATCH" else e.method].append(e)
        posts = sorted(by_method["POST"], key=lambda e: e.if_none_exist is not None)
        writes = by_method["POST"] + by_method["PUT"]
        results: dict[int, FhirResponse] = {}
        for e in by_method["DELETE"]:  # deletes first: later conditions see their effect
            self._step(e, self._resolve)
            results[e.index] = self._step(e, self._apply)
        for e in posts + by_method["PUT"]:  # every id is known before any reference is rewritten
            self._step(e, self._resolve)
        for e in writes + by_method["GET"]:
            self._step(e, self._rewrite)
        for e in writes + by_method["GET"]:
            results[e.index] = self._step(e, self._apply)
        return [results[e.index] for e in entries]

    def _prelock(self, entries: list[Entry]) -> None:
        """Take every lock known up front, in one global order (conditional locks, then
        resources, each sorted), so two transactions cannot wait on each other (PostgreSQL
        would abort one as a deadlock). Single interactions take them in the same order."""
        conditional, resources = set(), set()
        for e in entries:
            t = e.target
            if e.method == "GET":
                continue
            if e.if_none_exist is not None or (e.method != "POST" and t.conditional):
                conditional.add(lock_key(t.resource_type))
            elif e.method != "POST" and t.id is not None:
                resources.add(f"{t.resource_type}/{t.id}")
        for key in [*sorted(conditional), *sorted(resources)]:
            self.session.lock(key)

    def _step(self, entry: Entry, action: Callable[[Entry], T]) -> T:
        try:
            return action(entry)
        except FhirError as err:
            raise at_entry(err, entry.index) from None

    def _resolve(self, entry: Entry) -> None:
        resolve_target(self.svc, self.session, entry, self.refs, self.gate)
        if entry.key is None:
            return
        if entry.full_url is not None:
            self.refs.mapping[entry.full_url] = "/".join(entry.key)
        if entry.matched:  # a found conditional create changes nothing
            return
        first = self.targets.setdefault(entry.key, entry.index)
        if first != entry.index:
            raise invalid(
                f"Bundle.entry[{entry.index}] changes the same resource as "
                f"Bundle.entry[{first}]; a transaction may change a resource once",
                f"Bundle.entry[{entry.index}].request.url",
            )

    def _rewrite(self, entry: Entry) -> None:
        resource = entry.resource
        if resource is not None and self.refs.rewrite(resource, f"{entry.path}.resource"):
            # Placeholders name no type, so reference targets are checked once they are known.
            issues = rule_issues(entry.target.resource_type, resource)
            if issues:
                raise FhirError(Category.INVALID, issues[0].diagnostics, issues=issues)
        entry.target.params = self.refs.params(entry.target.params)

    def _apply(self, entry: Entry) -> FhirResponse:
        return apply_entry(self.svc, self.session, self.base, entry, self.gate)


# -- batch ------------------------------------------------------------------------------------
def run_batch(
    svc: Services, base: str, entries: list[Entry | FhirError], gate: Gate
) -> list[Result]:
    """Each entry on its own session; a failure is that entry's result and nothing more."""
    return [e if isinstance(e, FhirError) else _batch_entry(svc, base, e, gate) for e in entries]


def _batch_entry(svc: Services, base: str, entry: Entry, gate: Gate) -> Result:
    try:
        if entry.method == "GET" and entry.target.id is not None:
            with svc.repo.reader() as session:
                result = apply_entry(svc, session, base, entry, gate)
            gate.flush_reads(svc.repo)
            return result
        # Writes, and searches too: a search's page snapshot is stored in its session.
        with svc.repo.writer() as session:
            # Batch entries are independent: only conditional references resolve here.
            refs = References(svc, session, base, {}, gate)
            resolve_target(svc, session, entry, refs, gate)
            if entry.resource is not None:
                refs.rewrite(entry.resource, f"{entry.path}.resource")
            result = apply_entry(svc, session, base, entry, gate)
            gate.flush_into(session)  # this entry's events commit with it
            return result
    except FhirError as err:
        gate.flush_denials(svc.repo)  # what failed did not happen; its denials did
        return at_entry(err, entry.index)
