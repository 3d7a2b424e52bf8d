"""Search-index rows are written with the resource, replaced on update and removed on delete."""

from __future__ import annotations

from gateway.storage import Repository
from tests.storage.factories import patient, strings, tokens


def test_index_rows_follow_the_current_version(repo: Repository) -> None:
    with repo.writer() as s:
        s.write("Patient", "i1", patient("a", "b", family="Virtanen"), "POST")
        s.write("Patient", "other", patient("a"), "POST")
    with repo.reader() as s:
        assert tokens(s, "Patient", "i1") == [
            ("identifier", "urn:test", "a"),
            ("identifier", "urn:test", "b"),
        ]
        assert strings(s, "Patient", "i1") == [("family", "virtanen", "Virtanen")]

    with repo.writer() as s:
        s.write("Patient", "i1", patient("c"), "PUT")
    with repo.reader() as s:
        assert tokens(s, "Patient", "i1") == [("identifier", "urn:test", "c")]
        assert strings(s, "Patient", "i1") == []  # the family name is gone from v2

    with repo.writer() as s:
        assert s.delete("Patient", "i1") is not None
    with repo.reader() as s:
        assert tokens(s, "Patient", "i1") == []
        # Another resource's rows are untouched by the update and the delete.
        assert tokens(s, "Patient", "other") == [("identifier", "urn:test", "a")]


def test_rows_are_scoped_by_type_as_well_as_id(repo: Repository) -> None:
    with repo.writer() as s:
        s.write("Patient", "same", patient("p"), "POST")
        s.write("Practitioner", "same", {**patient("q"), "resourceType": "Practitioner"}, "POST")
        s.delete("Patient", "same")
    with repo.reader() as s:
        assert tokens(s, "Patient", "same") == []
        assert tokens(s, "Practitioner", "same") == [("identifier", "urn:test", "q")]
