"""Plain creates outside a transaction (`Repository.insert_new`): group commit on SQLite, one
atomic statement on PostgreSQL. Every create must be durable, indexed and isolated."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from gateway.storage import Repository
from gateway.storage.ids import new_id
from gateway.storage.sql import prepare_new
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
