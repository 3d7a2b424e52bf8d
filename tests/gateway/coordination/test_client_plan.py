"""`CarePlan/{id}/$client-plan` over HTTP (gateway/coordination/client_plan.py): what each
organisation gets, in which format and language, that only what the caller may see is rendered,
and that every rendering is on record as a disclosure (BALP Export AuditEvent).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from gateway.samples import load_samples, sample_files

URL = "/fhir/CarePlan/aino-plan/$client-plan"
CUSTODIAN = "tyokykytiimi"  # holds Aino's process (Consent.organization)
CAREMGT = {"X-Purpose-Of-Use": "CAREMGT"}
EXPORT = "http://dicom.nema.org/resources/ontology/DCM|110106"
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
    """The organisation the disclosure went to."""
    return next((a["who"].get("reference") for a in event["agent"] if a.get("requestor")), None)


def shown(event: dict[str, Any]) -> set[str]:
    return {e["what"].get("reference") for e in event["entity"] if "reference" in e["what"]}


def test_the_custodian_gets_the_page(loaded: Services, client: TestClient, as_org: Headers) -> None:
    r = client.get(URL, headers=as_org(CUSTODIAN))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none'
    page = r.text
    assert page.startswith("<!DOCTYPE html>") and '<html lang="fi">' in page
    assert "Satu Malli" in page and "<svg" in page
    assert "Haluan löytää työn, jota selkäni kestää" in page
    assert "Palaamme suunnitelmaan 15.1.2027." in page


def test_english_and_pdf(loaded: Services, client: TestClient, as_org: Headers) -> None:
    en = client.get(URL + "?lang=en", headers=as_org(CUSTODIAN))
    assert en.status_code == 200 and "Who drives my process" in en.text
    assert en.headers["content-language"] == "en"
    pdf = client.get(URL + "?_format=pdf&lang=en", headers=as_org(CUSTODIAN))
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("?lang=sv", "Parameters.parameter[lang]"),
        ("?_format=docx", "_format"),
        ("?colour=blue", "Parameters.parameter[colour]"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    loaded: Services, client: TestClient, as_org: Headers, query: str, path: str
) -> None:
    r = client.get(URL + query, headers=as_org(CUSTODIAN))
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [path]


def test_a_plan_that_does_not_exist_is_404(loaded: Services, client: TestClient) -> None:
    assert client.get("/fhir/CarePlan/nobody/$client-plan").status_code == 404


def test_an_organisation_without_consent_gets_404_and_nothing_is_exported(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    r = client.get(URL, headers={**as_org("typ"), **CAREMGT})  # TYP is not in Aino's consent
    assert r.status_code == 404
    assert "Aino" not in r.text
    assert exports(client, as_org) == []


def test_a_purpose_bound_consent_needs_the_purpose(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    assert client.get(URL, headers=as_org("kela")).status_code == 404
    assert client.get(URL, headers={**as_org("kela"), **CAREMGT}).status_code == 200


def test_what_the_consent_withholds_is_not_rendered(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    consent = sample("Consent", "aino-consent")
    # Aino allows her network the plan, but not the work trial (a nested deny by instance).
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
    assert "Ammatillisen kuntoutuksen selvitys" in kela.text  # Kela's own part is there
    assert "Työkokeilu" not in kela.text and "Työkokeilupaikan" not in kela.text
    own = client.get(URL, headers=as_org(CUSTODIAN))  # the custodian still sees it all
    assert "Työkokeilupaikan etsiminen" in own.text

    (kela_export,) = [e for e in exports(client, as_org) if requestor(e) == "Organization/org-kela"]
    assert "CarePlan/aino-plan" in shown(kela_export)
    assert "Task/aino-task-tyokokeilu" not in shown(kela_export)


def test_the_rendering_is_recorded_as_a_disclosure(
    loaded: Services, client: TestClient, as_org: Headers
) -> None:
    assert client.get(URL + "?_format=pdf", headers=as_org(CUSTODIAN)).status_code == 200
    (event,) = exports(client, as_org)
    assert event["type"]["code"] == "110106"  # Export
    assert requestor(event) == "Organization/org-tyokykytiimi"  # to whom it went
    assert [s["code"] for s in event["subtype"]] == ["disclose"]
    refs = shown(event)
    assert {"Patient/aino", "CarePlan/aino-plan", "Goal/aino-goal-1", "Task/aino-task-kela"} <= refs
    assert "PractitionerRole/role-tyokykykoordinaattori" in refs
    assert not any(r.startswith("Consent/") for r in refs)


def test_the_operation_is_described(loaded: Services, client: TestClient) -> None:
    r = client.get("/fhir/OperationDefinition/client-plan")
    assert r.status_code == 200, r.text
    definition = r.json()
    assert (definition["instance"], definition["affectsState"]) == (True, False)
    assert definition["resource"] == ["CarePlan"]
