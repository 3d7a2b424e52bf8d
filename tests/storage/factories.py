"""Small builders for storage tests: a predictable indexer and minimal resources.

The real indexer lives in gateway/search; these tests pin the storage contract, so they index
only `identifier` (tokens) and `name.family` (strings), which is enough to see rows come and go.
"""

from __future__ import annotations

from typing import Any

from gateway.storage.base import IndexRows, Session


def identifier_index(resource: dict[str, Any]) -> IndexRows:
    rows = IndexRows()
    for ident in resource.get("identifier", []):
        rows.token.append(("identifier", ident.get("system", ""), ident.get("value", "")))
    for name in resource.get("name", []):
        if "family" in name:
            rows.string.append(("family", name["family"].lower(), name["family"]))
    return rows


def patient(*identifiers: str, family: str | None = None) -> dict[str, Any]:
    """A minimal Patient with `urn:test|<value>` identifiers and an optional family name."""
    body: dict[str, Any] = {"resourceType": "Patient"}
    if identifiers:
        body["identifier"] = [{"system": "urn:test", "value": v} for v in identifiers]
    if family:
        body["name"] = [{"family": family}]
    return body


def tokens(session: Session, rtype: str, rid: str) -> list[tuple[str, str, str]]:
    rows = session.query(
        "SELECT param, system, code FROM sp_token WHERE res_type = ? AND res_id = ? ORDER BY code",
        (rtype, rid),
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def strings(session: Session, rtype: str, rid: str) -> list[tuple[str, str, str]]:
    rows = session.query(
        "SELECT param, norm, exact FROM sp_string WHERE res_type = ? AND res_id = ? ORDER BY norm",
        (rtype, rid),
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def counts(session: Session) -> dict[str, int]:
    """Row counts of the tables a write touches."""
    return {
        t: int(session.query(f"SELECT COUNT(*) FROM {t}")[0][0])
        for t in ("resources", "history", "sp_token", "sp_string")
    }
