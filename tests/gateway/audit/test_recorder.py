"""The recorder on SQLite and PostgreSQL: events commit and roll back with the caller's
transaction, read events are stored durably on their own, and `AuditEvent?patient=` finds them."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from gateway.audit import builders as b
from gateway.audit.context import AuditContext
from gateway.audit.recorder import record, record_all, record_reads
from gateway.fhir_api.context import FhirRequest, Services


def _count(svc: Services, resource_type: str = "AuditEvent") -> int:
    with svc.repo.reader() as s:
        rows = s.query(
            "SELECT COUNT(*) FROM resources WHERE res_type = ? AND deleted = 0", (resource_type,)
        )
    return int(rows[0][0])


def _search(svc: Services, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    req = FhirRequest("GET", "http://gw", resource_type="AuditEvent", params=params)
    bundle = orjson.loads(orjson.dumps(svc.search.search(svc, req).body))
    return [e["resource"] for e in bundle.get("entry", [])]


def test_record_commits_with_the_change_it_records(services: Services, ctx: AuditContext) -> None:
    with services.repo.writer() as s:
        s.write("Basic", "b1", {"resourceType": "Basic", "code": {"text": "x"}}, "PUT")
        record(s, b.update(ctx, "Basic/b1", ["p1"]))
    assert (_count(services, "Basic"), _count(services)) == (1, 1)


def test_a_rolled_back_transaction_leaves_no_audit_event(
    services: Services, ctx: AuditContext
) -> None:
    with pytest.raises(RuntimeError), services.repo.writer() as s:
        s.write("Basic", "b1", {"resourceType": "Basic", "code": {"text": "x"}}, "PUT")
        record(s, b.update(ctx, "Basic/b1", ["p1"]))
        raise RuntimeError("the write failed after auditing")
    assert (_count(services, "Basic"), _count(services)) == (0, 0)


def test_record_stores_audit_events_only(services: Services) -> None:
    with pytest.raises(ValueError), services.repo.writer() as s:
        record(s, {"resourceType": "Basic"})


def test_record_reads_is_stored_on_return(services: Services, ctx: AuditContext) -> None:
    record_reads(services.repo, [b.read(ctx, "CarePlan/cp1", ["p1"])])  # one: group commit
    assert _count(services) == 1
    pages = [b.query_page(ctx, "CarePlan", [("_count", "1")], [p]) for p in ("p1", "p2")]
    record_reads(services.repo, pages)  # several: one transaction
    record_reads(services.repo, [])
    assert _count(services) == 3


def test_concurrent_read_events_are_all_stored(services: Services, ctx: AuditContext) -> None:
    """Eight threads, as the interaction pool: the group commit loses nothing."""
    errors: list[BaseException] = []

    def reads(n: int) -> None:
        try:
            for i in range(5):
                record_reads(services.repo, [b.read(ctx, f"CarePlan/cp{n}-{i}", [f"p{n}"])])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reads, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _count(services) == 40


def test_patient_search_finds_recorded_events(services: Services, ctx: AuditContext) -> None:
    with services.repo.writer() as s:
        record_all(
            s,
            [
                b.read(ctx, "CarePlan/cp1", ["p1"]),
                b.query_page(ctx, "Task", [("patient", "Patient/p2")], ["p1", "p2"]),
                b.consent_decision(ctx, "p2", b.Decision.DENY, ["c9"]),
                b.token_request(ctx, "system/Task.rs", "j1"),  # about no client
            ],
        )
    found = _search(services, [("patient", "p1")])
    assert sorted(e["subtype"][0]["code"] for e in found) == ["read", "search-type"]
    found = _search(services, [("patient", "Patient/p2")])
    assert sorted(e["subtype"][0]["code"] for e in found) == ["AuthZ-Consent", "search-type"]
    denied = _search(services, [("patient", "p2"), ("outcome", "8")])
    assert [e["entity"][1]["what"]["reference"] for e in denied] == ["Consent/c9"]
    by_org = _search(services, [("agent", "Organization/org-kela"), ("subtype", "read")])
    assert len(by_org) == 1
