"""`$`-operations: routing by level and method, scopes, CapabilityStatement and
OperationDefinition, the common parameter parsing, and writes applied with and without an
operation's own authority (gateway/fhir_api/operations.py, gateway/coordination/common.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.coordination import common
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param, Registry

PATIENT = {
    "resourceType": "Patient",
    "id": "op-client",
    "managingOrganization": {"reference": "Organization/org-sote-keskus"},
}


def _echo(svc: Services, req: FhirRequest) -> FhirResponse:
    p = common.Params.of(req, allowed={"flag", "when", "who", "kind"})
    return common.ok(
        common.parameters(
            common.part("level", valueString=f"{req.resource_type}/{req.id}"),
            common.part("flag", valueBoolean=p.boolean("flag")),
            common.part("when", valueString=p.date("when")),
            common.part("who", valueString=p.ref("who")),
            common.part("kind", valueCoding=p.coding("kind")),
        )
    )


def _rename(svc: Services, req: FhirRequest) -> FhirResponse:
    """Renames a Patient through `apply`; with ?authorised=true as an authorised operation."""
    assert req.resource_type and req.id
    p = common.Params.of(req, allowed={"authorised"})
    patient = common.read_visible(svc, req, req.resource_type, req.id)
    patient["name"] = [{"family": "Renamed"}]
    authority = "test-rule" if p.boolean("authorised") else None
    entries = [common.put(patient, common.version_of(patient))]
    if authority:
        entries.append(
            common.provenance_entry(
                req, [common.next_version(patient)], {"system": "urn:test", "code": "rename"}
            )
        )
    done = common.apply(svc, req, entries, authority=authority)
    return common.ok(common.body_of(done[0]))


def _html(svc: Services, req: FhirRequest) -> FhirResponse:
    return FhirResponse(200, b"<p>plan</p>", {"Content-Type": "text/html; charset=utf-8"})


OPS = (
    Operation(
        "echo",
        _echo,
        system=True,
        affects_state=False,
        title="Echo",
        parameters=(Param("flag", "boolean"),),
    ),
    Operation(
        "echo-patient",
        _echo,
        resource_types=("Patient",),
        instance=True,
        type_level=True,
        affects_state=False,
    ),
    Operation("rename", _rename, resource_types=("Patient",), instance=True),
    Operation(
        "page",
        _html,
        resource_types=("Patient",),
        instance=True,
        affects_state=False,
        produces=("text/html",),
    ),
)


@pytest.fixture
def ops_client(client: TestClient, services: Services) -> TestClient:
    services.operations = Registry(OPS)
    assert client.put("/fhir/Patient/op-client", json=PATIENT).status_code in (200, 201)
    return client


def _values(body: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for p in body["parameter"]:
        out[p["name"]] = next((v for k, v in p.items() if k.startswith("value")), None)
    return out


def test_system_type_and_instance_levels_route_to_their_operation(ops_client: TestClient) -> None:
    r = ops_client.get("/fhir/$echo?flag=true&when=2026-11-01&who=Patient/x&kind=urn:s|c1")
    assert r.status_code == 200, r.text
    assert _values(r.json()) == {
        "level": "None/None",
        "flag": True,
        "when": "2026-11-01",
        "who": "Patient/x",
        "kind": {"system": "urn:s", "code": "c1"},
    }
    assert _values(ops_client.get("/fhir/Patient/$echo-patient").json())["level"] == "Patient/None"
    r = ops_client.get("/fhir/Patient/op-client/$echo-patient")
    assert _values(r.json())["level"] == "Patient/op-client"


def test_parameters_body_and_query_are_merged(ops_client: TestClient) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "flag", "valueBoolean": False}]}
    r = ops_client.post("/fhir/$echo?when=2026-11-01T10:00:00%2B02:00", json=body)
    assert _values(r.json())["flag"] is False
    assert _values(r.json())["when"] == "2026-11-01T10:00:00+02:00"


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("unknown=1", "Parameters.parameter[unknown]"),
        ("flag=yes", "Parameters.parameter[flag]"),
        ("flag=true&flag=false", "Parameters.parameter[flag]"),
        ("when=yesterday", "Parameters.parameter[when]"),
        ("who=not-a-reference", "Parameters.parameter[who]"),
        ("kind=nocode", "Parameters.parameter[kind]"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(
    ops_client: TestClient, query: str, where: str
) -> None:
    r = ops_client.get(f"/fhir/$echo?{query}")
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == [where]


def test_a_body_that_is_not_parameters_is_refused(ops_client: TestClient) -> None:
    r = ops_client.post("/fhir/$echo", json={"resourceType": "Patient"})
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/fhir/$nothing", 404),  # unknown operation
        ("GET", "/fhir/Patient/$echo", 404),  # a system operation at the type level
        ("GET", "/fhir/Patient/$rename", 404),  # an instance operation at the type level
        ("GET", "/fhir/Patient/op-client/$rename", 405),  # changes state: POST only
        ("PUT", "/fhir/$echo", 405),
        ("GET", "/fhir/Nonsense/x/$echo-patient", 404),  # a type not served
        ("GET", "/fhir/Patient/bad$id/$echo-patient", 400),
    ],
)
def test_wrong_level_or_method_is_refused(
    ops_client: TestClient, method: str, url: str, status: int
) -> None:
    r = ops_client.request(method, url)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_operations_need_their_scope(ops_client: TestClient, as_org: Any) -> None:
    read_only = as_org("sote-keskus", scope="system/Patient.rs")
    assert (
        ops_client.get("/fhir/Patient/op-client/$echo-patient", headers=read_only).status_code
        == 200
    )
    r = ops_client.post("/fhir/Patient/op-client/$rename", headers=read_only)
    assert r.status_code == 403
    assert "scopes" in r.json()["issue"][0]["diagnostics"]


def test_capability_lists_operations_and_definitions_are_served(
    ops_client: TestClient, anonymous: Any
) -> None:
    cs = ops_client.get("/fhir/metadata").json()
    rest = cs["rest"][0]
    assert {"name": "echo", "definition": OPS[0].url} in rest["operation"]
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert {o["name"] for o in patient["operation"]} == {"echo-patient", "rename", "page"}
    od = anonymous.get("/fhir/OperationDefinition/echo-patient")
    assert od.status_code == 200
    body = od.json()
    assert (body["system"], body["type"], body["instance"]) == (False, True, True)
    assert body["affectsState"] is False
    assert anonymous.get("/fhir/OperationDefinition/nothing").status_code == 404


def test_a_rendering_passes_through_with_its_media_type(ops_client: TestClient) -> None:
    r = ops_client.get("/fhir/Patient/op-client/$page?_format=html")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.text == "<p>plan</p>"


def test_apply_keeps_the_write_rules_unless_the_operation_authorises(
    ops_client: TestClient, as_org: Any
) -> None:
    # The work-ability team may not see or write the sote centre's client: without consent
    # the Patient is hidden (404), with or without the operation's authority.
    team = as_org("tyokykytiimi")
    assert ops_client.post("/fhir/Patient/op-client/$rename", headers=team).status_code == 404
    # The holder renames it through the generic rules...
    r = ops_client.post("/fhir/Patient/op-client/$rename")
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["versionId"] == "2"
    # ...and as an authorised operation, which stores its own Provenance of the new version.
    r = ops_client.post("/fhir/Patient/op-client/$rename?authorised=true")
    assert r.status_code == 200, r.text
    prov = ops_client.get("/fhir/Provenance?target=Patient/op-client").json()
    targets = [t["reference"] for e in prov.get("entry", []) for t in e["resource"]["target"]]
    assert "Patient/op-client/_history/3" in targets


def test_an_authorised_write_still_fails_whole_on_a_stale_version(
    ops_client: TestClient, services: Services
) -> None:
    # A concurrent change between the operation's read and its write: If-Match fails, nothing
    # of the operation is stored (no Provenance either).
    before = ops_client.get("/fhir/Provenance?target=Patient/op-client&_summary=count").json()
    original = common.apply

    def stale(svc: Services, req: FhirRequest, entries: list, authority: str | None = None):
        entries[0]["request"]["ifMatch"] = 'W/"99"'
        return original(svc, req, entries, authority)

    common.apply = stale  # type: ignore[assignment]
    try:
        r = ops_client.post("/fhir/Patient/op-client/$rename?authorised=true")
    finally:
        common.apply = original  # type: ignore[assignment]
    assert r.status_code in (409, 412)
    after = ops_client.get("/fhir/Provenance?target=Patient/op-client&_summary=count").json()
    assert after["total"] == before["total"]
    assert ops_client.get("/fhir/Patient/op-client").json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize(
    ("rtype", "rid"),
    [
        ("StructureDefinition", "client-network"),
        ("CodeSystem", "coordinator-role"),
        ("ValueSet", "handover-reason"),
        ("Questionnaire", "stage-feedback"),
    ],
)
def test_compiled_conformance_resources_are_served_read_only(
    anonymous: Any, ops_client: TestClient, rtype: str, rid: str
) -> None:
    r = anonymous.get(f"/fhir/{rtype}/{rid}")
    assert r.status_code == 200
    body = r.json()
    assert (body["resourceType"], body["id"]) == (rtype, rid)
    found = anonymous.get(f"/fhir/{rtype}", params={"url": body["url"]}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [rid]
    assert ops_client.put(f"/fhir/{rtype}/{rid}", json=body).status_code in (404, 405)
    assert anonymous.get(f"/fhir/{rtype}/no-such-thing").status_code == 404
    assert anonymous.get(f"/fhir/{rtype}?publisher=x").status_code == 400


def test_an_operation_never_works_on_a_silently_cut_list(
    client: TestClient, services: Services
) -> None:
    # More matches than an operation takes is a 413 asking for narrower criteria.
    def listing(svc: Services, req: FhirRequest) -> FhirResponse:
        found = common.search_visible(svc, req, "Patient", [("_id", "op-a,op-b,op-c")], limit=2)
        return common.ok(common.parameters(common.part("count", valueInteger=len(found))))

    services.operations = Registry([Operation("listing", listing, system=True)])
    for pid in ("op-a", "op-b"):
        assert client.put(f"/fhir/Patient/{pid}", json={**PATIENT, "id": pid}).is_success
    r = client.post("/fhir/$listing")
    assert r.status_code == 200 and r.json()["parameter"][0]["valueInteger"] == 2
    assert client.put("/fhir/Patient/op-c", json={**PATIENT, "id": "op-c"}).is_success
    r = client.post("/fhir/$listing")
    assert r.status_code == 413
    assert "narrow" in r.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "value",
    [
        {"valueCodeableConcept": {"coding": [1]}},  # a coding that is not an object
        {"valueCodeableConcept": {"coding": "x"}},
        {"valueCoding": {"system": 1, "code": "c"}},
    ],
)
def test_a_malformed_coding_in_a_body_is_a_400(ops_client: TestClient, value: dict) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "kind", **value}]}
    r = ops_client.post("/fhir/$echo", json=body)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Parameters.parameter[kind]"]
