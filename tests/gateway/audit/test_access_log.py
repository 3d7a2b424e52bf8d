"""A client's access log, through the search engine: newest first, reduced to who/when/why."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gateway.audit import builders as b
from gateway.audit.access_log import Access, access_log
from gateway.audit.context import AuditContext
from gateway.audit.recorder import record_all
from gateway.errors import FhirError
from gateway.fhir_api.context import Services


def test_access_log_newest_first(services: Services, ctx: AuditContext, bare: AuditContext) -> None:
    later = replace(bare, when=ctx.when + timedelta(minutes=5))
    latest = replace(ctx, when=ctx.when + timedelta(minutes=10), purpose_of_use=("TREAT",))
    with services.repo.writer() as s:
        record_all(
            s,
            [
                b.read(ctx, "CarePlan/cp1", ["p1"]),
                b.query_page(later, "Task", [("patient", "p1")], ["p1"]),
                b.consent_decision(latest, "p1", b.Decision.DENY, ["c1"], "CarePlan/cp9"),
                b.read(ctx, "CarePlan/other", ["p2"]),  # another client's record
            ],
        )
    with services.repo.reader() as s:
        log = access_log(services, s, "p1")
    assert log == [
        Access(
            when="2025-03-04T12:40:00.123456Z",
            organization="Organization/org-kela",
            practitioner_role="PractitionerRole/pr-kela-1",
            purpose=("TREAT",),
            event="AuthZ-Consent",
            outcome="8",
        ),
        Access("2025-03-04T12:35:00.123456Z", "Organization/org-hc", None, (), "search-type", "0"),
        Access(
            "2025-03-04T12:30:00.123456Z",
            "Organization/org-kela",
            "PractitionerRole/pr-kela-1",
            ("CAREMGT",),
            "read",
            "0",
        ),
    ]


def test_access_log_limit_and_empty(services: Services, ctx: AuditContext) -> None:
    events = [
        b.read(replace(ctx, when=ctx.when + timedelta(seconds=i)), "CarePlan/cp1", ["p1"])
        for i in range(5)
    ]
    with services.repo.writer() as s:
        record_all(s, events)
    with services.repo.reader() as s:
        log = access_log(services, s, "p1", limit=2)
        assert [a.when[17:19] for a in log] == ["04", "03"]
        assert access_log(services, s, "nobody") == []


def test_access_log_rejects_a_bad_id(services: Services) -> None:
    with services.repo.reader() as s, pytest.raises(FhirError):
        access_log(services, s, "p1&_id=x")
