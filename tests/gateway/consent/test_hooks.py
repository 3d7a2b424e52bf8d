"""The hook points with a ConsentContext over an in-memory loader: loading once, masking."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.consent.context import ConsentContext
from gateway.consent.hooks import Start, can_see, start_operation, will_see
from gateway.consent.model import Caller, Reason, Verdict
from gateway.consent.vocabulary import HETU_SYSTEM, SECURITY_LABELS
from tests.gateway.consent.builders import (
    NOW,
    DictLoader,
    consent,
    patient,
    plan,
    provision,
    ref,
    task,
)

ROLE = {"resourceType": "PractitionerRole", "id": "r1", "organization": ref("Organization/org-a")}


def context(*resources: dict[str, Any]) -> tuple[ConsentContext, DictLoader]:
    loader = DictLoader(resources)
    return ConsentContext(loader, NOW), loader


def test_a_page_loads_patients_roles_and_consents_once() -> None:
    page = [task(f"t{i}", client=f"p{i % 3}", requester="PractitionerRole/r1") for i in range(100)]
    pats = [patient(f"p{i}") for i in range(3)]
    consents = [consent(provision("permit", "org-b"), id=f"c{i}", client=f"p{i}") for i in range(3)]
    ctx, loader = context(ROLE, *pats, *consents)
    ctx.prepare(page)
    assert [d.reason for d in (can_see(Caller("org-b"), t, ctx) for t in page)] == [
        Reason.CONSENT_PERMIT
    ] * 100
    assert all(can_see(Caller("org-a"), t, ctx).reason is Reason.RECORD_HOLDER for t in page)
    assert len(loader.consent_calls) == 1 and sorted(loader.consent_calls[0]) == ["p0", "p1", "p2"]
    assert len(loader.reads) == 2  # roles (and one-hop targets), then Patients


def test_can_see_without_prepare_loads_lazily() -> None:
    ctx, loader = context(patient(), consent(provision("permit", "org-b")))
    assert can_see(Caller("org-b"), plan(), ctx).allowed
    assert can_see(Caller("org-b"), plan(id="x2"), ctx).allowed
    assert len(loader.consent_calls) == 1


def test_provenance_is_tied_to_its_targets_client() -> None:
    prov = {"resourceType": "Provenance", "id": "v1", "target": [ref("CarePlan/x1")]}
    ctx, _ = context(plan(), patient(), consent(provision("permit", "org-b")))
    assert can_see(Caller("org-b"), prov, ctx).allowed
    assert can_see(Caller("org-c"), prov, ctx).verdict is Verdict.NOT_APPLICABLE


def test_provenance_of_a_missing_target_is_for_holders_only() -> None:
    prov = {"resourceType": "Provenance", "id": "v1", "target": [ref("CarePlan/gone")]}
    ctx, _ = context(patient(), consent(provision("permit", "org-b")))
    assert can_see(Caller("org-b"), prov, ctx).reason is Reason.NO_CLIENT


def test_a_practitioner_role_requester_makes_its_organisation_the_holder() -> None:
    ctx, _ = context(ROLE, patient())
    assert can_see(Caller("org-a"), task(requester="PractitionerRole/r1"), ctx).allowed
    assert not can_see(Caller("org-b"), task(requester="PractitionerRole/r1"), ctx).allowed


def test_revocation_takes_effect_on_the_next_request() -> None:
    given = consent(provision("permit", "org-b"))
    loader = DictLoader([patient(), given])
    assert can_see(Caller("org-b"), plan(), ConsentContext(loader, NOW)).allowed
    loader.store[("Consent", "c1")] = {**given, "status": "inactive"}
    assert not can_see(Caller("org-b"), plan(), ConsentContext(loader, NOW)).allowed


def test_loader_returning_a_foreign_consent_is_ignored() -> None:
    class Leaky(DictLoader):
        def consents(self, client_ids):  # type: ignore[no-untyped-def]
            return [consent(provision("permit", "org-b"), client="p-other")]

    ctx = ConsentContext(Leaky([patient()]), NOW)
    assert not can_see(Caller("org-b"), plan(), ctx).allowed


@pytest.mark.parametrize(
    ("interaction", "rtype", "outcome"),
    [
        ("read", "CarePlan", Start.PROCEED),
        ("search-system", None, Start.PROCEED),
        ("history-system", None, Start.PROCEED),
        ("transaction", None, Start.PROCEED),
        ("read", "AuditEvent", Start.PROCEED),
        ("create", "AuditEvent", Start.DENY),
        ("delete", "AuditEvent", Start.DENY),
        ("export", None, Start.DENY),  # unknown interactions are refused until registered
    ],
)
def test_start_operation(interaction: str, rtype: str | None, outcome: Start) -> None:
    assert start_operation(Caller("org-b"), interaction, rtype).outcome is outcome


PROTECTED = patient(labels=[(SECURITY_LABELS, "turvakielto")])
SHOWN_TASK = {
    **task(requester="Organization/org-req"),
    "for": {"reference": "Patient/p1", "display": "Salainen Asiakas", "identifier": {"value": "1"}},
    "text": {"status": "generated", "div": "<div>Salainen Asiakas, Piilokatu 1</div>"},
    "contained": [{"resourceType": "Patient", "id": "c"}, {"resourceType": "Basic", "id": "b"}],
    "input": [{"valueIdentifier": {"system": HETU_SYSTEM, "value": "010101-900R"}}],
    "note": [{"authorReference": {"reference": "PractitionerRole/r1", "display": "Nurse"}}],
}


def test_will_see_masks_a_protected_clients_identity_for_consented_non_custodians() -> None:
    ctx, _ = context(PROTECTED, consent(provision("permit", "org-b")))
    assert can_see(Caller("org-b"), SHOWN_TASK, ctx).allowed
    shown = will_see(Caller("org-b"), SHOWN_TASK, ctx)
    assert shown["for"] == {"reference": "Patient/p1"}
    assert "text" not in shown and shown["contained"] == [{"resourceType": "Basic", "id": "b"}]
    assert "Salainen" not in str(shown) and "010101-900R" not in str(shown)
    assert shown["note"] == SHOWN_TASK["note"]  # other references keep their display
    assert shown["meta"]["security"][-1]["code"] == "REDACTED"
    assert "meta" not in SHOWN_TASK and SHOWN_TASK["text"]  # the input is unchanged


@pytest.mark.parametrize("org", ["org-cust", "org-req"])
def test_custodians_and_holders_see_a_protected_client_unmasked(org: str) -> None:
    ctx, _ = context(PROTECTED, consent(provision("permit", "org-b")))
    assert will_see(Caller(org), SHOWN_TASK, ctx) is SHOWN_TASK


def test_will_see_returns_the_same_object_when_nothing_is_hidden() -> None:
    ctx, _ = context(patient(), consent(provision("permit", "org-b")))
    assert will_see(Caller("org-b"), SHOWN_TASK, ctx) is SHOWN_TASK
