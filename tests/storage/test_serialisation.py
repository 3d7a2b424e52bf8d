"""Writers are serialised: SQLite by BEGIN IMMEDIATE, PostgreSQL by advisory locks.

PostgreSQL runs writers in READ COMMITTED, where every statement takes a fresh snapshot. So a
writer that takes the advisory lock *first* and reads the current version in a *later* statement
sees everything committed by the writer that held the lock before it: the lock holder commits
before the lock is released (transaction-scoped locks are freed after the commit is visible).
These tests pin that on both stores with threads sharing one Repository.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import orjson
import pytest

from gateway.errors import Category, FhirError
from gateway.storage import Repository
from gateway.storage.base import Session, StoredVersion
from gateway.storage.sqlite import SqliteRepository
from tests.storage.factories import identifier_index, patient

T = TypeVar("T")


def _race(n: int, work: Callable[[int], T]) -> list[T]:
    barrier = threading.Barrier(n)

    def one(i: int) -> T:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_a_second_writer_waits_and_then_sees_the_first_writers_commit(repo: Repository) -> None:
    with repo.writer() as s:
        s.write("Patient", "w", patient(family="v1"), "POST")
    first_wrote, release = threading.Event(), threading.Event()
    second: list[StoredVersion] = []

    def first() -> None:
        with repo.writer() as s:
            s.write("Patient", "w", patient(family="first"), "PUT")
            first_wrote.set()
            assert release.wait(30)

    def then_second() -> None:
        with repo.writer() as s:
            s.lock("Patient/w")
            current = s.current("Patient", "w")
            assert current is not None
            body = orjson.loads(current.body)
            body["name"].append({"family": "second"})
            second.append(s.write("Patient", "w", body, "PUT"))

    a = threading.Thread(target=first)
    a.start()
    assert first_wrote.wait(30)
    b = threading.Thread(target=then_second)
    b.start()
    b.join(timeout=0.5)
    assert b.is_alive(), "the second writer must wait while the first holds its transaction"
    assert second == []
    release.set()
    a.join(timeout=30)
    b.join(timeout=30)
    assert len(second) == 1 and second[0].version == 3
    assert [n["family"] for n in orjson.loads(second[0].body)["name"]] == ["first", "second"]


def test_read_modify_write_under_the_lock_loses_no_update(repo: Repository) -> None:
    with repo.writer() as s:
        s.write("Patient", "counter", patient(family="c"), "POST")

    def add_given(i: int) -> None:
        with repo.writer() as s:
            s.lock("Patient/counter")
            current = s.current("Patient", "counter")
            assert current is not None
            body = orjson.loads(current.body)
            body["name"][0].setdefault("given", []).append(str(i))
            s.write("Patient", "counter", body, "PUT")

    n = 24
    _race(n, add_given)
    with repo.reader() as s:
        final = s.current("Patient", "counter")
        total = s.history("Patient", "counter", None, None, 0, 1)[1]
    assert final is not None and final.version == n + 1 and total == n + 1
    assert sorted(orjson.loads(final.body)["name"][0]["given"], key=int) == [
        str(i) for i in range(n)
    ]


def _matching(s: Session, value: str) -> list[tuple]:
    return s.query(
        "SELECT res_id FROM sp_token WHERE res_type = ? AND param = ? AND system = ? AND code = ?",
        ("Patient", "identifier", "urn:test", value),
    )


def test_lock_then_check_makes_conditional_create_single(repo: Repository) -> None:
    """The conditional-create pattern of gateway/fhir_api: lock the type key, search, then write."""

    def create_if_absent(i: int) -> str:
        with repo.writer() as s:
            s.lock("conditional-create:Patient")
            found = _matching(s, "only-one")
            if found:
                return str(found[0][0])
            return s.write("Patient", str(uuid.uuid4()), patient("only-one"), "POST").id

    ids = _race(30, create_if_absent)
    assert len(set(ids)) == 1
    with repo.reader() as s:
        assert len(_matching(s, "only-one")) == 1
        assert s.history("Patient", None, None, None, 0, 1)[1] == 1


def test_readers_see_a_consistent_snapshot(repo: Repository) -> None:
    """A reader never sees a resource row without its history row (one transaction each)."""
    stop = threading.Event()
    problems: list[str] = []

    def writer() -> None:
        for i in range(40):
            with repo.writer() as s:
                s.write("Patient", f"snap{i}", patient(str(i)), "POST")
        stop.set()

    def reader() -> None:
        while not stop.is_set():
            with repo.reader() as s:
                live = s.query("SELECT COUNT(*) FROM resources")[0][0]
                versions = s.query("SELECT COUNT(*) FROM history")[0][0]
                index = s.query("SELECT COUNT(*) FROM sp_token")[0][0]
            if not live == versions == index:
                problems.append(f"resources={live} history={versions} sp_token={index}")

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert problems == []


def test_lock_order_deadlock_is_a_retryable_busy_error(repo: Repository) -> None:
    """Opposite lock orders: PostgreSQL aborts one writer (503 busy, not a 500); SQLite has one
    global write lock, so both writers simply run one after the other."""
    both_hold_first = threading.Barrier(2, timeout=30)

    def writer(i: int) -> str:
        first, second = ("Patient/k1", "Patient/k2") if i == 0 else ("Patient/k2", "Patient/k1")
        try:
            with repo.writer() as s:
                s.lock(first)
                if repo.dialect == "postgres":
                    both_hold_first.wait()
                s.lock(second)
                s.write("Patient", f"dl{i}", patient(), "POST")
        except FhirError as e:
            return e.category.value
        return "ok"

    outcomes = sorted(_race(2, writer))
    assert outcomes == (["busy", "ok"] if repo.dialect == "postgres" else ["ok", "ok"])


def test_sqlite_writer_past_the_busy_timeout_is_busy_not_a_fault(tmp_path: Path) -> None:
    repo = SqliteRepository(tmp_path / "busy.db", identifier_index, busy_timeout_s=0.2)
    blocker = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(FhirError) as caught, repo.writer() as s:
            s.write("Patient", "b", patient(), "POST")
        assert caught.value.category is Category.BUSY and caught.value.status == 503
        blocker.execute("ROLLBACK")
        with repo.writer() as s:  # the thread's connection is usable again
            assert s.write("Patient", "b", patient(), "POST").version == 1
    finally:
        blocker.close()
        repo.close()
