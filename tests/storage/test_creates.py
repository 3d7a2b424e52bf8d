"""Plain creates outside a transaction (`Repository.insert_new`): group commit on SQLite, one
atomic statement on PostgreSQL. Every create must be durable, indexed and isolated."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from typing import Any

import orjson
import psycopg
import pytest

from gateway.fhir_api.context import FhirRequest, Services
from gateway.storage import Repository
from gateway.storage.base import Indexer, IndexRows, Session
from gateway.storage.ids import new_id
from gateway.storage.migrations import INDEX_TABLES
from gateway.storage.sql import Prepared, prepare_new
from tests.storage.factories import identifier_index, patient, tokens


def _new(repo: Repository, *identifiers: str, id: str | None = None):  # type: ignore[no-untyped-def]
    return prepare_new("Patient", id or str(uuid.uuid4()), patient(*identifiers), repo.indexer)


def test_insert_new_stores_version_history_and_index(repo: Repository) -> None:
    sv = repo.insert_new(_new(repo, "a1"))
    assert sv.version == 1 and sv.method == "POST"
    with repo.reader() as s:
        assert s.current("Patient", sv.id).body == sv.body  # type: ignore[union-attr]
        assert s.version("Patient", sv.id, 1).body == sv.body  # type: ignore[union-attr]
        assert tokens(s, "Patient", sv.id) == [("identifier", "urn:test", "a1")]


def test_concurrent_creates_are_all_stored_once(repo: Repository) -> None:
    """40 threads making 10 creates each: group commit must neither lose nor duplicate any."""
    made: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(40)

    def worker(n: int) -> None:
        start.wait()
        for k in range(10):
            sv = repo.insert_new(_new(repo, f"w{n}-{k}"))
            with lock:
                made.append(sv.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == len(set(made)) == 400
    with repo.reader() as s:
        assert s.query("SELECT COUNT(*) FROM resources")[0][0] == 400
        assert s.query("SELECT COUNT(*) FROM history")[0][0] == 400
        assert s.query("SELECT COUNT(*) FROM sp_token")[0][0] == 400


def test_a_failing_create_fails_alone(repo: Repository) -> None:
    """An id clash (impossible for server UUIDs, forced here) fails that create only; creates
    committed in the same group are kept, and the clash changes nothing."""
    first = repo.insert_new(_new(repo, "orig", id="fixed"))
    errors: list[BaseException] = []
    ok: list[str] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        try:
            ident = f"clash{n}" if n == 0 else f"fine{n}"
            sv = repo.insert_new(_new(repo, ident, id="fixed" if n == 0 else None))
            ok.append(sv.id)
        except Exception as e:  # the clash surfaces to its own caller
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and len(ok) == 7
    with repo.reader() as s:
        current = s.current("Patient", "fixed")
        assert current is not None and current.body == first.body
        assert tokens(s, "Patient", "fixed") == [("identifier", "urn:test", "orig")]
        assert s.query("SELECT COUNT(*) FROM resources")[0][0] == 8


@pytest.mark.parametrize("rows", [0, 1, 25])
def test_insert_new_writes_every_index_row(repo: Repository, rows: int) -> None:
    ids = [f"v{i:02d}" for i in range(rows)]
    sv = repo.insert_new(prepare_new("Patient", "many", patient(*ids), identifier_index))
    with repo.reader() as s:
        assert [c for _, _, c in tokens(s, "Patient", sv.id)] == ids


def test_server_ids_are_uuid7_and_time_ordered() -> None:
    """Time-ordered ids keep B-tree inserts at the right edge (see gateway/storage/ids.py)."""
    earlier = new_id()
    time.sleep(0.002)  # the order holds across milliseconds (within one it is random)
    later = [new_id() for _ in range(100)]
    assert all(uuid.UUID(i).version == 7 for i in [earlier, *later])
    assert all(earlier < i for i in later)
    assert len(set(later)) == 100


# -- insert_many: a batch of new resources (AuditEvents) stores what insert_new of each would --


def every_index(resource: dict[str, Any]) -> IndexRows:
    """`resource["rows"]` rows in each of the seven index tables (non-ASCII text, extreme dates,
    tiny and huge floats)."""
    rows = IndexRows()
    for k in range(resource["rows"]):
        rows.token.append(("tok", "urn:s" if k else "", f"c{k}"))
        rows.string.append(("str", f"ääkkönen {k}", f"Ääkkönen {k} 名"))
        url = f"https://x.example/fhir/Patient/p{k}" if k % 2 else ""
        rows.reference.append(("ref", "Patient", f"p{k}", url))
        rows.date.append(("when", -(2**62) + k, 2**62 - k))
        rows.number.append(("num", 0.1 * k))
        rows.quantity.append(("qty", 1e300 / (k + 1), "http://unitsofmeasure.org", "mg"))
        rows.uri.append(("uri", f"urn:uuid:{k}"))
    return rows


def mixed_types(resource: dict[str, Any]) -> IndexRows:
    """Values outside IndexRows' types: an int among a text column's str, an int among a
    float column's floats. Stored converted to the column's type, as insert_new stores them."""
    k = resource["rows"]
    rows = IndexRows()
    rows.token.append(("tok", "urn:s", k if k % 2 else f"c{k}"))  # type: ignore[arg-type]
    rows.number.append(("num", k if k % 2 else k + 0.5))
    rows.string.append(("str", f"s{k}", f"S{k}"))  # one type: still one statement
    return rows


def _typed(rows: list[tuple]) -> list[tuple]:
    """Each value with its type's name: 1, 1.0 and "1" differ."""
    return [tuple((type(v).__name__, v) for v in r) for r in rows]


def _stored(s: Session) -> dict[str, list]:
    """Every row a create writes: history in seq order, the index tables sorted."""
    out = {
        "resources": _typed(
            s.query(
                "SELECT res_type, res_id, version, lu_us, deleted, body FROM resources "
                "ORDER BY res_type, res_id"
            )
        ),
        "history": _typed(
            s.query(
                "SELECT res_type, res_id, version, lu_us, deleted, body, method FROM history "
                "ORDER BY seq"
            )
        ),
    }
    if s.dialect == "postgres":  # the JSONB copy
        content = s.query("SELECT res_id, content, body FROM resources ORDER BY res_id")
        assert all(c == orjson.loads(bytes(b)) for _, c, b in content)
        out["content"] = [(i, c) for i, c, _ in content]
    for table in INDEX_TABLES:
        out[table] = sorted(_typed(s.query(f"SELECT * FROM {table}")))
    return out


def _one_by_one(repo: Repository, batch: list[Prepared]) -> dict[str, list]:
    """What insert_new of each stores, on an emptied store."""
    with repo.writer() as s:
        for table in ("resources", "history", *INDEX_TABLES):
            s.execute(f"DELETE FROM {table}")
    with repo.writer() as s:
        for item in batch:
            s.insert_new(item)
    with repo.reader() as s:
        return _stored(s)


def _basics(indexer: Indexer, counts: tuple[int, ...]) -> list[Prepared]:
    return [
        prepare_new("Basic", new_id(), {"resourceType": "Basic", "rows": n}, indexer)
        for n in counts
    ]


@pytest.mark.parametrize("indexer", [every_index, mixed_types])
def test_insert_many_stores_what_insert_new_would(repo: Repository, indexer: Indexer) -> None:
    batch = _basics(indexer, (3, 0, 1, 5, 2))
    with repo.writer() as s:
        s.insert_many(batch)
    with repo.reader() as s:
        many = _stored(s)
    assert [r[1][1] for r in many["history"]] == [p.version.id for p in batch]  # batch order
    if indexer is every_index:
        assert all(len(many[t]) == 11 for t in INDEX_TABLES)
    assert _one_by_one(repo, batch) == many


def test_insert_many_fails_on_an_id_clash(repo: Repository) -> None:
    """A plain INSERT: an id already stored fails the batch (never merges), and the rolled-back
    transaction keeps nothing of it."""
    first = prepare_new("Basic", "fixed", {"resourceType": "Basic", "rows": 1}, every_index)
    repo.insert_new(first)
    with repo.reader() as s:
        before = _stored(s)
    clash = prepare_new("Basic", "fixed", {"resourceType": "Basic", "rows": 2}, every_index)
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)), repo.writer() as s:
        s.insert_many([*_basics(every_index, (1, 2)), clash])
    with repo.reader() as s:
        assert _stored(s) == before


def _found(svc: Services, resource_type: str, *params: tuple[str, str]) -> set[str]:
    req = FhirRequest("GET", "http://gw", resource_type=resource_type, params=list(params))
    bundle = orjson.loads(orjson.dumps(svc.search.search(svc, req).body))
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def test_insert_many_is_found_by_search(services: Services) -> None:
    """Resources of several types indexed by the real indexer (token, string, reference, date
    and uri rows) in one batch: searches find them, and the rows are insert_new's."""
    repo = services.repo

    def person(family: str, hetu: str, born: str) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:test:hetu", "value": hetu}],
            "name": [{"family": family, "given": ["Äijö"]}],
            "birthDate": born,
            "generalPractitioner": [{"reference": "Practitioner/dr1"}],
        }

    def plan(subject: str, pathway: str) -> dict[str, Any]:
        return {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": subject},
            "instantiatesUri": [pathway],
            "period": {"start": "2025-01-01"},
        }

    hook = {
        "resourceType": "Subscription",
        "status": "off",
        "reason": "test",
        "criteria": "Task?status=ready",
        "channel": {"type": "rest-hook", "endpoint": "https://partner.example/hook"},
    }
    resources = {
        "p1": person("Virtanen", "010180-123A", "1980-01-01"),
        "p2": person("Korhonen", "020290-456B", "1990-02-02"),
        "c1": plan("Patient/p1", "https://example.org/pathways/diabetes"),
        "c2": plan("Patient/p2", "https://example.org/pathways/asthma"),
        "s1": hook,
    }
    batch = [prepare_new(r["resourceType"], i, r, repo.indexer) for i, r in resources.items()]
    with repo.writer() as s:
        s.insert_many(batch)
    with repo.reader() as s:
        many = _stored(s)
    assert all(many[t] for t in ("sp_token", "sp_string", "sp_reference", "sp_date", "sp_uri"))

    assert _found(services, "Patient", ("family", "virtanen")) == {"p1"}
    assert _found(services, "Patient", ("given", "aijo")) == {"p1", "p2"}
    assert _found(services, "Patient", ("identifier", "urn:test:hetu|020290-456B")) == {"p2"}
    assert _found(services, "Patient", ("birthdate", "1990")) == {"p2"}
    assert _found(services, "Patient", ("general-practitioner", "Practitioner/dr1")) == {
        "p1",
        "p2",
    }
    assert _found(services, "CarePlan", ("subject", "Patient/p2")) == {"c2"}
    assert _found(
        services, "CarePlan", ("instantiates-uri", "https://example.org/pathways/diabetes")
    ) == {"c1"}
    assert _found(services, "CarePlan", ("date", "ge2025-06-01"), ("status", "active")) == {
        "c1",
        "c2",
    }
    assert _found(services, "Subscription", ("url", "https://partner.example/hook")) == {"s1"}
    assert _found(services, "Subscription", ("criteria", "task")) == {"s1"}

    assert _one_by_one(repo, batch) == many
