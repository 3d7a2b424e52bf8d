"""`$import-cda` over HTTP (gateway/documents/import_cda.py), both stores: the custodian imports
a CDA plan document and gets the stored plan, the original kept in a DocumentReference (SHA-1
hash); a second import changes nothing (every version as it was); anyone else, a hidden client
or a token without write scopes is a 403; broken, unknown and partly known documents are 4xx
OperationOutcomes or warnings, never a 500.

Documents: the demo plans written as CDA by the real adapter (helpers.exported), with the
custodian set to the importing organisation where a test needs it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from gateway.samples import SAMPLES_DIR, load_file, load_samples
from tests.gateway.documents.helpers import (
    CDA_SAMPLES,
    XML,
    custodian_of,
    exported,
    load_network,
    oid_of,
    versions,
    with_custodian,
)

URL = "/fhir/$import-cda"
CUSTODIAN = "tyokykytiimi"  # org-tyokykytiimi: Aino's plan holder, the document's custodian
ROLE = "role-tyokykykoordinaattori"  # a professional of the custodian
Headers = Callable[..., dict[str, str]]
UNKNOWN_SECTION = (
    b"<component><section>"
    b'<templateId root="1.2.3.4.5.6.7"/>'
    b'<code code="99999-9" codeSystem="2.16.840.1.113883.6.1"/>'
    b"<title>Tuntematon osio</title><text>Ei kartoitettu.</text>"
    b"</section></component>"
)


@pytest.fixture
def network(services: Services) -> Services:
    load_network(services)
    return services


@pytest.fixture(scope="module")
def aino_doc() -> bytes:
    return with_custodian(
        exported("10-client-aino.json", "org-tyokykytiimi"), oid_of("org-tyokykytiimi")
    )


def post(client: TestClient, data: bytes, headers: dict[str, str]) -> Any:
    return client.post(URL, content=data, headers={**headers, **XML})


def audit_events(services: Services) -> int:
    with services.repo.reader() as session:
        rows = session.query("SELECT COUNT(*) FROM resources WHERE res_type = ?", ("AuditEvent",))
    return int(rows[0][0])


def answer(resp: Any) -> dict[str, Any]:
    """Parameters parts by name."""
    assert resp.status_code == 200, resp.text
    return {p["name"]: p for p in resp.json()["parameter"]}


def warnings(parts: dict[str, Any]) -> list[str]:
    issues = parts["outcome"]["resource"]["issue"]
    return [i["diagnostics"] for i in issues if i["severity"] == "warning"]


def test_the_custodian_imports_the_plan_and_the_document_is_kept(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    headers = as_org(CUSTODIAN, acting_role=f"PractitionerRole/{ROLE}")
    parts = answer(post(client, aino_doc, headers))
    assert parts["kind"]["valueCode"] == "hosu"
    plan = parts["plan"]["resource"]
    read = client.get(f"/fhir/CarePlan/{plan['id']}", headers=headers)
    assert read.status_code == 200, read.text
    assert plan["resourceType"] == "CarePlan" and read.json() == plan  # the plan as stored
    doc_ref = client.get(
        f"/fhir/{parts['documentReference']['valueReference']['reference']}", headers=headers
    )
    assert doc_ref.status_code == 200, doc_ref.text
    attachment = doc_ref.json()["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]) == aino_doc  # the original, byte for byte
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(aino_doc).digest()).decode()
    assert attachment["size"] == len(aino_doc)
    related = doc_ref.json()["context"]["related"]
    assert {"reference": f"CarePlan/{plan['id']}"} in related
    goals = client.get(f"/fhir/Goal?subject={plan['subject']['reference']}", headers=headers)
    assert goals.json().get("entry"), "the client's goals were imported"
    filed = client.get(f"/fhir/Provenance?entity={doc_ref.json()['id']}", headers=headers)
    # Two: the document's own (its custodian and author), and who filed it.
    (provenance,) = [
        e["resource"]
        for e in filed.json()["entry"]
        if e["resource"].get("reason") == [{"text": "CDA document filed"}]
    ]
    assert provenance["agent"][0]["who"] == {"reference": f"PractitionerRole/{ROLE}"}
    assert provenance["agent"][0]["onBehalfOf"] == {"reference": "Organization/org-tyokykytiimi"}
    assert {"reference": f"CarePlan/{plan['id']}"} in provenance["target"]


def test_importing_the_same_document_twice_changes_nothing(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    headers = as_org(CUSTODIAN)
    first = answer(post(client, aino_doc, headers))
    stored = versions(network)
    second = answer(post(client, aino_doc, headers))
    assert versions(network) == stored  # no new resource, no new version
    assert second["plan"]["resource"]["id"] == first["plan"]["resource"]["id"]
    assert "0 resource(s) created" in second["outcome"]["resource"]["issue"][0]["diagnostics"]


def test_the_parameters_forms_store_the_same_as_the_raw_body(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    headers = as_org(CUSTODIAN)
    data = base64.b64encode(aino_doc).decode("ascii")
    attachment = {
        "name": "document",
        "valueAttachment": {"contentType": "application/xml", "data": data},
    }
    body = {"resourceType": "Parameters", "parameter": [attachment]}
    first = answer(client.post(URL, json=body, headers=headers))
    stored = versions(network)
    binary = {
        "name": "document",
        "resource": {"resourceType": "Binary", "contentType": "application/xml", "data": data},
    }
    body = {"resourceType": "Parameters", "parameter": [binary]}
    second = answer(client.post(URL, json=body, headers=headers))
    third = answer(post(client, aino_doc, headers))
    assert versions(network) == stored
    refs = {p["documentReference"]["valueReference"]["reference"] for p in (first, second, third)}
    assert len(refs) == 1


def test_another_organisation_may_not_import_the_document(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    before, denials = versions(network), audit_events(network)
    resp = post(client, aino_doc, as_org("sote-keskus"))  # not the document's custodian
    assert resp.status_code == 403, resp.text
    assert "cda-custodian" in resp.text
    assert versions(network) == before
    assert audit_events(network) > denials  # the refusal is on record


def test_without_auth_there_is_no_custodian_rule(
    client: TestClient, network: Services, settings: Any, aino_doc: bytes
) -> None:
    """The unsafe no-auth mode (README): no caller, so no rule and no custody stamp."""
    settings.require_auth = False
    parts = answer(client.post(URL, content=aino_doc, headers=XML))
    assert parts["kind"]["valueCode"] == "hosu"
    before = versions(network)
    answer(client.post(URL, content=aino_doc, headers=XML))
    assert versions(network) == before


def test_a_token_without_write_scopes_is_refused(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    # Kela (a partner: it reads the plan, creates DocumentReferences) as the custodian.
    doc = with_custodian(aino_doc, oid_of("org-kela"))
    before = versions(network)
    resp = post(client, doc, as_org("kela"))
    assert resp.status_code == 403, resp.text
    assert "scopes" in resp.text
    assert versions(network) == before


def test_a_client_held_by_another_organisation_and_hidden_is_refused(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    load_file(network, SAMPLES_DIR / "10-client-aino.json")  # Aino, not shared with TYP
    doc = with_custodian(aino_doc, oid_of("org-typ"))
    before = versions(network)
    resp = post(client, doc, as_org("typ"))
    assert resp.status_code == 403, resp.text
    assert "150390" not in resp.text and "Aino" not in resp.text  # no personal data
    assert versions(network) == before


def test_a_plan_stored_by_another_custodian_is_not_overwritten(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    answer(post(client, aino_doc, as_org(CUSTODIAN)))
    before = versions(network)
    # The same document (same ids) claimed by another custodian: its records are not theirs.
    doc = with_custodian(aino_doc, oid_of("org-sosiaalipalvelut"))
    resp = post(client, doc, as_org("sosiaalipalvelut"))
    assert resp.status_code == 403, resp.text
    assert versions(network) == before


def test_an_unrecognised_section_is_a_warning(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    doc = aino_doc.replace(b"</structuredBody>", UNKNOWN_SECTION + b"</structuredBody>", 1)
    parts = answer(post(client, doc, as_org(CUSTODIAN)))
    listed = " ".join(warnings(parts))
    assert "1.2.3.4.5.6.7" in listed or "99999-9" in listed
    assert "Tuntematon" not in listed  # names what it is, never its content


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda d: d.replace(b"</ClinicalDocument>", b""), 400, "not-well-formed"),
        (lambda d: d.replace(b"<title>", b"<nonsense/><title>", 1), 400, "schema-invalid"),
        (lambda d: b'<?xml version="1.0"?><Bundle xmlns="http://hl7.org/fhir"/>', 400, "not-cda"),
        (lambda d: b"", 400, ""),
    ],
)
def test_a_broken_document_is_a_4xx_with_code_and_line(
    client: TestClient,
    network: Services,
    as_org: Headers,
    aino_doc: bytes,
    mutate: Callable[[bytes], bytes],
    status: int,
    code: str,
) -> None:
    before = versions(network)
    resp = post(client, mutate(aino_doc), as_org(CUSTODIAN))
    assert resp.status_code == status, resp.text
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert code in outcome["issue"][0]["diagnostics"]
    if code and code != "not-cda":
        assert "line" in outcome["issue"][0]["diagnostics"]
    assert "Testinen" not in resp.text
    assert versions(network) == before


def test_a_document_of_no_known_kind_is_a_422_listing_what_was_found(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    head, _, rest = aino_doc.partition(b"<templateId")
    _, _, rest = rest.partition(b"/>")
    # No document templateId of ours, and only a section we do not know.
    body_start = rest.index(b"<structuredBody>") + len(b"<structuredBody>")
    body_end = rest.index(b"</structuredBody>")
    doc = (
        head
        + b'<templateId root="1.2.3.4.5.6.8"/>'
        + rest[:body_start]
        + UNKNOWN_SECTION
        + rest[body_end:]
    )
    before = versions(network)
    resp = post(client, doc, as_org(CUSTODIAN))
    assert resp.status_code in (400, 422), resp.text
    if resp.status_code == 422:
        listed = " ".join(i["diagnostics"] for i in resp.json()["issue"])
        assert "1.2.3.4.5.6.8" in listed or "99999-9" in listed
    assert versions(network) == before


@pytest.mark.parametrize("path", sorted(CDA_SAMPLES.glob("*.xml")), ids=lambda p: p.name)
def test_every_sample_document_imports_or_is_refused_with_a_4xx(
    client: TestClient, network: Services, as_org: Headers, path: Any
) -> None:
    """The adapter's samples (ours and a generic C-CDA care plan), filed by the custodian: stored
    with warnings for what is not mapped, or a 422 listing it; never a 500."""
    data = with_custodian(path.read_bytes(), oid_of("org-tyokykytiimi"))
    resp = post(client, data, as_org(CUSTODIAN))
    assert resp.status_code in (200, 422), resp.text
    if resp.status_code == 200:
        before = versions(network)
        assert post(client, data, as_org(CUSTODIAN)).status_code == 200
        assert versions(network) == before
    assert custodian_of(data)


def new_version(data: bytes, doc_id: str, when: str, title: str) -> bytes:
    """The document as a later version: another ClinicalDocument/id and effectiveTime (the same
    setId), and a changed plan title."""
    head, sep, rest = data.partition(b"<id root=")
    _, _, rest = rest.partition(b"/>")
    out = head + sep + f'"{doc_id}"'.encode() + b"/>" + rest
    out = re.sub(
        rb'(<effectiveTime value=")[0-9+\-]+(")', rb"\g<1>" + when.encode() + rb"\2", out, count=1
    )
    return re.sub(rb"<title>[^<]*</title>", f"<title>{title}</title>".encode(), out, count=1)


def test_a_new_version_updates_the_plan_and_supersedes_the_filed_one(
    client: TestClient, network: Services, as_org: Headers, aino_doc: bytes
) -> None:
    headers = as_org(CUSTODIAN)
    v1 = answer(post(client, aino_doc, headers))
    later = new_version(
        aino_doc, "1.2.246.10.99990001.10.17.99.2", "20261201100000+0200", "Versio 2"
    )
    v2 = answer(post(client, later, headers))
    assert v2["plan"]["resource"]["id"] == v1["plan"]["resource"]["id"]  # the same plan, updated
    assert v2["plan"]["resource"]["meta"]["versionId"] == "2"
    old_ref = v1["documentReference"]["valueReference"]["reference"]
    new_ref = v2["documentReference"]["valueReference"]["reference"]
    assert old_ref != new_ref
    old = client.get(f"/fhir/{old_ref}", headers=headers).json()
    new = client.get(f"/fhir/{new_ref}", headers=headers).json()
    assert old["status"] == "superseded" and new["status"] == "current"
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": old_ref}}]
    stored = versions(network)
    answer(post(client, later, headers))  # the new version again: nothing changes
    assert versions(network) == stored
    resp = post(client, aino_doc, headers)  # the old version after the new one: refused
    assert resp.status_code == 409, resp.text
    assert versions(network) == stored


@pytest.mark.parametrize("fault", [KeyError, StopIteration, RuntimeError, AssertionError])
def test_a_mapper_failure_is_a_422_and_the_log_quotes_nothing(
    client: TestClient,
    network: Services,
    as_org: Headers,
    aino_doc: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: type[Exception],
) -> None:
    """Any adapter fault (not only the usual lookup errors) is a 422, its type logged only."""

    def broken(data: bytes, ids: Any) -> Any:
        raise fault("Testinen")  # an adapter bug whose message holds document content

    monkeypatch.setattr("gateway.documents.import_cda.to_fhir", broken)
    before = versions(network)
    resp = post(client, aino_doc, as_org(CUSTODIAN))
    assert resp.status_code == 422, resp.text
    assert "Testinen" not in resp.text and "Testinen" not in caplog.text
    assert fault.__name__ in caplog.text
    assert versions(network) == before


def test_a_peer_support_offer_without_its_details_is_a_warning_not_a_500(
    client: TestClient, network: Services, as_org: Headers
) -> None:
    p = "2.25.62423729588183648788789587467293120093"
    offer = (  # a participation section whose peer-support act names who, but no answer
        f'<component><section><templateId root="{p}.1.10.6"/>'
        f'<code code="osallisuus" codeSystem="{p}.2.9"/><title>x</title><text>x</text>'
        f'<entry><act classCode="ACT" moodCode="EVN"><templateId root="{p}.1.20.8"/>'
        f'<code code="vertaistuki" codeSystem="{p}.2.9"/><performer typeCode="PRF">'
        '<assignedEntity><id root="1.2.246.10.99990001.10.17"/><representedOrganization>'
        '<id root="1.2.246.10.99990001.10.17"/></representedOrganization></assignedEntity>'
        "</performer></act></entry></section></component>"
    ).encode()
    sample = (CDA_SAMPLES / "hosu-aino.xml").read_bytes()
    data = sample.replace(b"<structuredBody>", b"<structuredBody>" + offer, 1)
    resp = post(client, data, as_org(CUSTODIAN))
    assert resp.status_code == 200, resp.text
    assert any("not mapped: entry section0/entry[0]" in w for w in warnings(answer(resp)))


# The adapter's own samples and the demo organisation that is each one's custodian.
CUSTODIAN_OF = {
    "hosu-aino.xml": "tyokykytiimi",
    "hosu-mikko.xml": "sosiaalipalvelut",
    "social-plan-laura.xml": "typ",
}


@pytest.mark.parametrize("name", sorted(CUSTODIAN_OF))
def test_a_sample_document_files_into_the_demo_data_without_a_second_client(
    client: TestClient, services: Services, as_org: Headers, name: str
) -> None:
    """With the demo clients stored, the document's client is found by HETU (visible to its
    custodian) and reused: still one Patient per HETU; a repeat import changes nothing."""
    load_samples(services)
    headers = as_org(CUSTODIAN_OF[name])  # it would see a Patient the import made (stamped)
    patients = client.get("/fhir/Patient?_count=100", headers=headers).json()["total"]
    parts = answer(post(client, (CDA_SAMPLES / name).read_bytes(), headers))
    subject = parts["plan"]["resource"]["subject"]["reference"]
    assert subject.removeprefix("Patient/") in ("aino", "mikko", "laura")
    assert client.get("/fhir/Patient?_count=100", headers=headers).json()["total"] == patients
    stored = versions(services)
    answer(post(client, (CDA_SAMPLES / name).read_bytes(), headers))
    assert versions(services) == stored
