"""fhirpy (SyncFHIRClient and AsyncFHIRClient) against a real gateway: create, read, update,
search through every page, transaction with urn:uuid references, history; every request with a
bearer token from the server's own token endpoint (`authorization=`), as org-sote-keskus."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from fhirpy import AsyncFHIRClient, SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ResourceNotFound

from tests.e2e.server import Gateway

pytestmark = pytest.mark.e2e
HEADERS = {"Accept": "application/fhir+json"}


@pytest.fixture
def client(gateway: Gateway) -> SyncFHIRClient:
    return SyncFHIRClient(
        gateway.base, authorization=f"Bearer {gateway.token()}", extra_headers=HEADERS
    )


def test_no_token_is_refused(gateway: Gateway) -> None:
    with pytest.raises(AuthorizationError) as refused:
        SyncFHIRClient(gateway.base, extra_headers=HEADERS).resources("Patient").fetch()
    assert "bearer token is required" in str(refused.value)


def test_create_read_update_delete(client: SyncFHIRClient) -> None:
    patient = client.resource("Patient", gender="female", name=[{"family": "Korhonen"}])
    patient.save()
    assert patient.id and patient["meta"]["versionId"] == "1"
    read = client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == "Korhonen"
    read["gender"] = "other"
    read.save()
    assert read["meta"]["versionId"] == "2"
    again = client.resources("Patient").search(_id=patient.id).get()
    assert again["gender"] == "other"
    read.delete()
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", patient.id).to_resource()


def test_search_follows_next_links_through_every_page(client: SyncFHIRClient) -> None:
    family = f"Sivu{uuid.uuid4().hex[:8]}"  # unique per run, so earlier tests' data never match
    created = set()
    for i in range(45):
        p = client.resource("Patient", name=[{"family": family, "given": [f"n{i}"]}])
        p.save()
        created.add(p.id)
    search = client.resources("Patient").search(family=family).limit(10)
    first = search.fetch_raw()
    assert len(first["entry"]) == 10
    assert any(link["relation"] == "next" for link in first["link"])
    everything = search.fetch_all()
    ids = [p.id for p in everything]
    assert len(ids) == 45 and set(ids) == created  # each exactly once, none missing
    assert search.count() == 45


def test_transaction_rewrites_urn_uuid_references(client: SyncFHIRClient) -> None:
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_urn,
                "resource": {"resourceType": "Patient", "name": [{"family": "Nieminen"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "CarePlan",
                    "status": "active",
                    "intent": "plan",
                    "subject": {"reference": patient_urn},
                },
                "request": {"method": "POST", "url": "CarePlan"},
            },
        ],
    }
    response = client.execute("/", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses
    patient_ref = response["entry"][0]["response"]["location"].split("/_history")[0]
    plan_id = response["entry"][1]["response"]["location"].split("/")[-3]
    plan = client.reference("CarePlan", plan_id).to_resource()
    assert plan["subject"]["reference"] == "/".join(patient_ref.split("/")[-2:])
    assert (
        client.reference(reference=plan["subject"]["reference"]).to_resource()["name"][0]["family"]
        == "Nieminen"
    )


def test_history_lists_every_version_newest_first(client: SyncFHIRClient) -> None:
    org = client.resource("Organization", name="Kela v1")
    org.save()
    for n in (2, 3):
        org["name"] = f"Kela v{n}"
        org.save()
    org.delete()
    history = client.execute(f"Organization/{org.id}/_history", method="get")
    assert history["type"] == "history"
    assert history.get("total") in (None, 4)  # a caller's history may omit total (the gate)
    versions = [e["response"]["etag"] for e in history["entry"]]
    assert versions == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in history["entry"][0]  # the delete marker
    assert [e["resource"]["name"] for e in history["entry"][1:]] == [
        "Kela v3",
        "Kela v2",
        "Kela v1",
    ]


def test_async_client_creates_concurrently_and_reads_back(gateway: Gateway) -> None:
    async def run() -> list[str]:
        client = AsyncFHIRClient(
            gateway.base, authorization=f"Bearer {gateway.token()}", extra_headers=HEADERS
        )
        goals = [
            client.resource(
                "Practitioner", name=[{"family": "Async", "given": [str(i)]}], active=True
            )
            for i in range(10)
        ]
        await asyncio.gather(*(g.save() for g in goals))
        read = await asyncio.gather(
            *(client.reference("Practitioner", g.id).to_resource() for g in goals)
        )
        return [r["name"][0]["given"][0] for r in read]

    assert asyncio.run(run()) == [str(i) for i in range(10)]
