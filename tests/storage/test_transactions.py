"""A writer session is one transaction: resource, history and index rows commit or roll back
together; and the read path serves exactly the stored bytes, never a re-serialisation."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.consent.vocabulary import CUSTODIAN_EXTENSION
from gateway.fhir_api.context import Services
from gateway.storage import Repository
from tests.storage.factories import counts, patient, tokens


class Boom(Exception):
    """Raised inside a writer session to force a rollback."""


def test_a_failing_writer_rolls_back_resource_history_and_index(repo: Repository) -> None:
    with repo.writer() as s:
        s.write("Patient", "keep", patient("k1"), "POST")
    with repo.reader() as s:
        before = counts(s)

    with pytest.raises(Boom), repo.writer() as s:
        s.write("Patient", "new", patient("n1", family="Uusi"), "POST")
        s.write("Patient", "keep", patient("k2"), "PUT")
        s.delete("Patient", "keep")
        assert counts(s)["history"] == before["history"] + 3  # visible inside the transaction
        raise Boom

    with repo.reader() as s:
        assert counts(s) == before
        assert s.current("Patient", "new") is None
        kept = s.current("Patient", "keep")
        assert kept is not None and kept.version == 1 and not kept.deleted
        assert tokens(s, "Patient", "keep") == [("identifier", "urn:test", "k1")]
    # The connection is usable again after the rollback.
    with repo.writer() as s:
        assert s.write("Patient", "keep", patient("k3"), "PUT").version == 2


def test_a_failing_sql_statement_rolls_back_the_earlier_writes(repo: Repository) -> None:
    with repo.reader() as s:
        before = counts(s)
    with pytest.raises(Exception, match=r"(?i)no such table|does not exist"), repo.writer() as s:
        s.write("Patient", "half", patient("h"), "POST")
        s.execute("INSERT INTO no_such_table VALUES (1)")
    with repo.reader() as s:
        assert counts(s) == before


def test_reads_return_the_bytes_the_write_stored(repo: Repository) -> None:
    # Non-ASCII text and an element order the models would not produce.
    body = {
        "resourceType": "Patient",
        "gender": "female",
        "name": [{"text": "Äijälä Öhman"}],
        "active": True,
    }
    with repo.writer() as s:
        written = s.write("Patient", "bytes", body, "POST")
    with repo.reader() as s:
        current = s.current("Patient", "bytes")
        version = s.version("Patient", "bytes", 1)
        (in_history,), _ = s.history("Patient", "bytes", None, None, 0, 1)
    assert current is not None and version is not None
    assert current.body == version.body == in_history.body == written.body
    assert list(orjson.loads(written.body))[3:] == ["gender", "name", "active"]


def test_http_read_serves_stored_bytes_verbatim(client: TestClient, services: Services) -> None:
    created = client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "other"})
    assert created.status_code == 201
    pid = created.json()["id"]
    # Replace the stored bytes by an equivalent JSON text no serialiser would emit: if the read
    # path parsed and re-serialised, the spacing and key order would change.
    odd = (
        b'{ "meta" : {"lastUpdated":"2024-01-01T00:00:00.000000Z", "versionId":"1"},'
        b' "id":"' + pid.encode() + b'",  "gender":"other", "resourceType":"Patient" ,'
        b' "extension" : [{"url":"' + CUSTODIAN_EXTENSION.encode() + b'",'
        b' "valueReference":{"reference":"Organization/org-sote-keskus"}}] }'
    )  # the creator (the client fixture's organisation) stays its custodian, so may read it
    with services.repo.writer() as s:
        s.execute(
            "UPDATE resources SET body = ? WHERE res_type = ? AND res_id = ?", (odd, "Patient", pid)
        )
        s.execute(
            "UPDATE history SET body = ? WHERE res_type = ? AND res_id = ?", (odd, "Patient", pid)
        )
    read = client.get(f"/fhir/Patient/{pid}")
    assert read.status_code == 200 and read.content == odd
    vread = client.get(f"/fhir/Patient/{pid}/_history/1")
    assert vread.status_code == 200 and vread.content == odd


@pytest.mark.parametrize("fails", [False, True], ids=["commits", "rolls-back"])
def test_a_writer_not_waiting_for_the_disk_is_still_one_transaction(
    repo: Repository, fails: bool
) -> None:
    """writer(sync=False) (the relay's bookkeeping): its commit does not wait for the disk,
    within it and only within it; it commits or rolls back as any writer."""
    with repo.reader() as s:
        before = counts(s)
    try:
        with repo.writer(sync=False) as s:
            s.write("Patient", "relaxed", patient("r1"), "POST")
            if repo.dialect == "sqlite":
                assert s.query("PRAGMA synchronous")[0][0] == 1  # NORMAL: no fsync at commit
            else:
                assert s.query("SHOW synchronous_commit")[0][0] == "off"
            if fails:
                raise Boom
    except Boom:
        pass
    with repo.writer() as s:  # the next writer waits for the disk again
        if repo.dialect == "sqlite":
            assert s.query("PRAGMA synchronous")[0][0] == 2  # FULL
        else:
            assert s.query("SHOW synchronous_commit")[0][0] == "on"
    with repo.reader() as s:
        after = counts(s)
        stored = s.current("Patient", "relaxed")
    assert (stored is None) == fails
    assert after["history"] == before["history"] + (0 if fails else 1)
