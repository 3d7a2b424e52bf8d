"""Each BALP builder: its codes (asserted one by one), its agents and entities, and that every
event validates as FHIR R4 with the gateway's own Validator."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from gateway.audit import builders as b
from gateway.audit import codes
from gateway.audit.context import AuditContext, Outcome
from gateway.search.indexer import index_rows
from gateway.validation.validator import Validator

Json = dict[str, Any]
DCM = "http://dicom.nema.org/resources/ontology/DCM"
REST_SYSTEM = "http://hl7.org/fhir/restful-interaction"

BUILDERS: dict[str, Callable[[AuditContext], Json]] = {
    "read": lambda c: b.read(c, "CarePlan/cp1", ["p1"]),
    "vread": lambda c: b.vread(c, "CarePlan/cp1", "3", ["p1"]),
    "query_page": lambda c: b.query_page(c, "CarePlan", [("subject", "Patient/p1")], ["p1"]),
    "history_page": lambda c: b.query_page(
        c, "CarePlan/cp1/_history", [], ["p1"], "history-instance"
    ),
    "create": lambda c: b.create(c, "Task/t1/_history/1", ["p1"]),
    "update": lambda c: b.update(c, "Task/t1", ["p1"]),
    "patch": lambda c: b.patch(c, "Task/t1", ["p1"]),
    "delete": lambda c: b.delete(c, "Task/t1", ["p1"]),
    "export": lambda c: b.export(c, "p1", ["Composition/final-1"]),
    "consent_permit": lambda c: b.consent_decision(c, "p1", b.Decision.PERMIT, ["cons-1"]),
    "consent_deny": lambda c: b.consent_decision(c, "p1", b.Decision.DENY, (), "CarePlan/cp1"),
    "token": lambda c: b.token_request(c, "system/Task.rs", "jti-1"),
}


def code(coding: Json) -> tuple[str, str]:
    return coding["system"], coding["code"]


def agent(event: Json, system: str, value: str) -> Json:
    """The one agent whose type is system|value."""
    found = [a for a in event["agent"] if code(a["type"]["coding"][0]) == (system, value)]
    assert len(found) == 1, [a["type"] for a in event["agent"]]
    return found[0]


def entities(event: Json, system: str, value: str) -> list[Json]:
    return [e for e in event.get("entity", []) if code(e["type"]) == (system, value)]


def patients(event: Json) -> list[str]:
    return [e["what"]["reference"] for e in entities(event, codes.ENTITY_TYPE, "1")]


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("which", ["ctx", "bare"])
def test_every_builder_validates_as_r4(
    name: str, which: str, request: pytest.FixtureRequest
) -> None:
    event = BUILDERS[name](request.getfixturevalue(which))
    Validator().validate_resource(event, None)  # raises FhirError naming any problem


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_event_names_the_patient_for_the_patient_search(name: str, ctx: AuditContext) -> None:
    event = BUILDERS[name](ctx)
    if name == "token":  # a login concerns no client
        assert patients(event) == []
        return
    assert patients(event) == ["Patient/p1"]
    p1 = [r for r in index_rows(event).reference if r[0] == "patient"]
    assert p1 == [("patient", "Patient", "p1", "")]  # AuditEvent?patient=p1 finds it


def test_read_is_balp_read(ctx: AuditContext) -> None:
    e = b.read(ctx, "CarePlan/cp1", ["p1"])
    assert code(e["type"]) == (codes.AUDIT_EVENT_TYPE, "rest")
    assert [code(s) for s in e["subtype"]] == [(REST_SYSTEM, "read")]
    assert (e["action"], e["outcome"], e["recorded"]) == ("R", "0", "2025-03-04T12:30:00.123456Z")
    # BALP Read: the data flows from the server (Source) to the client (Destination).
    client = agent(e, DCM, "110152")
    assert client["who"]["identifier"]["value"] == "kela-app"
    assert client["network"] == {"address": "192.0.2.7", "type": "2"}
    server = agent(e, DCM, "110153")
    assert server["who"] == e["source"]["observer"]
    assert server["network"] == {"address": "https://gw.example/fhir", "type": "5"}
    assert code(e["source"]["type"][0]) == (codes.SOURCE_TYPE, "4")
    data = entities(e, codes.ENTITY_TYPE, "2")
    assert [(d["what"]["reference"], code(d["role"])) for d in data] == [
        ("CarePlan/cp1", (codes.OBJECT_ROLE, "4"))
    ]
    assert code(entities(e, codes.ENTITY_TYPE, "1")[0]["role"]) == (codes.OBJECT_ROLE, "1")


def test_requestor_is_the_practitioner_role_with_the_purpose(ctx: AuditContext) -> None:
    e = b.read(ctx, "CarePlan/cp1", ["p1"])
    org = agent(e, codes.ROLE_CLASS, "PROV")
    assert (org["who"]["reference"], org["requestor"]) == ("Organization/org-kela", False)
    user = agent(e, codes.PARTICIPATION_TYPE, "IRCP")
    assert (user["who"]["reference"], user["requestor"]) == ("PractitionerRole/pr-kela-1", True)
    assert code(user["purposeOfUse"][0]["coding"][0]) == (codes.PURPOSE_OF_USE, "CAREMGT")
    assert code(e["purposeOfEvent"][0]["coding"][0]) == (codes.PURPOSE_OF_USE, "CAREMGT")
    assert [r["requestor"] for r in e["agent"]].count(True) == 1


def test_without_a_role_the_organisation_is_the_requestor(bare: AuditContext) -> None:
    e = b.read(bare, "CarePlan/cp1")
    assert agent(e, codes.ROLE_CLASS, "PROV")["requestor"] is True
    assert "network" not in agent(e, DCM, "110152")  # address unknown: not invented
    assert "purposeOfEvent" not in e
    assert entities(e, codes.BALP_ENTITY, "XrequestId") == []


def test_request_id_is_the_balp_transaction_entity(ctx: AuditContext) -> None:
    (tx,) = entities(b.read(ctx, "CarePlan/cp1"), codes.BALP_ENTITY, "XrequestId")
    assert tx["what"] == {"identifier": {"value": "req-42"}}


def test_vread_names_the_version(ctx: AuditContext) -> None:
    e = b.vread(ctx, "CarePlan/cp1", "3")
    assert [code(s) for s in e["subtype"]] == [(REST_SYSTEM, "vread")]
    assert entities(e, codes.ENTITY_TYPE, "2")[0]["what"]["reference"] == "CarePlan/cp1/_history/3"


def test_query_page_carries_the_query_and_the_page_patients(ctx: AuditContext) -> None:
    params = [("subject", "Patient/p1"), ("_count", "2")]
    e = b.query_page(ctx, "CarePlan", params, ["p1", "p2", "p1"])
    assert [code(s) for s in e["subtype"]] == [(REST_SYSTEM, "search-type")]
    assert e["action"] == "E"
    # BALP Query: the request flows client (Source) -> server (Destination).
    assert agent(e, DCM, "110153")["who"]["identifier"]["value"] == "kela-app"
    assert agent(e, DCM, "110152")["who"] == e["source"]["observer"]
    (query,) = entities(e, codes.ENTITY_TYPE, "2")
    assert code(query["role"]) == (codes.OBJECT_ROLE, "24")
    assert "what" not in query
    assert base64.b64decode(query["query"]) == b"CarePlan?subject=Patient/p1&_count=2"
    assert patients(e) == ["Patient/p1", "Patient/p2"]  # each patient once


def test_history_page_and_unknown_interactions(ctx: AuditContext) -> None:
    e = b.query_page(ctx, "Task/t1/_history", [], ["p1"], "history-instance")
    assert [code(s) for s in e["subtype"]] == [(REST_SYSTEM, "history-instance")]
    assert base64.b64decode(entities(e, codes.ENTITY_TYPE, "2")[0]["query"]) == b"Task/t1/_history"
    with pytest.raises(ValueError):
        b.query_page(ctx, "Task", [], [], "read")


@pytest.mark.parametrize(
    ("build", "interaction", "action"),
    [
        (b.create, "create", "C"),
        (b.update, "update", "U"),
        (b.patch, "patch", "U"),
        (b.delete, "delete", "D"),
    ],
)
def test_writes(
    build: Callable[..., Json], interaction: str, action: str, ctx: AuditContext
) -> None:
    e = build(ctx, "Task/t1", ["p1"])
    assert code(e["type"]) == (codes.AUDIT_EVENT_TYPE, "rest")
    assert [code(s) for s in e["subtype"]] == [(REST_SYSTEM, interaction)]
    assert e["action"] == action
    assert agent(e, DCM, "110153")["who"]["identifier"]["value"] == "kela-app"
    assert agent(e, DCM, "110152")["who"] == e["source"]["observer"]
    author = agent(e, codes.PARTICIPATION_TYPE, "AUT")
    assert (author["who"]["reference"], author["requestor"]) == ("PractitionerRole/pr-kela-1", True)
    assert entities(e, codes.ENTITY_TYPE, "2")[0]["what"]["reference"] == "Task/t1"


def test_export_is_a_disclosure_from_the_gateway(ctx: AuditContext) -> None:
    e = b.export(ctx, "p1", ["Composition/final-1", "DocumentReference/cda-1"])
    assert code(e["type"]) == (DCM, "110106")
    assert [code(s) for s in e["subtype"]] == [(codes.LIFECYCLE, "disclose")]
    assert e["action"] == "R"
    # BALP PrivacyDisclosure.Source: the gateway is the source agent and the observer.
    assert agent(e, DCM, "110153")["who"] == e["source"]["observer"]
    assert agent(e, DCM, "110152")["who"]["identifier"]["value"] == "kela-app"
    reports = entities(e, codes.ENTITY_TYPE, "2")
    assert {code(r["role"]) for r in reports} == {(codes.OBJECT_ROLE, "3")}
    assert [r["what"]["reference"] for r in reports] == [
        "Composition/final-1",
        "DocumentReference/cda-1",
    ]


def test_consent_deny(ctx: AuditContext) -> None:
    e = b.consent_decision(
        ctx, "p1", b.Decision.DENY, ["cons-1"], "CarePlan/cp1", "no permit for this purpose", "j-7"
    )
    assert code(e["type"]) == (DCM, "110113")
    assert [code(s) for s in e["subtype"]] == [(codes.BALP_AUTHZ, "AuthZ-Consent")]
    assert (e["action"], e["outcome"], e["outcomeDesc"]) == ("E", "8", "no permit for this purpose")
    assert agent(e, DCM, "110150")["network"]["address"] == "192.0.2.7"
    assert agent(e, codes.SECURITY_ROLE, "authserver")["who"] == e["source"]["observer"]
    assert agent(e, codes.ROLE_CLASS, "PROV")["who"]["reference"] == "Organization/org-kela"
    assert code(e["source"]["type"][0]) == (codes.SOURCE_TYPE, "6")
    (consent,) = entities(e, codes.RESOURCE_TYPES, "Consent")
    assert consent["what"]["reference"] == "Consent/cons-1"
    (token,) = entities(e, codes.BALP_AGENT, "UserOauthAgent")
    assert token["what"]["identifier"]["value"] == "urn:ietf:params:oauth:jti:j-7"
    assert entities(e, codes.ENTITY_TYPE, "2")[0]["what"]["reference"] == "CarePlan/cp1"


@pytest.mark.parametrize(
    ("decision", "outcome"),
    [(b.Decision.PERMIT, "0"), (b.Decision.PARTIAL, "4"), (b.Decision.DENY, "8")],
)
def test_decision_sets_the_outcome(decision: b.Decision, outcome: str, ctx: AuditContext) -> None:
    assert b.consent_decision(ctx, "p1", decision, ["c"])["outcome"] == outcome


def test_a_decision_without_consent_is_a_role_decision(ctx: AuditContext) -> None:
    e = b.consent_decision(ctx, "p1", b.Decision.DENY)
    assert [code(s) for s in e["subtype"]] == [(codes.BALP_AUTHZ, "AuthZ-Role")]
    assert entities(e, codes.RESOURCE_TYPES, "Consent") == []


def test_token_issued(ctx: AuditContext) -> None:
    e = b.token_request(ctx, "system/Task.rs system/CarePlan.rs", "jti-1", "system/Task.rs")
    assert code(e["type"]) == (DCM, "110114")
    assert [code(s) for s in e["subtype"]] == [
        (DCM, "110122"),
        ("urn:ihe:event-type-code", "ITI-71"),
    ]
    assert (e["action"], e["outcome"]) == ("E", "0")
    assert agent(e, codes.BALP_AGENT, "AuthzOauthService")["who"] == e["source"]["observer"]
    assert agent(e, DCM, "110150")["who"]["identifier"]["value"] == "kela-app"
    request, issued = entities(e, codes.ENTITY_TYPE, "2")
    assert code(request["role"]) == (codes.OBJECT_ROLE, "24")
    sent = base64.b64decode(request["query"]).decode()
    assert (
        sent == "auth/token?grant_type=client_credentials&scope=system/Task.rs+system/CarePlan.rs"
    )
    assert code(issued["role"]) == (codes.OBJECT_ROLE, "13")
    assert issued["what"]["identifier"]["value"] == "urn:ietf:params:oauth:jti:jti-1"
    assert issued["detail"] == [{"type": "scope", "valueString": "system/Task.rs"}]


def test_token_refused_for_an_unknown_issuer() -> None:
    ctx = AuditContext(
        client_id="who-knows",
        server="https://gw.example/fhir",
        address="198.51.100.9",
        outcome=Outcome.SERIOUS_FAILURE,
    )
    e = b.token_request(ctx, "system/Task.rs", error="invalid_client")
    Validator().validate_resource(e, None)
    assert (e["outcome"], e["outcomeDesc"]) == ("8", "invalid_client")
    assert agent(e, DCM, "110150")["requestor"] is True  # no organisation known: the client asked
    assert len(entities(e, codes.ENTITY_TYPE, "2")) == 1  # no token issued
