"""`CarePlan/{id}/$export-cda` over HTTP (gateway/documents/export_cda.py), both stores: the plan
as a CDA R2 document (application/xml) of what the caller may see, recorded as a disclosure;
a consent's deny leaves resources out, a protected client's identity never appears, an
organisation that may not see the plan gets a 404 and nothing is exported.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.cda.convert import to_fhir
from adapters.ids import EXAMPLE_KEY, Ids
from gateway.consent.vocabulary import CANONICAL
from gateway.fhir_api.context import Services
from gateway.samples import load_samples, sample_files

URL = "/fhir/CarePlan/aino-plan/$export-cda"
CUSTODIAN = "tyokykytiimi"  # holds Aino's process (Consent.organization)
CAREMGT = {"X-Purpose-Of-Use": "CAREMGT"}
EXPORT = "http://dicom.nema.org/resources/ontology/DCM|110106"
HETU = "150390-902D"
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def loaded(services: Services) -> Services:
    load_samples(services)
    return services


def sample(rtype: str, id: str) -> dict[str, Any]:
    for path in sample_files():
        for entry in json.loads(path.read_text())["entry"]:
            if (entry["resource"]["resourceType"], entry["resource"]["id"]) == (rtype, id):
                return copy.deepcopy(entry["resource"])
    raise KeyError(id)


def exports(client: TestClient, as_org: Headers) -> list[dict[str, Any]]:
    r = client.get(
        f"/fhir/AuditEvent?type={EXPORT}&patient=Patient/aino&_count=100",
        headers=as_org(CUSTODIAN),
    )
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def requestor(event: dict[str, Any]) -> str | None:
    return next((a["who"].get("reference") for a in event["agent"] if a.get("requestor")), None)


def shown(event: dict[str, Any]) -> set[str]:
    return {e["what"].get("reference") for e in event["entity"] if "reference" in e["what"]}


def counted(data: bytes) -> dict[str, int]:
    """Resources per type in the adapter's import of `data` (the document read back)."""
    imported = to_fhir(data, Ids(EXAMPLE_KEY))
    out: dict[str, int] = {}
    for entry in imported.bundle["entry"]:
        rtype = entry["resource"]["resourceType"]
        out[rtype] = out.get(rtype, 0) + 1
    return out


def test_the_holder_gets_the_plan_as_a_cda_document(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    r = client.get(URL + "?kind=hosu", headers=as_org(CUSTODIAN))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    assert r.headers["cache-control"] == "no-store"
    assert b"urn:hl7-org:v3" in r.content and HETU.encode() in r.content
    back = counted(r.content)  # schema-valid, and it reads back as a plan
    assert back["CarePlan"] == 1 and back["Goal"] >= 2


def test_the_social_welfare_client_plan(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    r = client.get(
        "/fhir/CarePlan/mikko-plan/$export-cda?kind=social-plan", headers=as_org("sosiaalipalvelut")
    )
    assert r.status_code == 200, r.text
    assert to_fhir(r.content, Ids(EXAMPLE_KEY)).kind == "social-plan"


def test_bad_input_is_a_4xx(loaded: Services, client: TestClient, as_org: Headers) -> None:
    r = client.get(URL + "?kind=pdf", headers=as_org(CUSTODIAN))
    assert r.status_code == 400 and "kind" in r.text
    r = client.get(URL + "?colour=red", headers=as_org(CUSTODIAN))
    assert r.status_code == 400
    assert (
        client.get("/fhir/CarePlan/nobody/$export-cda", headers=as_org(CUSTODIAN)).status_code
        == 404
    )
    assert client.post(URL, headers=as_org(CUSTODIAN)).status_code == 200  # reads: GET or POST


def test_an_organisation_without_consent_gets_404_and_nothing_is_exported(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    r = client.get(URL, headers={**as_org("typ"), **CAREMGT})  # TYP is not in Aino's consent
    assert r.status_code == 404
    assert "Aino" not in r.text
    assert exports(client, as_org) == []


def test_what_the_consent_withholds_is_absent(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    consent = sample("Consent", "aino-consent")
    consent["provision"]["provision"] = [
        {
            "type": "deny",
            "data": [
                {"meaning": "instance", "reference": {"reference": ref}}
                for ref in ("Task/aino-task-tyokokeilu", "ServiceRequest/aino-sr-tyokokeilu")
            ],
        }
    ]
    put = client.put("/fhir/Consent/aino-consent", json=consent, headers=as_org(CUSTODIAN))
    assert put.status_code == 200, put.text
    kela = client.get(URL, headers={**as_org("kela"), **CAREMGT})
    assert kela.status_code == 200, kela.text
    own = client.get(URL, headers=as_org(CUSTODIAN))
    assert counted(kela.content)["ServiceRequest"] == counted(own.content)["ServiceRequest"] - 1
    assert "Työkokeilu".encode() not in kela.content and "Työkokeilu".encode() in own.content
    (event,) = [e for e in exports(client, as_org) if requestor(e) == "Organization/org-kela"]
    assert "CarePlan/aino-plan" in shown(event)
    assert "Task/aino-task-tyokokeilu" not in shown(event)


def test_a_protected_clients_identity_never_leaves(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    patient = client.get("/fhir/Patient/aino", headers=as_org(CUSTODIAN)).json()
    label = {"system": f"{CANONICAL}/CodeSystem/security-label", "code": "turvakielto"}
    patient.setdefault("meta", {})["security"] = [label]
    put = client.put("/fhir/Patient/aino", json=patient, headers=as_org(CUSTODIAN))
    assert put.is_success, put.text
    r = client.get(URL, headers={**as_org("kela"), **CAREMGT})
    # The partner never sees a TURVAKIELTO client's Patient: no document can name the client.
    assert r.status_code in (200, 422), r.text
    assert HETU not in r.text and "Testinen" not in r.text
    own = client.get(URL, headers=as_org(CUSTODIAN))  # the custodian's own export is whole
    assert own.status_code == 200 and HETU.encode() in own.content


def test_the_export_is_recorded_as_a_disclosure(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    assert client.get(URL, headers=as_org(CUSTODIAN)).status_code == 200
    (event,) = exports(client, as_org)
    assert event["type"]["code"] == "110106"  # Export
    assert requestor(event) == "Organization/org-tyokykytiimi"
    refs = shown(event)
    assert {"Patient/aino", "CarePlan/aino-plan", "Goal/aino-goal-1", "Task/aino-task-kela"} <= refs
    assert not any(r.startswith("Consent/") for r in refs)


def test_an_exported_plan_imports_back(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    """The holder's export, filed back by the holder as custodian: stored as a plan of the same
    client (the Patient found by HETU, not duplicated)."""
    data = client.get(URL, headers=as_org(CUSTODIAN)).content
    r = client.post(
        "/fhir/$import-cda",
        content=data,
        headers={**as_org(CUSTODIAN), "Content-Type": "application/xml"},
    )
    assert r.status_code == 200, r.text
    plan = next(p for p in r.json()["parameter"] if p["name"] == "plan")["resource"]
    assert plan["subject"]["reference"] == "Patient/aino"


def test_the_operations_are_described(loaded: Services, client: TestClient) -> None:
    for name, instance, affects in (("export-cda", True, False), ("import-cda", False, True)):
        r = client.get(f"/fhir/OperationDefinition/{name}")
        assert r.status_code == 200, r.text
        assert (r.json()["instance"], r.json()["affectsState"]) == (instance, affects)
    caps = client.get("/fhir/metadata").json()
    listed = json.dumps(caps)
    assert "export-cda" in listed and "import-cda" in listed
