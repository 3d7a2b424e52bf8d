"""The search engine the interactions call: index extraction on write, conditional matching, and
type-level search (GET [type]?…, POST [type]/_search) with includes and stable paging.

Search runs in a reader session; only a multi-page result opens a writer afterwards, to store
its snapshot. Result keys become entries only in `bundle.disclose_page`, through the request's
disclosure gate. A trusted gate (no caller) takes the plain fast path; any other caller's
matches, includes, chains and `_has` levels are filtered before paging and counting
(visibility.py), so totals, pages and probes answer as if hidden resources did not exist. This
module must never build SQL itself (see select.py, criteria.py) nor render resources (see
bundle.py), and `search` must never return before the gate's AuditEvents are stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import digits
from gateway.search import paging, visibility
from gateway.search.bundle import Key, Page, disclose_page
from gateway.search.criteria import Ctx
from gateway.search.handling import lenient_outcome, reject_unknown, strict
from gateway.search.includes import Spec, included_keys, parse_spec
from gateway.search.indexer import index_rows
from gateway.search.query import Query, parse
from gateway.search.select import count, ordered_ids
from gateway.storage.base import IndexRows

if TYPE_CHECKING:
    from gateway.consent.enforcement import Gate
    from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
    from gateway.storage.base import Session

Specs = tuple[list[Spec], list[Spec]]  # (_include, _revinclude)
MAX_CONDITIONAL_MATCHES = 1000
# Inner ids a conditional request's chain may examine for an untrusted caller (the search
# default of settings.max_snapshot_keys; match_keys has no settings).
CONDITIONAL_INNER_CAP = 10_000


class SearchEngine:
    def index(self, resource: dict[str, Any]) -> IndexRows:
        return index_rows(resource)

    def match_keys(
        self,
        session: Session,
        resource_type: str,
        params: list[tuple[str, str]],
        gate: Gate | None = None,
        limit: int = MAX_CONDITIONAL_MATCHES,
    ) -> list[tuple[str, str]]:
        """Keys matching conditional criteria (strict: unknown parameters are a 400), the first
        `limit` in result order. With an untrusted `gate`, only what the caller may see matches:
        a hidden resource counts as not existing (in the criteria's chains too)."""
        q = parse(resource_type, params, limit, limit)
        reject_unknown(q)
        if not q.criteria:
            raise invalid("a conditional request needs search criteria")
        if gate is None or gate.is_trusted:
            ids = ordered_ids(session, q, Ctx(""), limit)
            return [(resource_type, i) for i in ids]
        ctx = Ctx("", visibility.Restrictor(session, gate, CONDITIONAL_INNER_CAP))
        ids = ordered_ids(session, q, ctx, limit)
        return gate.visible_keys(session, [(resource_type, i) for i in ids])

    def search(self, svc: Services, req: FhirRequest) -> FhirResponse:
        with svc.repo.reader() as session:
            bundle, snap = self._answer(svc, session, req)
        if snap is not None:
            with svc.repo.writer() as writer:
                paging.store(writer, snap)
        req.gate.flush_reads(svc.repo)  # the page's AuditEvents are durable before it is sent
        return _response(bundle)

    def search_in(self, svc: Services, session: Session, req: FhirRequest) -> FhirResponse:
        """Search inside a caller's session (batch/transaction entries). A multi-page result's
        snapshot is stored in that session; a read-only one gets the first page without links
        to further pages (a PostgreSQL READ ONLY transaction cannot store the snapshot). The
        gate's events stay with the gate: the caller flushes them (never here)."""
        bundle, snap = self._answer(svc, session, req)
        if snap is not None:
            if _writable(session):
                paging.store(session, snap)
            else:
                bundle["link"] = [lk for lk in bundle["link"] if lk["relation"] == "self"]
        return _response(bundle)

    def _answer(
        self, svc: Services, session: Session, req: FhirRequest
    ) -> tuple[dict[str, Any], paging.Snapshot | None]:
        if req.param("_getpages") is not None:
            return self._stored_page(svc, session, req), None
        if not req.resource_type:
            # GET [base] serves only paging links; whole-system search is not offered.
            raise FhirError(
                Category.METHOD_NOT_ALLOWED,
                "system-level search is not supported; search one resource type",
            )
        s = svc.settings
        q = parse(req.resource_type, req.params, s.default_page_size, s.max_page_size)
        if q.ignored and strict(req):
            reject_unknown(q)
        if req.gate.is_trusted:
            return self._first_page(svc, session, req, q)
        return self._gated_first_page(svc, session, req, q)

    def _first_page(
        self, svc: Services, session: Session, req: FhirRequest, q: Query
    ) -> tuple[dict[str, Any], paging.Snapshot | None]:
        """The trusted fast path: counts and pages straight from SQL."""
        ctx, rtype = Ctx(req.base), q.resource_type
        self_url = f"{req.base}/{rtype}?{urlencode(req.params)}"
        specs = _specs(q)  # validate include values before any work
        if q.summary == "count" or q.count == 0:
            total = count(session, q, ctx)
            links = [{"relation": "self", "url": self_url}]
            page = Page([], [], total, links, lenient_outcome(q), path=rtype, params=req.params)
            return disclose_page(session, req.gate, req.base, page, summary="count"), None
        ids = ordered_ids(session, q, ctx, q.count + 1)
        snap = None
        if len(ids) <= q.count:
            total = len(ids)
            links = [{"relation": "self", "url": self_url}]
        else:
            snap = self._snapshot(svc, session, req, q, ctx)
            ids, total = snap.ids[: q.count], snap.total
            links = paging.page_links(req.base, snap, 0, q.count, paging.carried(req.params))
        shown_total = None if q.total == "none" else total
        page = Page(_keys(rtype, ids), [], shown_total, links, lenient_outcome(q))
        return self._disclose(session, req, q, specs, page), snap

    def _gated_first_page(
        self, svc: Services, session: Session, req: FhirRequest, q: Query
    ) -> tuple[dict[str, Any], paging.Snapshot | None]:
        """An untrusted caller: the matches (up to the snapshot cap) filtered by the gate before
        anything is counted or paged; the total is the visible count, absent past the cap."""
        gate, rtype, cap = req.gate, q.resource_type, svc.settings.max_snapshot_keys
        ctx = Ctx(req.base, visibility.Restrictor(session, gate, cap))
        self_url = f"{req.base}/{rtype}?{urlencode(req.params)}"
        specs = _specs(q)
        ordered = ordered_ids(session, q, ctx, cap + 1)
        found = visibility.filter_matches(session, gate, rtype, ordered, cap)
        links = [{"relation": "self", "url": self_url}]
        if q.summary == "count" or q.count == 0:
            page = Page(
                [], [], found.total, links, lenient_outcome(q), path=rtype, params=req.params
            )
            return disclose_page(session, gate, req.base, page, summary="count"), None
        snap = None
        if len(found.ids) > q.count:
            snap = paging.new_snapshot(
                rtype,
                found.ids,
                found.snapshot_total(),
                req.params,
                org=gate.organization,
                exact=found.complete,
            )
            links = paging.page_links(req.base, snap, 0, q.count, paging.carried(req.params))
        total = None if q.total == "none" else found.total
        page = Page(_keys(rtype, found.ids[: q.count]), [], total, links, lenient_outcome(q))
        return self._disclose(session, req, q, specs, page), snap

    def _disclose(
        self, session: Session, req: FhirRequest, q: Query, specs: Specs, page: Page
    ) -> dict[str, Any]:
        """A page of matches with their includes (hidden ones withheld, never followed),
        through the one disclosure point."""
        visible = visibility.include_filter(session, req.gate)
        page.includes = included_keys(session, req.base, page.matches, *specs, visible=visible)
        page.path, page.params = q.resource_type, req.params
        return disclose_page(session, req.gate, req.base, page, q.elements, q.summary)

    def _snapshot(
        self, svc: Services, session: Session, req: FhirRequest, q: Query, ctx: Ctx
    ) -> paging.Snapshot:
        cap = svc.settings.max_snapshot_keys
        ids = ordered_ids(session, q, ctx, cap + 1)
        if len(ids) <= cap:
            total = len(ids)
        else:  # beyond the cap: the total stays exact, paging stops at the cap
            total = cap + 1 if q.total == "none" else count(session, q, ctx)
        return paging.new_snapshot(q.resource_type, ids[:cap], total, req.params)

    def _stored_page(self, svc: Services, session: Session, req: FhirRequest) -> dict[str, Any]:
        """A page of a stored snapshot: only its owner's, and re-checked with the gate (consent
        may have been revoked since): a dropped entry is recorded as withheld (the caller was
        promised it) and drops the page's total too."""
        gate = req.gate
        snap = paging.load(session, req.param("_getpages") or "", gate.organization)
        if req.resource_type and req.resource_type != snap.resource_type:
            raise invalid("_getpages belongs to a search of another resource type", "_getpages")
        s = svc.settings
        offset = digits(req.param("_getpagesoffset") or "0")
        n = digits(req.param("_count") or str(s.default_page_size), s.max_page_size)
        if offset is None or not n:
            raise invalid("_getpagesoffset and _count must be positive integers", "_getpages")
        paging.check_offset(snap, offset)
        q = parse(snap.resource_type, snap.params, n, s.max_page_size)
        ids = snap.ids[offset : offset + n]
        withheld: list[str] = []
        if not gate.is_trusted:
            shown = set(gate.visible_ids(session, snap.resource_type, ids))
            withheld = [i for i in ids if i not in shown]
            ids = [i for i in ids if i in shown]
        links = paging.page_links(req.base, snap, offset, n, snap.params)
        dropped = len(ids) < len(snap.ids[offset : offset + n])
        total = None if q.total == "none" or dropped or not snap.exact else snap.total
        page = Page(_keys(snap.resource_type, ids), [], total, links)
        page.withheld = _keys(snap.resource_type, withheld)
        return self._disclose(session, req, q, _specs(q), page)


def _writable(session: Session) -> bool:
    if session.dialect != "postgres":
        return True  # SQLite: a deferred transaction upgrades to a writer on its first write
    return session.query("SHOW transaction_read_only")[0][0] == "off"


def _keys(rtype: str, ids: list[str]) -> list[Key]:
    return [(rtype, i) for i in ids]


def _specs(q: Query) -> Specs:
    inc = [parse_spec(v, it, "_include") for v, it in q.includes]
    rev = [parse_spec(v, it, "_revinclude") for v, it in q.revincludes]
    return inc, rev


def _response(bundle: dict[str, Any]) -> FhirResponse:
    from gateway.fhir_api.context import FhirResponse

    return FhirResponse(200, bundle)
