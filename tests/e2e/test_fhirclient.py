"""fhirclient (SMART on FHIR's client, strict models) against a real gateway: the capability
statement parses, create, read, update, search through every page, transaction, history; every
request carries a bearer token from the server's own token endpoint (on the client's requests
session), as org-sote-keskus."""

from __future__ import annotations

import uuid

import pytest
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhirclient.models.careteam import CareTeam
from fhirclient.models.fhirreference import FHIRReference
from fhirclient.models.humanname import HumanName
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRServer, FHIRUnauthorizedException

from tests.e2e.server import Gateway

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(gateway: Gateway) -> FHIRServer:
    smart = smart_client.FHIRClient(
        settings={"app_id": "plan-gateway-e2e", "api_base": gateway.base}
    )
    smart.prepare()  # fetches /metadata (public) and parses it with the strict models
    # A backend service brings its own token: every request of the session carries it.
    smart.server.session.headers["Authorization"] = f"Bearer {gateway.token()}"
    return smart.server


def _patient(family: str, given: str = "Aino") -> Patient:
    p = Patient()
    name = HumanName()
    name.family, name.given = family, [given]
    p.name = [name]
    return p


def test_capability_statement_parses_strictly(server: FHIRServer) -> None:
    capability = server.capabilityStatement
    assert capability.fhirVersion == "4.0.1"
    served = {r.type for rest in capability.rest for r in rest.resource}
    assert {"Patient", "CarePlan", "CareTeam", "Task", "Consent"} <= served


def test_capability_statement_names_the_token_endpoint(server: FHIRServer) -> None:
    security = server.capabilityStatement.rest[0].security
    assert security is not None and security.service[0].coding[0].code == "SMART-on-FHIR"
    uris = security.extension[0].extension
    assert [(u.url, u.valueUri) for u in uris] == [
        ("token", server.base_uri.removesuffix("/fhir/") + "/auth/token")
    ]


def test_no_token_is_refused(gateway: Gateway) -> None:
    smart = smart_client.FHIRClient(
        settings={"app_id": "plan-gateway-e2e", "api_base": gateway.base}
    )
    with pytest.raises(FHIRUnauthorizedException):
        Patient.read("nobody", smart.server)


def test_create_read_update(server: FHIRServer) -> None:
    created = _patient("Mäkinen").create(server)
    assert created is not None and created["meta"]["versionId"] == "1"
    patient = Patient.read(created["id"], server)
    assert patient.name[0].family == "Mäkinen"
    patient.gender = "female"
    updated = patient.update(server)
    assert updated is not None and updated["meta"]["versionId"] == "2"
    assert Patient.read(created["id"], server).gender == "female"


def test_search_pages_through_every_result(server: FHIRServer) -> None:
    family = f"Haku{uuid.uuid4().hex[:8]}"
    created = {_patient(family, f"g{i}").create(server)["id"] for i in range(45)}
    search = Patient.where(struct={"family": family, "_count": "10"})
    pages = list(search.perform_iter(server))
    assert len(pages) == 5
    assert [len(b.entry or []) for b in pages] == [10, 10, 10, 10, 5]
    ids = [e.resource.id for b in pages for e in b.entry or []]
    assert len(ids) == 45 and set(ids) == created
    assert all(b.total in (None, 45) for b in pages)


def test_transaction_and_history(server: FHIRServer) -> None:
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    patient_entry = BundleEntry()
    patient_entry.fullUrl = patient_urn
    patient_entry.resource = _patient("Laine", "Mikko")
    patient_entry.request = BundleEntryRequest({"method": "POST", "url": "Patient"})
    team = CareTeam()
    team.status = "active"
    team.subject = FHIRReference({"reference": patient_urn})
    team_entry = BundleEntry()
    team_entry.resource = team
    team_entry.request = BundleEntryRequest({"method": "POST", "url": "CareTeam"})
    bundle = Bundle()
    bundle.type = "transaction"
    bundle.entry = [patient_entry, team_entry]

    response = Bundle(bundle.create(server))
    assert response.type == "transaction-response"
    assert [e.response.status[:3] for e in response.entry] == ["201", "201"]
    team_id = response.entry[1].response.location.split("/")[-3]
    stored = CareTeam.read(team_id, server)
    assert stored.subject.reference.startswith("Patient/")
    patient_id = stored.subject.reference.split("/")[1]
    assert Patient.read(patient_id, server).name[0].family == "Laine"

    stored.name = "Mikon verkosto (network)"
    stored.update(server)
    history = Bundle.read_from(f"CareTeam/{team_id}/_history", server)
    assert history.type == "history" and history.total in (None, 2)  # total: see test_fhirpy
    assert [e.response.etag for e in history.entry] == ['W/"2"', 'W/"1"']
