"""The randomized reference-model test: gateway.consent against an independent model.

200 clients x 4 organisations with random consents (nested, revoked, prohibitions, periods at
every precision), TURVAKIELTO clients and missing Patients; 12,000 random (caller, record,
purpose, time) queries, the times concentrated on every rule boundary and 1 µs either side.
Every answer (may see? masked?) must equal the model's. The seed is printed on failure.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

import pytest

from gateway.consent.context import ConsentContext
from gateway.consent.hooks import can_see, will_see
from gateway.consent.model import Caller, Reason
from tests.gateway.consent.builders import V3_ACT_REASON, DictLoader
from tests.gateway.consent.reference_model import MONTH_START, Query, masked, may_see
from tests.gateway.consent.world import ORGS, PURPOSES, World, build

QUERIES_PER_INSTANT = 300
INSTANTS = 40


def instants(rng: random.Random, world: World) -> list[datetime]:
    edges = rng.sample(world.instants, min(len(world.instants), INSTANTS * 3 // 4))
    spread = [
        MONTH_START + timedelta(microseconds=rng.randrange(-2 * 86400 * 10**6, 12 * 86400 * 10**6))
        for _ in range(INSTANTS - len(edges))
    ]
    return edges + spread


def query(rng: random.Random, now: datetime) -> Query:
    org = rng.choice(ORGS)
    return Query(
        org, rng.choice([None, f"r-{org}"]), rng.choice([None, None, "CAREMGT", *PURPOSES]), now
    )


@pytest.mark.parametrize("seed", [20261101, 7, 1917])
def test_decisions_agree_with_the_reference_model(seed: int) -> None:
    rng = random.Random(seed)
    world = build(rng)
    loader = DictLoader(world.stored)
    disagreements: list[str] = []
    reasons: Counter[str] = Counter()
    for now in instants(rng, world):
        context = ConsentContext(loader, now)
        asked = [(rng.choice(world.records), query(rng, now)) for _ in range(QUERIES_PER_INSTANT)]
        context.prepare(fhir for (_, fhir), _ in asked)
        for (thing, fhir), q in asked:
            caller = Caller(q.org, q.role, (V3_ACT_REASON, q.purpose) if q.purpose else None)
            decision = can_see(caller, fhir, context)
            expected = may_see(world.clients, thing, q)
            reasons[decision.reason] += 1
            shown_masked = decision.allowed and will_see(caller, fhir, context) is not fhir
            want_masked = expected and masked(world.clients, thing, q)
            reasons["masked"] += shown_masked
            if (decision.allowed, shown_masked) != (expected, want_masked):
                disagreements.append(
                    f"seed {seed} {q} {fhir['resourceType']}/{fhir['id']}: "
                    f"{decision} / model {expected}, masked {want_masked}"
                )
    assert disagreements == [], f"{len(disagreements)} disagreements, first: {disagreements[:3]}"
    assert sum(reasons[r] for r in Reason) == INSTANTS * QUERIES_PER_INSTANT
    # Reasons of writes.py and of the scope check, not of a read decision.
    not_reads = (
        Reason.WRITE_REFUSED,
        Reason.INSUFFICIENT_SCOPE,
        Reason.FOREIGN_ROLE,
        Reason.OPERATION_REFUSED,
    )
    read_reasons = [r for r in Reason if r not in not_reads]
    # The world must exercise every rule, not only the easy ones.
    for reason in read_reasons:
        assert reasons[reason] > 0, reason
    assert reasons[Reason.CONSENT_PERMIT] > 250 and reasons[Reason.CONSENT_DENY] > 200
    assert reasons["masked"] > 30
