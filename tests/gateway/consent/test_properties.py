"""Properties over random consent trees (Hypothesis drives world.py's generator).

Revoking a permit or adding a deny never widens what anyone sees; custodians always see; a Period's
start and end are inclusive to the microsecond; masking never leaks and never mutates.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.consent.context import ConsentContext
from gateway.consent.hooks import can_see, will_see
from gateway.consent.model import Caller
from tests.gateway.consent.builders import DictLoader, consent, decide_one, plan, provision
from tests.gateway.consent.reference_model import MONTH_START, Prov
from tests.gateway.consent.world import CLASSES, ORGS, provision_fhir
from tests.gateway.consent.world import provision as random_provision

RECORDS = [plan(t, f"{t}-1") for t in CLASSES if t != "Patient"]
instants = st.integers(0, 12 * 86400 * 10**6).map(
    lambda us: MONTH_START - timedelta(days=1) + timedelta(microseconds=us)
)


def trees(draw: Any, n: int) -> list[dict[str, Any]]:
    rng = draw(st.randoms(use_true_random=False))
    return [consent(provision_fhir(random_provision(rng)), id=f"c{i}") for i in range(n)]


def seen(consents: list[dict[str, Any]], now: datetime) -> set[tuple[str, str]]:
    return {
        (org, r["id"])
        for org in ORGS
        for r in RECORDS
        if decide_one(org, r, consents, now=now).allowed
    }


@settings(max_examples=150, deadline=None)
@given(st.data(), instants, st.lists(st.sampled_from(ORGS), min_size=1, max_size=3))
def test_revoking_a_permit_never_widens(data: st.DataObject, now: datetime, to: list) -> None:
    consents = trees(data.draw, data.draw(st.integers(0, 2)))
    permit = consent(provision("permit", *to), id="z-permit")
    revoked = dict(permit, status="inactive")
    assert seen([*consents, revoked], now) <= seen([*consents, permit], now)


@settings(max_examples=100, deadline=None)
@given(st.data(), instants, st.sampled_from(["inactive", "rejected", "entered-in-error"]))
def test_with_every_consent_revoked_nobody_else_sees(
    data: st.DataObject, now: datetime, status: str
) -> None:
    consents = [dict(c, status=status) for c in trees(data.draw, data.draw(st.integers(1, 3)))]
    assert seen(consents, now) == set()


@settings(max_examples=150, deadline=None)
@given(st.data(), instants, st.lists(st.sampled_from([None, *ORGS]), max_size=2))
def test_adding_a_deny_never_widens(data: st.DataObject, now: datetime, actors: list) -> None:
    consents = trees(data.draw, data.draw(st.integers(0, 2)))
    deny = consent(provision("deny", *[a for a in actors if a]), id="z-deny")
    assert seen([*consents, deny], now) <= seen(consents, now)


@settings(max_examples=100, deadline=None)
@given(st.data(), instants)
def test_the_client_custodian_always_sees(data: st.DataObject, now: datetime) -> None:
    consents = trees(data.draw, data.draw(st.integers(1, 3)))
    assert all(decide_one("org-cust", r, consents, now=now).allowed for r in RECORDS)


@settings(max_examples=200, deadline=None)
@given(instants, st.sampled_from(["start", "end"]))
def test_period_bounds_are_inclusive_to_the_microsecond(now: datetime, side: str) -> None:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    given_ = [consent(provision("permit", "org-b", period={side: stamp}))]
    outside = now + timedelta(microseconds=-1 if side == "start" else 1)
    assert decide_one("org-b", plan(), given_, now=now).allowed
    assert not decide_one("org-b", plan(), given_, now=outside).allowed


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), st.sampled_from(["Goal", "CarePlan", "Communication"]))
def test_masking_never_leaks_the_name_and_never_mutates(name: str, rtype: str) -> None:
    label = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    pat = {"resourceType": "Patient", "id": "p1", "meta": {"security": [label]}}
    resource = {
        **plan(rtype),
        "subject": {"reference": "Patient/p1", "display": f"«{name}»"},
        "note": [{"authorReference": {"reference": "Patient/p1", "display": f"«{name}»"}}],
    }
    original = repr(resource)
    ctx = ConsentContext(DictLoader([pat, consent(provision("permit", "org-b"))]), MONTH_START)
    assert can_see(Caller("org-b"), resource, ctx).allowed
    assert f"«{name}»" not in repr(will_see(Caller("org-b"), resource, ctx))
    assert repr(resource) == original


def test_random_trees_render_every_shape() -> None:
    rng = random.Random(3)
    kinds = {p.type for p in (random_provision(rng) for _ in range(200)) if isinstance(p, Prov)}
    assert kinds == {"permit", "deny", None}
