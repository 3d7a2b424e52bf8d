"""The rules against the sample journeys (samples/bundles): who sees whose plan, and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.consent.context import ConsentContext
from gateway.consent.hooks import can_see
from gateway.consent.model import Caller, Reason
from tests.gateway.consent.builders import DictLoader

BUNDLES = Path(__file__).resolve().parents[3] / "samples" / "bundles"
DURING = datetime(2026, 11, 1, 12, tzinfo=UTC)  # inside every sample consent's period
AFTER = datetime(2027, 10, 6, 12, tzinfo=UTC)  # Mikko's consent ended 2027-10-05
# The sample consents permit care management (v3-ActReason CAREMGT): partners state it.
CAREMGT = ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "CAREMGT")


def loader() -> DictLoader:
    files = sorted(BUNDLES.glob("*.json"))
    return DictLoader(e["resource"] for f in files for e in json.loads(f.read_text())["entry"])


@pytest.mark.parametrize(
    ("org", "key", "reason"),
    [
        ("org-tyokykytiimi", ("Goal", "aino-goal-1"), Reason.CLIENT_CUSTODIAN),
        ("org-tyokykytiimi", ("CarePlan", "aino-plan"), Reason.RECORD_HOLDER),
        ("org-tyokykytiimi", ("Task", "aino-task-kela"), Reason.RECORD_HOLDER),  # via its role
        ("org-kela", ("CarePlan", "aino-plan"), Reason.CONSENT_PERMIT),
        ("org-kela", ("Task", "mikko-task-etuudet"), Reason.RECORD_HOLDER),  # the owner
        ("org-kela", ("Provenance", "mikko-provenance"), Reason.CONSENT_PERMIT),
        ("org-tyollisyyspalvelut", ("CarePlan", "mikko-plan"), Reason.CONSENT_DENY),
        ("org-tyollisyyspalvelut", ("Patient", "mikko"), Reason.CONSENT_DENY),
        ("org-jarjesto", ("CarePlan", "mikko-plan"), Reason.NO_CONSENT),
        ("org-typ", ("Goal", "laura-goal-1"), Reason.CLIENT_CUSTODIAN),
        ("org-sote-keskus", ("Patient", "mikko"), Reason.RECORD_HOLDER),
        ("org-sote-keskus", ("CarePlan", "mikko-plan"), Reason.NO_CONSENT),
        ("org-jarjesto", ("Organization", "org-kela"), Reason.DIRECTORY),
    ],
)
def test_sample_decisions(org: str, key: tuple[str, str], reason: Reason) -> None:
    store = loader()
    caller = Caller(org, purpose=CAREMGT)
    assert can_see(caller, store.store[key], ConsentContext(store, DURING)).reason is reason


def test_a_purpose_bound_permit_needs_the_purpose_stated() -> None:
    store, plan = loader(), ("CarePlan", "aino-plan")
    unstated = can_see(Caller("org-kela"), store.store[plan], ConsentContext(store, DURING))
    assert (unstated.allowed, unstated.reason) == (False, Reason.NO_CONSENT)
    other = Caller("org-kela", purpose=(CAREMGT[0], "HRESCH"))
    assert not can_see(other, store.store[plan], ConsentContext(store, DURING)).allowed


def test_mikkos_consent_ends_with_its_period() -> None:
    store = loader()
    plan = store.store[("CarePlan", "mikko-plan")]
    assert not can_see(
        Caller("org-kela", purpose=CAREMGT), plan, ConsentContext(store, AFTER)
    ).allowed
    assert can_see(Caller("org-sosiaalipalvelut"), plan, ConsentContext(store, AFTER)).allowed
