"""Who sees what before any Consent rule: custodians, the directory, types, clients, TURVAKIELTO."""

from __future__ import annotations

import pytest

from gateway.consent.decisions import client_custodians, decide
from gateway.consent.model import Caller, Client, Reason, Verdict
from gateway.consent.vocabulary import SECURITY_LABELS, V3_CONFIDENTIALITY
from tests.gateway.consent.builders import (
    NOW,
    consent,
    decide_one,
    patient,
    plan,
    provision,
)

PERMIT_B = consent(provision("permit", "org-b"))
PROHIBIT = consent(provision("deny"), id="c-no")
TURVAKIELTO = (SECURITY_LABELS, "turvakielto")


def test_client_custodian_sees_everything_of_the_client_even_under_prohibition() -> None:
    for rtype in ("CarePlan", "Goal", "Task", "Consent"):
        d = decide_one("org-cust", plan(rtype), [PERMIT_B, PROHIBIT])
        assert (d.verdict, d.reason) == (Verdict.PERMIT, Reason.CLIENT_CUSTODIAN)


def test_record_holder_sees_its_own_record_without_any_consent() -> None:
    d = decide_one("org-h", plan(), [PROHIBIT], holders=frozenset({"org-h"}))
    assert (d.verdict, d.reason) == (Verdict.PERMIT, Reason.RECORD_HOLDER)


@pytest.mark.parametrize("status", ["active", "inactive", "rejected", "draft", "proposed"])
def test_consent_organisation_is_the_client_custodian_in_any_live_status(status: str) -> None:
    client = Client("p1", patient(), (consent(None, status=status),))
    assert client_custodians(client) == {"org-cust"}


def test_entered_in_error_and_foreign_consents_name_no_custodian() -> None:
    wrong = (consent(None, status="entered-in-error"), consent(None, client="p2", custodian="x"))
    assert client_custodians(Client("p1", patient(), wrong)) == frozenset()


@pytest.mark.parametrize("rtype", ["Organization", "Practitioner", "PractitionerRole", "Endpoint"])
def test_directory_is_shared_with_every_organisation(rtype: str) -> None:
    d = decide(Caller("org-z"), {"resourceType": rtype, "id": "o"}, [], frozenset(), NOW)
    assert (d.verdict, d.reason) == (Verdict.PERMIT, Reason.DIRECTORY)


@pytest.mark.parametrize("rtype", ["Basic", "Subscription", "Observation"])
def test_type_outside_the_plan_table_is_for_record_holders_only(rtype: str) -> None:
    resource = {"resourceType": rtype, "id": "a"}
    d = decide(Caller("org-b"), resource, [], frozenset(), NOW)
    assert (d.verdict, d.reason) == (Verdict.DENY, Reason.NOT_PLAN_RESOURCE)
    assert decide(Caller("org-h"), resource, [], frozenset({"org-h"}), NOW).allowed


def test_audit_trail_is_for_the_client_custodians_only_whatever_the_consents_say() -> None:
    event = {"resourceType": "AuditEvent", "id": "e", "entity": [{"what": {"reference": "x"}}]}
    d = decide_one("org-b", event, [PERMIT_B])
    assert (d.verdict, d.reason) == (Verdict.DENY, Reason.AUDIT_TRAIL)
    assert decide_one("org-cust", event, [PERMIT_B]).allowed
    nobody = decide(Caller("org-cust"), event, [], frozenset(), NOW)  # names no client
    assert (nobody.verdict, nobody.reason) == (Verdict.DENY, Reason.NO_CLIENT)


def test_plan_resource_without_a_client_is_for_record_holders_only() -> None:
    d = decide(Caller("org-b"), {"resourceType": "CarePlan", "id": "x"}, [], frozenset(), NOW)
    assert (d.verdict, d.reason) == (Verdict.DENY, Reason.NO_CLIENT)


def test_client_whose_patient_is_not_stored_is_shown_to_custodians_only() -> None:
    client = Client("p1", None, (PERMIT_B,))
    d = decide(Caller("org-b"), plan(), [client], frozenset(), NOW)
    assert (d.verdict, d.reason) == (Verdict.DENY, Reason.UNKNOWN_CLIENT)
    assert decide(Caller("org-cust"), plan(), [client], frozenset(), NOW).allowed


def test_every_client_of_a_resource_must_permit() -> None:
    p1 = Client("p1", patient("p1"), (PERMIT_B,))
    p2 = Client("p2", patient("p2"), ())
    d = decide(Caller("org-b"), plan("Provenance"), [p1, p2], frozenset(), NOW)
    assert (d.verdict, d.client, d.clients) == (Verdict.NOT_APPLICABLE, "p2", {"p1", "p2"})
    p2 = Client("p2", patient("p2"), (consent(provision("permit", "org-b"), client="p2"),))
    assert decide(Caller("org-b"), plan("Provenance"), [p1, p2], frozenset(), NOW).allowed


@pytest.mark.parametrize(
    "label", [TURVAKIELTO, (V3_CONFIDENTIALITY, "R"), (V3_CONFIDENTIALITY, "V")]
)
def test_turvakielto_patient_is_never_shown_to_others_even_with_consent(label) -> None:
    protected = patient(labels=[label])
    d = decide_one("org-b", protected, [PERMIT_B], pat=protected)
    assert (d.verdict, d.reason) == (Verdict.DENY, Reason.PROTECTED_CLIENT)
    # ...their plan is still shared under consent (masked by will_see), and custodians see all.
    assert decide_one("org-b", plan(), [PERMIT_B], pat=protected).allowed
    assert decide_one("org-cust", protected, [PERMIT_B], pat=protected).allowed
    assert decide_one("org-m", protected, [], pat=protected, holders=frozenset({"org-m"})).allowed


def test_normal_confidentiality_is_not_turvakielto() -> None:
    normal = patient(labels=[(V3_CONFIDENTIALITY, "N")])
    assert decide_one("org-b", normal, [PERMIT_B], pat=normal).allowed


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_one("org-b", plan(), [PERMIT_B], now=NOW.replace(tzinfo=None))
