"""Versions, history order, delete markers and `_since` bounds of the Repository contract."""

from __future__ import annotations

import orjson

from gateway.storage import Repository
from gateway.storage.base import StoredVersion
from tests.storage.factories import patient


def _write(repo: Repository, rid: str, body: dict, method: str = "PUT") -> StoredVersion:
    with repo.writer() as s:
        return s.write(body["resourceType"], rid, body, method)


def _delete(repo: Repository, rtype: str, rid: str) -> StoredVersion | None:
    with repo.writer() as s:
        return s.delete(rtype, rid)


def _keys(versions: list[StoredVersion]) -> list[tuple[str, int]]:
    return [(v.key, v.version) for v in versions]


def test_each_write_adds_one_version_with_server_meta(repo: Repository) -> None:
    stored = [
        _write(repo, "p1", patient(family=f"F{i}"), "POST" if i == 0 else "PUT") for i in range(3)
    ]
    assert [v.version for v in stored] == [1, 2, 3]
    assert stored[0].last_updated_us < stored[1].last_updated_us < stored[2].last_updated_us
    body = orjson.loads(stored[2].body)
    assert body["id"] == "p1"
    assert body["meta"] == {"versionId": "3", "lastUpdated": stored[2].last_updated}
    assert list(body)[:3] == ["resourceType", "id", "meta"]
    with repo.reader() as s:
        current = s.current("Patient", "p1")
        first = s.version("Patient", "p1", 1)
        assert s.version("Patient", "p1", 4) is None
        assert s.current("Patient", "nope") is None
    assert current == stored[2]
    assert (
        first is not None
        and first.method == "POST"
        and orjson.loads(first.body)["name"][0]["family"] == "F0"
    )


def test_client_supplied_meta_is_replaced_and_other_meta_kept(repo: Repository) -> None:
    body = patient()
    body["meta"] = {"versionId": "77", "lastUpdated": "2001-01-01T00:00:00Z", "source": "urn:x"}
    sv = _write(repo, "p2", body)
    meta = orjson.loads(sv.body)["meta"]
    assert meta["versionId"] == "1" and meta["lastUpdated"] == sv.last_updated
    assert meta["source"] == "urn:x"


def test_history_is_newest_first_at_every_level(repo: Repository) -> None:
    _write(repo, "a", patient(family="A1"), "POST")
    _write(repo, "b", {"resourceType": "Organization", "name": "B1"}, "POST")
    _write(repo, "a", patient(family="A2"))
    _delete(repo, "Organization", "b")
    with repo.reader() as s:
        system, total = s.history(None, None, None, None, 0, 10)
        type_level, type_total = s.history("Patient", None, None, None, 0, 10)
        instance, _ = s.history("Organization", "b", None, None, 0, 10)
        page, page_total = s.history(None, None, None, None, 1, 2)
    assert _keys(system) == [
        ("Organization/b", 2),
        ("Patient/a", 2),
        ("Organization/b", 1),
        ("Patient/a", 1),
    ]
    assert total == 4
    assert _keys(type_level) == [("Patient/a", 2), ("Patient/a", 1)] and type_total == 2
    assert [(v.version, v.deleted, v.method) for v in instance] == [
        (2, True, "DELETE"),
        (1, False, "POST"),
    ]
    assert _keys(page) == [("Patient/a", 2), ("Organization/b", 1)] and page_total == 4


def test_delete_stores_a_marker_and_keeps_history(repo: Repository) -> None:
    _write(repo, "d", patient("x"))
    marker = _delete(repo, "Patient", "d")
    assert marker is not None
    assert (marker.version, marker.deleted, marker.body, marker.method) == (2, True, b"", "DELETE")
    assert _delete(repo, "Patient", "d") is None  # deleting a deleted resource adds nothing
    assert _delete(repo, "Patient", "never") is None
    with repo.reader() as s:
        current = s.current("Patient", "d")
        assert current is not None and current.deleted and current.version == 2
        assert s.current_many([("Patient", "d")]) == []  # only live versions
        assert s.version("Patient", "d", 1) is not None
        assert s.history("Patient", "d", None, None, 0, 10)[1] == 2
    revived = _write(repo, "d", patient("y"))
    assert revived.version == 3 and not revived.deleted


def test_since_and_at_most_bound_history_by_last_updated(repo: Repository) -> None:
    v1 = _write(repo, "s", patient(family="one"))
    v2 = _write(repo, "s", patient(family="two"))
    v3 = _write(repo, "s", patient(family="three"))
    with repo.reader() as s:
        since, since_total = s.history("Patient", "s", v2.last_updated_us, None, 0, 10)
        upto, _ = s.history("Patient", "s", None, v2.last_updated_us, 0, 10)
        window, _ = s.history(None, None, v2.last_updated_us, v2.last_updated_us, 0, 10)
        future, future_total = s.history(None, None, v3.last_updated_us + 1, None, 0, 10)
    assert [v.version for v in since] == [3, 2] and since_total == 2
    assert [v.version for v in upto] == [2, 1]
    assert [v.version for v in window] == [2]
    assert future == [] and future_total == 0
    assert v1.last_updated_us < v2.last_updated_us


def test_current_many_keeps_the_requested_order_and_skips_unknown(repo: Repository) -> None:
    for rid in ("m1", "m2", "m3"):
        _write(repo, rid, patient(rid))
    with repo.reader() as s:
        found = s.current_many([("Patient", "m3"), ("Patient", "zz"), ("Patient", "m1")])
    assert [v.id for v in found] == ["m3", "m1"]


def test_current_many_reads_more_ids_than_one_in_list_holds(repo: Repository) -> None:
    """SQLite reads 500 ids per IN list, PostgreSQL one array: the same answer either way."""
    with repo.writer() as s:
        for n in range(520):
            s.write("Patient", f"b{n}", patient(f"b{n}"), "PUT")
    keys = [("Patient", f"b{n}") for n in range(519, -1, -1)]
    with repo.reader() as s:
        found = s.current_many([*keys, ("Patient", "missing")])
    assert [v.id for v in found] == [i for _, i in keys]


def test_versions_many_finds_exact_versions_and_leaves_out_the_rest(repo: Repository) -> None:
    for family in ("A", "B"):
        _write(repo, "vm1", patient("vm1", family=family))
    _write(repo, "vm2", patient("vm2"))
    with repo.reader() as s:
        assert s.versions_many([]) == {}
        found = s.versions_many(
            [("Patient", "vm1", 1), ("Patient", "vm1", 2), ("Patient", "vm2", 2),
             ("Observation", "vm1", 1), ("Patient", "vm2", 1)]
        )  # fmt: skip
    assert sorted(found) == [("Patient", "vm1", 1), ("Patient", "vm1", 2), ("Patient", "vm2", 1)]
    assert orjson.loads(found[("Patient", "vm1", 1)].body)["name"][0]["family"] == "A"
    assert orjson.loads(found[("Patient", "vm1", 2)].body)["name"][0]["family"] == "B"


def test_one_of_matches_exactly_the_values_given(repo: Repository) -> None:
    """Session.one_of: PostgreSQL's one array condition and SQLite's IN lists (500 a part) pick
    the same rows, for numbers and text; no values, no parts (no statement to run)."""
    with repo.writer() as s:
        for n in range(1, 1201):
            s.write("Patient", f"o{n}", patient(f"o{n}"), "PUT")
    wanted = list(range(3, 1201, 2))  # 599 odd numbers: two IN lists on SQLite
    ids = [f"o{n}" for n in wanted] + ["o-none", "o'; DROP TABLE resources; --"]
    with repo.reader() as s:
        assert s.one_of("res_id", [], "TEXT") == []
        parts = s.one_of("res_id", ids, "TEXT")
        assert len(parts) == (1 if repo.dialect == "postgres" else 2)
        got = sorted(
            str(r[0])
            for where, params in parts
            for r in s.query(f"SELECT res_id FROM resources WHERE {where}", params)
        )
        versions = [
            int(r[0])
            for where, params in s.one_of("version", [1, 7], "BIGINT")
            for r in s.query(f"SELECT DISTINCT version FROM resources WHERE {where}", params)
        ]
    assert got == sorted(f"o{n}" for n in wanted)
    assert versions == [1]
