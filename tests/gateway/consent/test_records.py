"""The custody and client-link tables read against resources shaped like our samples."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.consent.records import (
    client_links,
    holder_orgs,
    holder_refs,
    is_protected,
    reference_key,
)
from gateway.consent.vocabulary import CUSTODIAN_EXTENSION, V3_PARTICIPATION
from tests.gateway.consent.builders import ref


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Patient/p1", ("Patient", "p1")),
        ("CarePlan/x/_history/3", ("CarePlan", "x")),
        ("https://other.example/fhir/Patient/p1", None),  # absolute: not ours to resolve
        ("#contained", None),
        ("Patient/", None),
        ("patient/p1", None),
        ("Patient/p1/extra", None),
    ],
)
def test_reference_key(text: str, key: tuple[str, str] | None) -> None:
    assert reference_key(ref(text)) == key


def test_identifier_only_reference_ties_to_nobody() -> None:
    assert reference_key({"identifier": {"value": "x"}}) is None


def cst(who: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": V3_PARTICIPATION, "code": "CST"}]}, "who": ref(who)}


CLIENTS = [
    ({"resourceType": "Patient", "id": "p1"}, {"p1"}, set()),
    ({"resourceType": "CarePlan", "subject": ref("Patient/p1")}, {"p1"}, set()),
    ({"resourceType": "Goal", "subject": ref("Patient/p1")}, {"p1"}, set()),
    ({"resourceType": "CareTeam", "subject": ref("Patient/p1")}, {"p1"}, set()),
    ({"resourceType": "ServiceRequest", "subject": ref("Patient/p1")}, {"p1"}, set()),
    ({"resourceType": "Task", "for": ref("Patient/p1"), "focus": ref("Patient/p9")}, {"p1"}, set()),
    ({"resourceType": "Consent", "patient": ref("Patient/p1")}, {"p1"}, set()),
    ({"resourceType": "DocumentReference", "subject": ref("Patient/p1")}, {"p1"}, set()),
    ({"resourceType": "Composition", "subject": ref("Patient/p1")}, {"p1"}, set()),
    (
        {"resourceType": "Communication", "recipient": [ref("Patient/p1"), ref("Patient/p2")]},
        {"p1", "p2"},
        set(),
    ),
    (
        {"resourceType": "QuestionnaireResponse", "source": ref("Patient/p1")},
        {"p1"},
        set(),
    ),
    (
        {"resourceType": "Provenance", "target": [ref("CarePlan/x"), ref("Patient/p2")]},
        {"p2"},
        {("CarePlan", "x")},
    ),
    ({"resourceType": "Provenance", "target": [ref("Organization/o")]}, set(), set()),
    ({"resourceType": "CarePlan", "subject": ref("Group/g")}, set(), set()),
    ({"resourceType": "Organization", "id": "o"}, set(), set()),
]


@pytest.mark.parametrize(("resource", "clients", "via"), CLIENTS)
def test_client_links(resource: dict[str, Any], clients: set[str], via: set[Any]) -> None:
    assert client_links(resource) == (clients, via)


HOLDERS = [
    ({"resourceType": "Patient", "managingOrganization": ref("Organization/o1")}, {"o1"}),
    ({"resourceType": "CarePlan", "author": ref("Organization/o1")}, {"o1"}),
    ({"resourceType": "CarePlan", "contributor": [ref("Organization/o2")]}, set()),
    ({"resourceType": "CareTeam", "managingOrganization": [ref("Organization/o1")]}, {"o1"}),
    (
        {
            "resourceType": "Task",
            "requester": ref("PractitionerRole/r1"),
            "owner": ref("Organization/o2"),
        },
        {"o1", "o2"},
    ),
    (
        {
            "resourceType": "ServiceRequest",
            "requester": ref("PractitionerRole/r1"),
            "performer": [ref("Organization/o2")],
        },
        {"o1", "o2"},
    ),
    ({"resourceType": "Consent", "organization": [ref("Organization/o1")]}, {"o1"}),
    ({"resourceType": "Goal", "expressedBy": ref("Patient/p1")}, set()),
    (
        {
            "resourceType": "Provenance",
            "agent": [cst("Organization/o1"), {"who": ref("Organization/o2")}],
        },
        {"o1"},
    ),
    ({"resourceType": "DocumentReference", "custodian": ref("Organization/o1")}, {"o1"}),
    ({"resourceType": "Task", "owner": ref("PractitionerRole/unknown")}, set()),
    (
        {
            "resourceType": "Goal",
            "extension": [{"url": CUSTODIAN_EXTENSION, "valueReference": ref("Organization/o3")}],
        },
        {"o3"},
    ),
    (
        {
            "resourceType": "Goal",
            "extension": [{"url": "http://other", "valueReference": ref("Organization/o3")}],
        },
        set(),
    ),
]


@pytest.mark.parametrize(("resource", "orgs"), HOLDERS)
def test_holders(resource: dict[str, Any], orgs: set[str]) -> None:
    assert holder_orgs(holder_refs(resource), {"r1": "o1"}) == orgs


def test_protected_labels_read_meta_security_only() -> None:
    label = {
        "system": "https://fhir-plan-gateway.example/CodeSystem/security-label",
        "code": "turvakielto",
    }
    assert is_protected({"meta": {"security": [label]}})
    assert not is_protected({"meta": {"tag": [label]}})
    assert not is_protected({})
