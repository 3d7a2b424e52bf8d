"""The search side of the disclosure gate (issue 3): what an untrusted caller's search may count,
page through, include, follow through a chain and probe with `_has`.

Every function here asks the request's `Gate` (gateway.consent.enforcement) and answers as if
the hidden resources did not exist: matches are filtered before paging and counting
(`filter_matches`), include keys before they are included or followed (`include_filter`), and
the inner ids of chains and `_has` before the outer query joins over them (`Restrictor`). The
trusted gate never reaches this module (engine.py keeps its plain fast path).

This module finds and filters keys only: it must never render or disclose a resource (that is
bundle.disclose_page, through `Gate.disclose`) and never records an AuditEvent. What it filters
out was never about to be disclosed, so it is no denial (audit: one query event per page); only
a snapshot entry the gate hides at page time is handed to `disclose_page` as `withheld`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.errors import invalid

if TYPE_CHECKING:
    from gateway.consent.enforcement import Gate
    from gateway.storage.base import Session

Key = tuple[str, str]
Sql = tuple[str, list]
CHUNK = 500  # ids per gate call: one bulk load of bodies, Patients and Consents each
# Visible inner ids a chain or `_has` level may bind as a literal list: well inside the bound
# values one search may carry (select.MAX_BOUND_VALUES) and SQLite's variable limit.
MAX_LISTED = 2000
# What matches nothing, for an inner level of which the caller may see nothing (`IN ()` is not
# valid SQL on PostgreSQL).
NOTHING: Sql = ("SELECT res_id FROM resources WHERE 1 = 0", [])


@dataclass
class Filtered:
    """An untrusted search's matches, examined up to the snapshot cap."""

    ids: list[str]  # the visible ones, in result order
    complete: bool  # every match was examined: the total is known

    @property
    def total(self) -> int | None:
        return len(self.ids) if self.complete else None

    def snapshot_total(self) -> int:
        """What a snapshot stores as its total: past the cap, one more than it can page."""
        return len(self.ids) if self.complete else len(self.ids) + 1


def filter_matches(
    session: Session, gate: Gate, rtype: str, ordered: list[str], cap: int
) -> Filtered:
    """The visible ones among the first `cap` of `ordered` (fetched with one more than `cap`, so
    `complete` says whether the unfiltered result fitted)."""
    examined = ordered[:cap]
    visible: list[str] = []
    for start in range(0, len(examined), CHUNK):
        visible += gate.visible_ids(session, rtype, examined[start : start + CHUNK])
    return Filtered(visible, len(ordered) <= cap)


def include_filter(session: Session, gate: Gate) -> Callable[[list[Key]], list[Key]] | None:
    """`included_keys`' visibility filter; None for a trusted gate (nothing to filter)."""
    if gate.is_trusted:
        return None
    return lambda keys: gate.visible_keys(session, keys)


@dataclass
class Restrictor:
    """`criteria.Ctx.restrict` for an untrusted caller: runs an inner chain or `_has` id query
    now, keeps the ids the caller may see, and hands back a literal `?` list of them.

    Bounded: an inner query yielding more than `cap` ids, or more than MAX_LISTED visible ones,
    is refused (400) rather than filtered at any cost. Results are kept per inner query, since
    one search compiles its criteria more than once (ordered ids, then count)."""

    session: Session
    gate: Gate
    cap: int
    _done: dict[tuple[str, str, tuple], Sql] = field(default_factory=dict)

    def __call__(self, rtype: str, inner: Sql) -> Sql:
        key = (rtype, inner[0], tuple(inner[1]))
        if key not in self._done:
            self._done[key] = self._listed(rtype, inner)
        return self._done[key]

    def _listed(self, rtype: str, inner: Sql) -> Sql:
        sql, args = inner
        rows = self.session.query(
            f"SELECT DISTINCT * FROM ({sql}) inner_ids LIMIT ?", [*args, self.cap + 1]
        )
        if len(rows) > self.cap:
            raise _too_broad(rtype)
        visible = self.gate.visible_ids(self.session, rtype, sorted(r[0] for r in rows))
        if len(visible) > MAX_LISTED:
            raise _too_broad(rtype)
        if not visible:
            return NOTHING
        return ", ".join("?" for _ in visible), list(visible)


def _too_broad(rtype: str) -> Exception:
    return invalid(
        f"the chained criterion on {rtype} is too broad; narrow it", rtype, code="too-costly"
    )
