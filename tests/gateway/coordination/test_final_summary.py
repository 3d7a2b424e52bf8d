"""The final summary (loppuyhteenveto) over HTTP: who may write it, what it stores in one
transaction, the document it answers (against golden files), and `$document` through the gate.

Goldens: tests/gateway/coordination/golden/final_summary/<sample>.json, compared as structures
with the volatile fields removed by path (VOLATILE); rewritten only with UPDATE_GOLDENS=1.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.consent.vocabulary import CANONICAL, REDACTED
from gateway.coordination.participation_summary import (
    FEEDBACK_STAGE,
    PEER_SUPPORT_ANSWER,
    STAGE_FEEDBACK,
)
from gateway.coordination.summary_text import SECTION_SYSTEM, SOLUTION_SYSTEM
from gateway.fhir_api.context import Services
from gateway.samples import load_samples

GOLDEN = Path(__file__).parent / "golden" / "final_summary"
PURPOSE = {"X-Purpose-Of-Use": "CAREMGT"}
# sample -> (plan, holding organisation's client_id, acting PractitionerRole or None, solution)
SAMPLES = {
    "aino": ("aino-plan", "tyokykytiimi", "role-tyokykykoordinaattori", "palkkatuettu-tyo"),
    "mikko": ("mikko-plan", "sosiaalipalvelut", None, "kuntoutus"),
    "laura": ("laura-plan", "typ", "role-typ-palveluohjaaja", "opiskelu"),
}
# Removed by path before comparing ("[*]": every item): server-chosen ids, clocks, meta, and
# the DocumentReference's copy of the document (compared to the answer separately).
VOLATILE = {
    "document": [
        "identifier",
        "timestamp",
        "entry[0].fullUrl",
        "entry[0].resource.id",
        "entry[0].resource.identifier",
        "entry[*].resource.meta.versionId",
        "entry[*].resource.meta.lastUpdated",
    ],
    "document-reference": [
        "id",
        "meta",
        "masterIdentifier",
        "date",
        "content[*].attachment.data",
        "content[*].attachment.size",
        "content[*].attachment.hash",
        "content[*].attachment.creation",
        "context.related[1]",
    ],
}


def remove(value: Any, path: str) -> None:
    """Remove `path` ("a.b[0].c", "entry[*].x") from `value` in place; a missing step is fine."""
    head, _, rest = path.partition(".")
    name, _, index = head.partition("[")
    if not isinstance(value, dict) or name not in value:
        return
    if not index:
        if rest:
            remove(value[name], rest)
        else:
            del value[name]
        return
    items = value[name] if isinstance(value[name], list) else []
    picked = range(len(items)) if index == "*]" else [int(index[:-1])]
    for i in sorted((i for i in picked if i < len(items)), reverse=True):
        if rest:
            remove(items[i], rest)
        else:
            del items[i]


def stripped(value: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    out = json.loads(json.dumps(value))
    for path in paths:
        remove(out, path)
    return out


def test_remove_by_path_only_touches_the_named_fields() -> None:
    value = {"a": [{"b": 1, "c": 2}, {"b": 3}], "d": {"e": 4, "f": 5}}
    for path in ("a[*].b", "d.e", "x.y", "a[5].b"):
        remove(value, path)
    assert value == {"a": [{"c": 2}, {}], "d": {"f": 5}}


@pytest.fixture
def loaded(services: Services) -> Services:
    load_samples(services)
    return services


def solution(code: str) -> dict[str, Any]:
    return {"name": "solution", "valueCoding": {"system": SOLUTION_SYSTEM, "code": code}}


def summary_body(code: str | None, note: str | None = None, date: str | None = None) -> dict:
    params: list[dict[str, Any]] = [solution(code)] if code else []
    if note:
        params.append({"name": "note", "valueString": note})
    if date:
        params.append({"name": "date", "valueDateTime": date})
    return {"resourceType": "Parameters", "parameter": params}


def holder(as_org: Any, sample: str) -> dict[str, str]:
    _, org, role, _ = SAMPLES[sample]
    return as_org(org, acting_role=role)


def feedback(plan: str, client: str, qid: str, stage: str, text: str) -> dict[str, Any]:
    """A stage-feedback QuestionnaireResponse (profile client-feedback) at a fixed id."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": qid,
        "questionnaire": STAGE_FEEDBACK,
        "status": "completed",
        "subject": {"reference": f"Patient/{client}"},
        "basedOn": [{"reference": f"CarePlan/{plan}"}],
        "source": {"reference": f"Patient/{client}"},
        "authored": "2027-03-01T10:00:00+02:00",
        "item": [
            {
                "linkId": "stage",
                "answer": [{"valueCoding": {"system": FEEDBACK_STAGE, "code": stage}}],
            },
            {"linkId": "feedback", "answer": [{"valueString": text}]},
        ],
    }


def plan_version(client: TestClient, headers: dict[str, str], plan: str) -> dict[str, Any]:
    resp = client.get(f"/fhir/CarePlan/{plan}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def count(client: TestClient, headers: dict[str, str], query: str) -> int:
    resp = client.get(f"/fhir/{query}", headers=headers)
    assert resp.status_code == 200, resp.text
    return len(resp.json().get("entry") or [])


# -- the golden documents ----------------------------------------------------------------------
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_final_summary_matches_its_golden(
    client: TestClient, loaded: Services, as_org: Any, sample: str
) -> None:
    plan, _, _, code = SAMPLES[sample]
    headers = holder(as_org, sample)
    if sample == "aino":  # feedback and the peer-support answer reach the feedback section
        qr = feedback(
            plan, sample, "aino-palaute-1", "verkostoneuvottelu", "Sain sanoa sanottavani."
        )
        resp = client.put("/fhir/QuestionnaireResponse/aino-palaute-1", json=qr, headers=headers)
        assert resp.status_code in (200, 201), resp.text
        offer = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "answer",
                    "valueCoding": {"system": PEER_SUPPORT_ANSWER, "code": "hyvaksytty"},
                },
                {"name": "date", "valueDateTime": "2026-09-14T11:00:00+03:00"},
                {
                    "name": "offered-by",
                    "valueReference": {"reference": "PractitionerRole/role-jarjesto-vertaistuki"},
                },
            ],
        }
        resp = client.post(f"/fhir/CarePlan/{plan}/$peer-support", json=offer, headers=headers)
        assert resp.status_code == 200, resp.text
    body = summary_body(code, "Ratkaisu sovittiin yhdessä asiakkaan kanssa.", "2027-06-30")
    resp = client.post(f"/fhir/CarePlan/{plan}/$final-summary", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    found = client.get(f"/fhir/DocumentReference?related=CarePlan/{plan}", headers=headers)
    (doc_ref,) = [e["resource"] for e in found.json()["entry"]]
    data = base64.b64decode(doc_ref["content"][0]["attachment"]["data"])
    assert json.loads(data) == doc  # the register holds exactly the document answered
    actual = {
        "document": stripped(doc, VOLATILE["document"]),
        "document-reference": stripped(doc_ref, VOLATILE["document-reference"]),
    }
    path = GOLDEN / f"{sample}.json"
    if os.environ.get("UPDATE_GOLDENS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", "utf-8")
    assert path.exists(), f"no golden {path.name}: run with UPDATE_GOLDENS=1 and review it"
    assert actual == json.loads(path.read_text("utf-8"))


def test_the_document_is_a_fhir_document_built_from_the_plan(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    headers = holder(as_org, "aino")
    body = summary_body("palkkatuettu-tyo", "Palkkatuettu työ alkaa elokuussa.")
    doc = client.post("/fhir/CarePlan/aino-plan/$final-summary", json=body, headers=headers).json()
    assert doc["type"] == "document" and doc["identifier"]["value"].startswith("urn:uuid:")
    comp = doc["entry"][0]["resource"]
    assert comp["resourceType"] == "Composition" and comp["status"] == "final"
    assert comp["type"]["coding"][0]["code"] == "34133-9"
    assert comp["author"] == [{"reference": "PractitionerRole/role-tyokykykoordinaattori"}]
    assert comp["custodian"] == {"reference": "Organization/org-tyokykytiimi"}
    codes = [s["code"]["coding"][0]["code"] for s in comp["section"]]
    assert codes == ["tavoitteet", "palvelut", "vastuut", "ratkaisu", "asiakkaan-palaute"]
    assert all(s["code"]["coding"][0]["system"] == SECTION_SYSTEM for s in comp["section"])
    goals = comp["section"][0]
    assert "Haluan löytää työn" in goals["text"]["div"]
    assert "omin sanoin" in goals["text"]["div"]
    assert "Palkkatuettu työ alkaa elokuussa." in comp["section"][3]["text"]["div"]
    included = [e["resource"]["resourceType"] + "/" + e["resource"]["id"] for e in doc["entry"]]
    for ref in ("Patient/aino", "CarePlan/aino-plan", "Goal/aino-goal-1", "Task/aino-task-kela"):
        assert ref in included
    assert len(included) == len(set(included))
    plan = next(e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "CarePlan")
    assert plan["status"] == "completed"  # the plan as the summary closed it


def test_the_narrative_is_escaped(client: TestClient, loaded: Services, as_org: Any) -> None:
    headers = holder(as_org, "aino")
    body = summary_body("opiskelu", "<script>alert(1)</script> & co")
    doc = client.post("/fhir/CarePlan/aino-plan/$final-summary", json=body, headers=headers).json()
    div = doc["entry"][0]["resource"]["section"][3]["text"]["div"]
    assert "<script>" not in div and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in div


def test_one_transaction_stores_summary_register_entry_provenance_and_closes_plan(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    headers = holder(as_org, "aino")
    body = summary_body("tyollistyminen", date="2027-06-30")
    doc = client.post("/fhir/CarePlan/aino-plan/$final-summary", json=body, headers=headers).json()
    comp_id = doc["entry"][0]["resource"]["id"]
    stored = client.get(f"/fhir/Composition/{comp_id}", headers=headers)
    assert stored.status_code == 200 and stored.json()["extension"][0]["valueCoding"]["code"] == (
        "tyollistyminen"
    )
    plan = plan_version(client, headers, "aino-plan")
    assert plan["status"] == "completed" and plan["meta"]["versionId"] == "2"
    assert {
        "url": "https://fhir-plan-gateway.example/StructureDefinition/lasting-solution",
        "valueCoding": {
            "system": SOLUTION_SYSTEM,
            "code": "tyollistyminen",
            "display": "Työllistyminen",
        },
    } in plan["extension"]
    assert plan["period"]["end"] == "2027-09-14"  # an end already agreed stays
    prov = client.get(f"/fhir/Provenance?target=Composition/{comp_id}", headers=headers).json()
    (provenance,) = [e["resource"] for e in prov["entry"]]
    targets = {t["reference"] for t in provenance["target"]}
    assert "CarePlan/aino-plan/_history/2" in targets
    assert provenance["entity"][0]["what"]["reference"] == "CarePlan/aino-plan/_history/1"


def test_a_new_summary_replaces_the_earlier_one(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    headers = holder(as_org, "mikko")
    url = "/fhir/CarePlan/mikko-plan/$final-summary"
    assert client.post(url, json=summary_body("kuntoutus"), headers=headers).status_code == 200
    assert client.post(url, json=summary_body("opiskelu"), headers=headers).status_code == 200
    found = client.get("/fhir/DocumentReference?related=CarePlan/mikko-plan", headers=headers)
    refs = {e["resource"]["status"]: e["resource"] for e in found.json()["entry"]}
    assert set(refs) == {"current", "superseded"}
    replaced = refs["current"]["relatesTo"][0]
    assert replaced["code"] == "replaces"
    assert replaced["target"]["reference"] == f"DocumentReference/{refs['superseded']['id']}"


# -- who may, and bad input -----------------------------------------------------------------------
def test_a_network_member_that_does_not_hold_the_plan_is_refused(
    client: TestClient, loaded: Services
) -> None:
    # org-sote-keskus contributes to Aino's plan and is permitted by her consent, but does not
    # hold the plan or her process.
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$final-summary", json=summary_body("opiskelu"), headers=PURPOSE
    )
    assert resp.status_code == 403
    assert "plan-holder" in resp.json()["issue"][0]["diagnostics"]
    assert_unchanged(client, "aino-plan", PURPOSE)


def assert_unchanged(client: TestClient, plan: str, headers: dict[str, str]) -> None:
    stored = plan_version(client, headers, plan)
    assert stored["status"] == "active" and stored["meta"]["versionId"] == "1"
    assert count(client, headers, f"DocumentReference?related=CarePlan/{plan}") == 0
    assert count(client, headers, f"Composition?subject={stored['subject']['reference']}") == 0


def test_an_organisation_that_may_not_see_the_plan_gets_404(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    headers = as_org("sosiaalipalvelut")  # not among Aino's recipients
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$final-summary", json=summary_body("opiskelu"), headers=headers
    )
    assert resp.status_code == 404


def test_a_partner_without_composition_scope_is_refused(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    resp = client.post(
        "/fhir/CarePlan/aino-plan/$final-summary",
        json=summary_body("opiskelu"),
        headers={**as_org("kela"), **PURPOSE},
    )
    assert resp.status_code == 403


@pytest.mark.parametrize(
    "body, path",
    [
        (summary_body(None), "Parameters.parameter[solution]"),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "solution", "valueCoding": {"system": "urn:x", "code": "opiskelu"}}
                ],
            },
            "Parameters.parameter[solution]",
        ),
        (summary_body("lottovoitto"), "Parameters.parameter[solution]"),
        (summary_body("opiskelu", date="kesäkuussa"), "Parameters.parameter[date]"),
        (
            {"resourceType": "Parameters", "parameter": [solution("opiskelu"), {"name": "x"}]},
            "Parameters.parameter[x]",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter_and_changes_nothing(
    client: TestClient, loaded: Services, as_org: Any, body: dict, path: str
) -> None:
    headers = holder(as_org, "aino")
    resp = client.post("/fhir/CarePlan/aino-plan/$final-summary", json=body, headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["issue"][0]["expression"] == [path]
    assert_unchanged(client, "aino-plan", headers)


def test_a_revoked_plan_gets_no_summary(client: TestClient, loaded: Services, as_org: Any) -> None:
    headers = holder(as_org, "laura")
    plan = plan_version(client, headers, "laura-plan")
    plan["status"] = "revoked"
    assert client.put("/fhir/CarePlan/laura-plan", json=plan, headers=headers).status_code == 200
    resp = client.post(
        "/fhir/CarePlan/laura-plan/$final-summary", json=summary_body("opiskelu"), headers=headers
    )
    assert resp.status_code == 409 and "plan-summarisable" in resp.text


# -- $document through the gate -----------------------------------------------------------------
def summarise(client: TestClient, as_org: Any, sample: str = "aino") -> dict[str, Any]:
    plan, _, _, code = SAMPLES[sample]
    resp = client.post(
        f"/fhir/CarePlan/{plan}/$final-summary",
        json=summary_body(code),
        headers=holder(as_org, sample),
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_document_rebuilds_the_stored_summary(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    doc = summarise(client, as_org)
    comp_id = doc["entry"][0]["resource"]["id"]
    resp = client.get(f"/fhir/Composition/{comp_id}/$document", headers=holder(as_org, "aino"))
    assert resp.status_code == 200, resp.text
    again = resp.json()
    assert again["type"] == "document" and again["identifier"] != doc["identifier"]
    keys = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in again["entry"]]
    assert keys == [(e["resource"]["resourceType"], e["resource"]["id"]) for e in doc["entry"]]
    assert again["entry"][0]["resource"]["section"] == doc["entry"][0]["resource"]["section"]


def test_document_leaves_out_what_the_reader_may_not_see(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    doc = summarise(client, as_org)
    comp_id = doc["entry"][0]["resource"]["id"]
    custodian = holder(as_org, "aino")
    consent = client.get("/fhir/Consent/aino-consent", headers=custodian).json()
    consent["provision"]["provision"] = [
        {
            "type": "deny",
            "actor": consent["provision"]["actor"][:1],  # org-sote-keskus
            "data": [{"meaning": "instance", "reference": {"reference": "Task/aino-task-kela"}}],
        }
    ]
    assert client.put("/fhir/Consent/aino-consent", json=consent, headers=custodian).is_success
    resp = client.get(f"/fhir/Composition/{comp_id}/$document", headers=PURPOSE)
    assert resp.status_code == 200, resp.text
    seen = resp.json()
    keys = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in seen["entry"]}
    assert "Task/aino-task-kela" not in keys and "Task/aino-task-tyokokeilu" in keys
    sections = {s["code"]["coding"][0]["code"]: s for s in seen["entry"][0]["resource"]["section"]}
    responsibilities = sections["vastuut"]
    assert {"reference": "Task/aino-task-kela"} not in responsibilities["entry"]
    assert "Kela" not in responsibilities["text"]["div"]  # the narrative was written from it
    assert "ei ole näytettävissä" in responsibilities["text"]["div"].replace("eivät ole", "ei ole")
    assert sections["tavoitteet"] == doc["entry"][0]["resource"]["section"][0]


def test_document_of_a_hidden_composition_is_404(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    doc = summarise(client, as_org, "mikko")
    comp_id = doc["entry"][0]["resource"]["id"]
    # org-sote-keskus is not among Mikko's recipients.
    resp = client.get(f"/fhir/Composition/{comp_id}/$document", headers=PURPOSE)
    assert resp.status_code == 404


def test_document_refuses_persist(client: TestClient, loaded: Services, as_org: Any) -> None:
    doc = summarise(client, as_org)
    comp_id = doc["entry"][0]["resource"]["id"]
    resp = client.get(
        f"/fhir/Composition/{comp_id}/$document?persist=true", headers=holder(as_org, "aino")
    )
    assert resp.status_code == 400
    assert resp.json()["issue"][0]["expression"] == ["Parameters.parameter[persist]"]


def test_the_document_leaving_is_recorded_as_an_export(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    doc = summarise(client, as_org)
    comp_id = doc["entry"][0]["resource"]["id"]
    client.get(f"/fhir/Composition/{comp_id}/$document", headers=PURPOSE)
    events = client.get(
        "/fhir/AuditEvent?subtype=disclose&patient=Patient/aino", headers=holder(as_org, "aino")
    ).json()
    exports = [
        e["resource"]
        for e in events.get("entry") or []
        if e["resource"]["type"]["code"] == "110106"
    ]
    assert len(exports) == 2  # the summary answered, and the rebuilt document
    what = {x["what"].get("reference") for x in exports[0]["entity"] if "what" in x}
    assert f"Composition/{comp_id}" in what


def test_a_protected_clients_identity_is_masked_in_the_rebuilt_document(
    client: TestClient, loaded: Services, as_org: Any
) -> None:
    # TURVAKIELTO: a consented partner (the sote centre, which does not hold the summary) gets
    # the Composition masked like any plan resource it could read: no narrative, no names.
    doc = summarise(client, as_org)
    comp_id = doc["entry"][0]["resource"]["id"]
    custodian = holder(as_org, "aino")
    patient = client.get("/fhir/Patient/aino", headers=custodian).json()
    label = {"system": f"{CANONICAL}/CodeSystem/security-label", "code": "turvakielto"}
    patient.setdefault("meta", {})["security"] = [label]
    put = client.put("/fhir/Patient/aino", json=patient, headers=custodian)
    assert put.is_success, put.text
    resp = client.get(f"/fhir/Composition/{comp_id}/$document", headers=PURPOSE)
    assert resp.status_code == 200, resp.text
    composition = resp.json()["entry"][0]["resource"]
    assert "display" not in composition["subject"] and "text" not in composition
    assert REDACTED in composition["meta"]["security"]  # the receiver knows it was masked
