"""Stable paging: a multi-page result's ordered keys are stored once in `search_snapshots`, and
every page link names that snapshot (`_getpages=<id>&_getpagesoffset=N&_count=C`), so pages
never shift when data changes underneath (http://hl7.org/fhir/R4/http.html#paging).

Snapshots expire after `TTL_US`; expired ones are removed opportunistically when a new one is
written. Writing needs a writer session (PostgreSQL readers are READ ONLY). Page links must
never carry anything but our own paging parameters and the caller's shaping parameters.

A snapshot belongs to the organisation whose search made it (None: a trusted, caller-less
search): it holds only the ids that caller could see, so `load` answers any other caller exactly
as it answers an unknown or expired snapshot, never revealing that the snapshot exists.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson

from gateway.errors import FhirError, invalid
from gateway.storage.base import Session

TTL_US = 3600 * 1_000_000
_SNAPSHOT_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, see new_snapshot
# Parameters repeated on page links: they shape each page, not which resources match.
CARRIED = ("_include", "_revinclude", "_elements", "_summary", "_total", "_format", "_pretty")


@dataclass(frozen=True)
class Snapshot:
    id: str
    resource_type: str
    ids: list[str]
    total: int
    params: list[tuple[str, str]]  # the page-shaping parameters of the original search
    org: str | None = None  # the organisation that searched; None for a trusted search
    # False when the search examined only the first `max_snapshot_keys` matches and filtered
    # them (untrusted caller): `total` is then len(ids) + 1 ("more"), never shown as a total.
    exact: bool = True


def _now_us() -> int:
    return time.time_ns() // 1000


def carried(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in params if k.split(":", 1)[0] in CARRIED]


def new_snapshot(
    rtype: str,
    ids: list[str],
    total: int,
    params: list[tuple[str, str]],
    org: str | None = None,
    exact: bool = True,
) -> Snapshot:
    return Snapshot(uuid.uuid4().hex, rtype, ids, total, carried(params), org, exact)


def store(session: Session, snap: Snapshot) -> None:
    """Write a snapshot (and drop expired ones) in a writer session."""
    now = _now_us()
    session.execute("DELETE FROM search_snapshots WHERE created_us < ?", (now - TTL_US,))
    query = orjson.dumps(
        {
            "type": snap.resource_type,
            "params": snap.params,
            "org": snap.org,
            "exact": snap.exact,
        }
    ).decode()
    session.execute(
        "INSERT INTO search_snapshots (id, created_us, total, keys, query) VALUES (?, ?, ?, ?, ?)",
        (snap.id, now, snap.total, orjson.dumps(snap.ids).decode(), query),
    )


def _expired() -> FhirError:
    return invalid("this search page has expired; repeat the search", "_getpages")


def load(session: Session, sid: str, org: str | None = None) -> Snapshot:
    """The snapshot `sid` of organisation `org` (None: a trusted search); any other one, like an
    unknown or expired one, is the same 400."""
    if not _SNAPSHOT_ID.fullmatch(sid):  # never send text the database cannot hold (NUL)
        raise _expired()
    rows = session.query(
        "SELECT created_us, total, keys, query FROM search_snapshots WHERE id = ?", (sid,)
    )
    if not rows or rows[0][0] < _now_us() - TTL_US:
        raise _expired()
    _, total, keys, query = rows[0]
    q = orjson.loads(query)
    if q.get("org") != org:
        raise _expired()
    params = [(k, v) for k, v in q["params"]]
    exact = bool(q.get("exact", True))
    return Snapshot(sid, q["type"], orjson.loads(keys), int(total), params, org, exact)


def page_links(
    base: str, snap: Snapshot, offset: int, count: int, extra: list[tuple[str, str]]
) -> list[dict[str, str]]:
    """self/first/previous/next/last links over a snapshot (next stops where the snapshot ends)."""

    def link(relation: str, off: int) -> dict[str, str]:
        q = [("_getpages", snap.id), ("_getpagesoffset", str(off)), ("_count", str(count))]
        return {"relation": relation, "url": f"{base}/{snap.resource_type}?{urlencode(q + extra)}"}

    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    if offset + count < snap.total:
        links.append(link("next", offset + count))
    if count and len(snap.ids) == snap.total:
        links.append(link("last", ((snap.total - 1) // count) * count))
    return links


def check_offset(snap: Snapshot, offset: int) -> None:
    if offset >= len(snap.ids) and offset < snap.total:
        matched = f"{snap.total}" if snap.exact else f"more than {len(snap.ids)}"
        raise invalid(
            f"this search matched {matched} resources; only the first {len(snap.ids)} can be "
            "paged through. Narrow the search (more criteria, _lastUpdated ranges) to see more",
            "_getpagesoffset",
        )
