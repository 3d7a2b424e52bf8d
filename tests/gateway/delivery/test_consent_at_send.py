"""Consent decided again when an event is sent, on both stores (notifications.disclose through
the relay): an event queued while the client's Consent permitted it is withheld, recorded as a
deny, once the Consent is revoked; a TURVAKIELTO client's identity is masked in a full-resource
payload exactly as a REST read would show it (hooks.will_see)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from fhir_profiles import CANONICAL
from gateway.consent import hooks
from gateway.consent.context import ConsentContext
from gateway.consent.enforcement import RepoLoader
from gateway.delivery.events import subscriber
from gateway.delivery.subscription_spec import SubscriptionSpec
from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from tests.gateway.delivery.receiver import Receiver
from tests.gateway.delivery.support import (
    audit_events,
    drain,
    event_numbers,
    patch,
    register,
    rows,
    subscription,
)

Acting = Callable[..., Any]
AINO = "Task?patient=Patient/aino"
TURVAKIELTO = {"system": f"{CANONICAL}/CodeSystem/security-label", "code": "turvakielto"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def network(services: Services, client: TestClient, receiver: Receiver) -> Services:
    load_samples(services)
    # jarjesto reads aino's records under her Consent; kela owns one of her Tasks (a holder)
    for org in ("jarjesto", "kela"):
        register(services, org, f"http://127.0.0.1:{receiver.port}/{org}")
    return services


def subscribe(svc: Services, actor: Any, org: str, port: int, payload: str) -> str:
    body = subscription(f"http://127.0.0.1:{port}/{org}/hook", AINO, payload=payload)
    made = actor.post("/fhir/Subscription", json=body)
    assert made.status_code == 201, made.text
    drain(svc)  # the handshake: active
    return str(made.json()["id"])


def revoke_ainos_consent(org_client: Acting) -> None:
    custodian = org_client("tyokykytiimi")  # Consent.organization: manages aino's consent
    consent = custodian.get("/fhir/Consent/aino-consent").json()
    put = custodian.put("/fhir/Consent/aino-consent", json={**consent, "status": "inactive"})
    assert put.status_code == 200, put.text


def denials(svc: Services, org: str) -> list[dict[str, Any]]:
    """The consent-deny AuditEvents (DCM 110113, outcome serious failure) naming `org`."""
    return [
        e
        for e in audit_events(svc)
        if e["type"]["code"] == "110113"
        and e["outcome"] == "8"
        and any((a.get("who") or {}).get("reference") == f"Organization/{org}" for a in e["agent"])
    ]


def exports(svc: Services, org: str) -> list[dict[str, Any]]:
    """The PrivacyDisclosure (DCM 110106 Export) AuditEvents naming `org`."""
    return [
        e
        for e in audit_events(svc)
        if e["type"]["code"] == "110106"
        and any((a.get("who") or {}).get("reference") == f"Organization/{org}" for a in e["agent"])
    ]


def whats(event: dict[str, Any]) -> set[str]:
    return {(x.get("what") or {}).get("reference", "") for x in event.get("entity", [])}


def test_an_event_whose_consent_is_revoked_before_sending_is_withheld_and_audited(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    jarjesto = org_client("jarjesto")
    sub = subscribe(network, jarjesto, "jarjesto", receiver.port, "id-only")
    # 1: kela's Task (jarjesto sees it under aino's Consent); 2: jarjesto's own (a holder)
    assert patch(org_client("kela"), "Task/aino-task-kela", status="in-progress").is_success
    assert patch(jarjesto, "Task/aino-task-vertaistuki", status="on-hold").is_success
    assert [r.seq for r in rows(network, sub) if r.kind == "event"] == [1, 2]
    revoke_ainos_consent(org_client)
    drain(network)
    assert receiver.kinds() == ["handshake", "event-notification"]
    told = receiver.received[-1]
    assert event_numbers(told.body) == [2]  # 1 is a gap the partner cannot fill: withheld
    assert [e["fullUrl"].rsplit("/", 2)[-2:] for e in told.body["entry"][1:]] == [
        ["Task", "aino-task-vertaistuki"]
    ]
    states = {r.seq: (r.state, r.last_error) for r in rows(network, sub) if r.kind == "event"}
    assert states == {1: ("withheld", "withheld-consent"), 2: ("sent", None)}
    (deny,) = denials(network, "org-jarjesto")
    assert any(w.startswith("Task/aino-task-kela") for w in whats(deny))
    (export,) = exports(network, "org-jarjesto")
    assert any(w.startswith("Task/aino-task-vertaistuki") for w in whats(export))
    assert not any("aino-task-kela" in w for w in whats(export))
    # $events decides again too: the withheld event is not there either
    replay = jarjesto.get(f"/fhir/Subscription/{sub}/$events").json()
    assert event_numbers(replay) == [2]


def test_an_event_never_seen_by_anyone_after_revocation_is_not_retried(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    jarjesto = org_client("jarjesto")
    sub = subscribe(network, jarjesto, "jarjesto", receiver.port, "full-resource")
    assert patch(org_client("kela"), "Task/aino-task-kela", status="in-progress").is_success
    revoke_ainos_consent(org_client)
    drain(network)
    assert receiver.kinds() == ["handshake"]  # nothing left to send: no empty notification
    assert [r.state for r in rows(network, sub) if r.kind == "event"] == ["withheld"]
    assert len(denials(network, "org-jarjesto")) == 1  # recorded once, not per round


def protect_aino(org_client: Acting) -> None:
    holder = org_client("sote-keskus")  # Patient.managingOrganization
    patient = holder.get("/fhir/Patient/aino").json()
    patient.setdefault("meta", {})["security"] = [TURVAKIELTO]
    put = holder.put("/fhir/Patient/aino", json=patient)
    assert put.status_code == 200, put.text


def test_a_protected_clients_identity_is_masked_in_a_full_resource_payload(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    jarjesto, kela = org_client("jarjesto"), org_client("kela")
    partner = subscribe(network, jarjesto, "jarjesto", receiver.port, "full-resource")
    subscribe(network, kela, "kela", receiver.port, "full-resource")
    protect_aino(org_client)
    changed = patch(kela, "Task/aino-task-kela", status="in-progress")
    assert changed.status_code == 200, changed.text
    drain(network)
    pushed = {
        r.path.split("/")[1]: r.body["entry"][1]["resource"]
        for r in receiver.received
        if r.kind == "event-notification"
    }
    masked, whole = pushed["jarjesto"], pushed["kela"]
    assert "display" not in masked["for"] and "text" not in masked
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "REDACTED"} in masked["meta"]["security"]  # fmt: skip
    assert whole["for"]["display"] == "Aino Testinen"  # kela holds the Task: shown whole
    assert whole == changed.json()
    assert masked == will_see(network, partner, changed.json())


def will_see(svc: Services, sub_id: str, resource: dict[str, Any]) -> Any:
    """What the REST gate shows the subscriber of `sub_id` of `resource` (hooks.will_see)."""
    with svc.repo.reader() as session:
        org, text = session.query(
            "SELECT organization, spec FROM subscriptions WHERE id = ?", (sub_id,)
        )[0]
        who = subscriber(str(org), SubscriptionSpec.from_json(str(text)))
        assert who is not None
        context = ConsentContext(RepoLoader(session), datetime.now(UTC))
        assert hooks.can_see(who, resource, context).allowed
        return orjson.loads(orjson.dumps(hooks.will_see(who, resource, context)))


def test_one_organisations_subscriptions_share_one_disclosure_per_client_and_round(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    """Two subscriptions of one organisation tell of the same Task version: both are told, its
    decision is made once, and the round records one PrivacyDisclosure for the client, naming
    the version once (not one per subscription)."""
    jarjesto = org_client("jarjesto")
    first = subscribe(network, jarjesto, "jarjesto", receiver.port, "id-only")
    second = subscribe(network, jarjesto, "jarjesto", receiver.port, "full-resource")
    changed = patch(jarjesto, "Task/aino-task-vertaistuki", status="on-hold")
    assert changed.is_success
    drain(network)
    told = [r for r in receiver.received if r.kind == "event-notification"]
    assert len(told) == 2 and all(event_numbers(r.body) == [1] for r in told)
    for sub in (first, second):
        assert [r.state for r in rows(network, sub) if r.kind == "event"] == ["sent"]
    (export,) = exports(network, "org-jarjesto")
    version = changed.json()["meta"]["versionId"]
    assert [w for w in whats(export) if w.startswith("Task/")] == [
        f"Task/aino-task-vertaistuki/_history/{version}"
    ]
    assert "Patient/aino" in whats(export)


def test_a_revocation_withholds_the_event_from_every_subscription_of_the_organisation(
    network: Services, org_client: Acting, receiver: Receiver
) -> None:
    jarjesto = org_client("jarjesto")
    subs = [subscribe(network, jarjesto, "jarjesto", receiver.port, "id-only") for _ in range(2)]
    assert patch(org_client("kela"), "Task/aino-task-kela", status="in-progress").is_success
    revoke_ainos_consent(org_client)
    drain(network)
    assert receiver.kinds() == ["handshake", "handshake"]
    for sub in subs:
        assert [r.state for r in rows(network, sub) if r.kind == "event"] == ["withheld"]
    assert len(denials(network, "org-jarjesto")) == 2  # one per subscription's event
    assert exports(network, "org-jarjesto") == []
