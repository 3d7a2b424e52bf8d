"""The per-request gate (gateway/consent/enforcement.py) on its own: what it records when, and
the consent loader over real storage. The paths that use it are tested through REST elsewhere
(tests/gateway/security/test_bola.py, consent/test_rest_reference.py, audit/test_completeness)."""

from __future__ import annotations

import orjson

from gateway.audit import codes
from gateway.consent.enforcement import Gate, RepoLoader, request_id
from gateway.fhir_api.context import Services
from gateway.security.caller import Caller
from gateway.security.scopes import parse_scopes
from tests.gateway.consent.builders import consent

CALLER = Caller("org-a", "client-a", parse_scopes("system/*.cruds"))
PATIENT = {"resourceType": "Patient", "id": "p1"}


def test_the_trusted_gate_permits_all_and_records_nothing(services: Services) -> None:
    gate = Gate.trusted()
    with services.repo.writer() as session:
        sv = session.write("Patient", "p1", dict(PATIENT), "PUT")
        shown = gate.disclose(session, [sv])
    assert shown[0] is not None and shown[0].body is sv.body
    gate.note_read(shown[0])
    gate.note_export("p1", ["Patient/p1"])
    assert gate.events == [] and gate.denials == []


def test_flush_denials_keeps_denials_and_drops_what_did_not_happen(services: Services) -> None:
    gate = Gate.for_caller(CALLER, "http://x/fhir", "req-1")
    with services.repo.writer() as session:
        sv = session.write("Patient", "p1", dict(PATIENT), "PUT")  # held by nobody: hidden
        assert gate.disclose(session, [sv]) == [None]
    gate.note_write("create", "Basic/b1", {"resourceType": "Basic", "id": "b1"})
    assert len(gate.denials) == 1 and len(gate.events) == 1
    gate.flush_denials(services.repo)
    assert gate.events == [] and gate.denials == []
    with services.repo.reader() as session:
        rows = session.query("SELECT body FROM resources WHERE res_type = 'AuditEvent'")
    events = [orjson.loads(bytes(r[0])) for r in rows]
    assert [e["type"]["code"] for e in events] == [codes.SECURITY_ALERT[1]]
    assert events[0]["outcome"] == codes.OUTCOME_SERIOUS


def test_an_export_is_recorded_as_a_disclosure(services: Services) -> None:
    gate = Gate.for_caller(CALLER, "http://x/fhir", "req-2")
    gate.note_export("p1", ["CarePlan/c1"])
    (event,) = gate.events
    assert event["type"]["code"] == codes.EXPORT[1]
    assert {"reference": "Patient/p1"} in [e["what"] for e in event["entity"]]


def test_the_loader_finds_each_consent_of_a_client_once(services: Services) -> None:
    with services.repo.writer() as session:
        session.write("Consent", "c1", consent("c1", "org-a"), "PUT")
        session.write("Consent", "c2", consent("c2", "org-b"), "PUT")
        session.write(
            "Consent",
            "c3",
            {**consent("c3", "org-a"), "patient": {"reference": "Patient/p2"}},
            "PUT",
        )
    with services.repo.reader() as session:
        found = RepoLoader(session).consents(["p1", "p1", "nobody"])
    assert sorted(c["id"] for c in found) == ["c1", "c2"]


def test_request_ids_are_echoed_only_when_plain() -> None:
    assert request_id({"x-request-id": "abc-1.2_3"}) == "abc-1.2_3"
    for odd in ("", "a b", "x" * 65, "é"):
        made = request_id({"x-request-id": odd})
        assert made != odd and len(made) == 32
