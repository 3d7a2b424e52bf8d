"""notifications.Shared, on both stores: a relay round reads its events' focus versions a few
hundred per query, each the exact version named (not the current one), and a version that is
not stored is told as nothing left to decide on; a decision is made once per subscriber and
version, and every row it stands for keeps its own identity."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from gateway.consent.context import ConsentContext
from gateway.consent.enforcement import RepoLoader
from gateway.consent.model import Caller
from gateway.delivery import notifications
from gateway.delivery.outbox import Row
from gateway.fhir_api.context import Services
from gateway.samples import load_samples


def row(pos: int, focus: str) -> Row:
    return Row(pos, f"event-{pos}", "rest-hook", "sub", pos, "event", focus, "", "", 1, 1, 1)


def task(id: str, status: str) -> dict:
    return {
        "resourceType": "Task", "id": id, "status": status, "intent": "order",
        "for": {"reference": "Patient/aino"},
        "owner": {"reference": "Organization/org-kela"},
    }  # fmt: skip


def test_a_round_reads_the_named_versions_in_parts_and_decides_each_once(
    services: Services,
) -> None:
    load_samples(services)
    count = 350  # more than one query's worth (SqlSession.versions_many reads 300 a query)
    with services.repo.writer() as session:
        for n in range(count):
            session.write("Task", f"shared-{n}", task(f"shared-{n}", "requested"), "PUT")
            session.write("Task", f"shared-{n}", task(f"shared-{n}", "in-progress"), "PUT")
    wanted = [row(n, f"Task/shared-{n}/_history/1") for n in range(count)]
    missing = row(count, "Task/never-stored/_history/1")  # no version of it at all
    with services.repo.reader() as session:
        context = ConsentContext(RepoLoader(session), datetime.now(UTC))
        shared = notifications.Shared(session, context)
        told = notifications.disclose(session, [*wanted, missing], None, context, True, shared)
        assert [e.row for e in told.events] == wanted
        assert {e.resource["status"] for e in told.events} == {"requested"}  # type: ignore[index]
        assert [(r, d) for r, d in told.withheld] == [(missing, None)]
        # the same version in another subscription's row: decided once, told with its own row
        kela = Caller("org-kela")
        again = row(10_000, wanted[0].focus or "")
        first = shared.decide(wanted[0], kela, False)
        second = shared.decide(again, kela, False)
        assert isinstance(first, notifications.Event) and isinstance(second, notifications.Event)
        assert (first.row, second.row) == (wanted[0], again)
        assert first.reference == second.reference == "Task/shared-0"
        assert second.clients == ("aino",)
        stored = orjson.loads(session.version("Task", "shared-0", 1).body)  # type: ignore[union-attr]
        assert shared.decide(again, None, True).resource == stored  # type: ignore[union-attr]
