"""What `$import-cda` may write (gateway/documents/import_rules.py, import_guards.py), both
stores: the document is not the authority on a partner's Task work, on the network's coordinator
(changed only by the coordination operations, exactly one open) nor on a client retired by a
merge. Every refusal names its rule and writes nothing.

Documents: samples/cda/hosu-aino.xml (custodian org-tyokykytiimi), edited where a test needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from gateway.samples import load_samples
from tests.gateway.documents.helpers import CDA_SAMPLES, XML, load_network, versions

URL = "/fhir/$import-cda"
AINO = (CDA_SAMPLES / "hosu-aino.xml").read_bytes()
CUSTODIAN = "tyokykytiimi"
P = "2.25.62423729588183648788789587467293120093"
Headers = Callable[..., dict[str, str]]


def post(client: TestClient, data: bytes, headers: dict[str, str]) -> Any:
    return client.post(URL, content=data, headers={**headers, **XML})


def later_version(data: bytes) -> bytes:
    """A new version of the document: another ClinicalDocument/id, a later effectiveTime."""
    out = data.replace(
        b'<id root="ae920268-1184-5b51-80f1-d74858065d81"/>',
        b'<id root="ae920268-1184-5b51-80f1-d74858065d82"/>',
        1,
    )
    out = out.replace(
        b'<effectiveTime value="20261122100000+0200"/>',
        b'<effectiveTime value="20261123100000+0200"/>',
        1,
    )
    assert out.count(b"d74858065d82") == 1 and b"20261123100000" in out
    return out


def test_a_partners_task_progress_survives_a_repeat_import_and_a_new_version(
    client: TestClient, services: Services, as_org: Headers
) -> None:
    load_network(services)
    assert post(client, AINO, as_org(CUSTODIAN)).status_code == 200
    kela = as_org("kela")
    found = client.get("/fhir/Task?_count=50", headers=kela).json()["entry"]
    task = next(
        e["resource"] for e in found if e["resource"]["owner"]["reference"].endswith("kela")
    )
    task.pop("meta")
    moved = client.put(
        f"/fhir/Task/{task['id']}", json={**task, "status": "in-progress"}, headers=kela
    )
    assert moved.status_code == 200, moved.text
    stored = versions(services)
    # the same document again: nothing changes (the owner's state is not put back)
    assert post(client, AINO, as_org(CUSTODIAN)).status_code == 200
    assert versions(services) == stored
    # a new version of it: the plan may change, the owner's work state does not
    assert post(client, later_version(AINO), as_org(CUSTODIAN)).status_code == 200
    after = client.get(f"/fhir/Task/{task['id']}", headers=kela).json()
    assert after["status"] == "in-progress"
    assert after["meta"]["versionId"] == moved.json()["meta"]["versionId"]


def test_a_document_naming_two_coordinators_is_refused(
    client: TestClient, services: Services, as_org: Headers
) -> None:
    load_network(services)
    member = f'<templateId root="{P}.1.20.6"/>'.encode()  # a network member act
    nurse = (
        member + f'\n                  <code code="terveydenhoitaja" codeSystem="{P}.2.2"'.encode()
    )
    coordinator = member + f'<code code="asiakasvastaava" codeSystem="{P}.2.1"'.encode()
    assert AINO.count(nurse) == 1  # the nurse member made a second coordinator
    before = versions(services)
    resp = post(client, AINO.replace(nurse, coordinator), as_org(CUSTODIAN))
    assert resp.status_code == 409, resp.text
    assert "one-coordinator" in resp.text
    assert versions(services) == before


def test_a_new_version_may_not_change_the_coordinator(
    client: TestClient, services: Services, as_org: Headers
) -> None:
    load_network(services)
    assert post(client, AINO, as_org(CUSTODIAN)).status_code == 200
    stored = versions(services)
    data = later_version(AINO)
    at = data.index(f'<code code="asiakasvastaava" codeSystem="{P}.2.1"'.encode())
    old = b'extension="10099990011"'  # the coordinator's Terhikki number
    at = data.index(old, at)
    data = data[:at] + b'extension="10099990099"' + data[at + len(old) :]
    resp = post(client, data, as_org(CUSTODIAN))
    assert resp.status_code == 409, resp.text
    assert "coordinator-by-operation" in resp.text
    assert versions(services) == stored


def test_a_document_for_a_client_retired_by_a_merge_is_refused(
    client: TestClient, services: Services, as_org: Headers
) -> None:
    load_samples(services)
    headers = as_org(CUSTODIAN)
    other = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.246.21", "value": "010101-123N"}],
    }
    target = client.post("/fhir/Patient", json=other, headers=headers)
    assert target.status_code == 201, target.text
    aino = client.get("/fhir/Patient/aino", headers=headers).json()
    aino.pop("meta")
    link = {"other": {"reference": f"Patient/{target.json()['id']}"}, "type": "replaced-by"}
    retired = {**aino, "active": False, "link": [link]}
    assert client.put("/fhir/Patient/aino", json=retired, headers=headers).status_code == 200
    before = versions(services)
    resp = post(client, AINO, headers)
    assert resp.status_code == 409, resp.text
    assert "client-merged" in resp.text
    assert versions(services) == before
