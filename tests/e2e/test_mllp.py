"""HL7 v2 over MLLP against a real gateway process (uvicorn with the MLLP listener and the delivery
relay in its app lifespan, PLAN_GATEWAY_MLLP_PORT), on each store: messages sent over TCP as the
registered record system (samples/organisations/sote-keskus.json, hl7v2), ACKs read back, then
the Patient read with a FHIR client (fhirpy) as that organisation; and a referral answered: the
RRI^I12 the server's relay sends from the outbox reaches the record system's MLLP listener (its
registered endpoint pointed at a listener of the test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from fhirpy import SyncFHIRClient

from adapters.hl7v2.builders import referral
from adapters.hl7v2.message import parse
from adapters.hl7v2.mllp import Deframer, frame
from gateway.app import build_services
from gateway.samples import load_file, sample_files
from gateway.settings import ORGANISATIONS_DIR, Settings
from tests.adapters.hl7v2.test_rri_client import Receiver
from tests.conftest import BACKENDS
from tests.e2e.server import Gateway, free_port, gateway_for

pytestmark = pytest.mark.e2e
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "hl7v2"
HETU = "urn:oid:1.2.246.21"


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8").replace("\n", "\r").encode()


class Served(NamedTuple):
    gateway: Gateway
    port: int  # the gateway's MLLP listener
    record_system: Receiver  # where sote-keskus's registration sends answers (RRI^I12)


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[Served]:
    port = free_port()
    with Receiver() as record_system:
        registrations = tmp_path_factory.mktemp("organisations")
        for path in ORGANISATIONS_DIR.glob("*.json"):
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc["client_id"] == "sote-keskus":
                doc["hl7v2"]["endpoint"] = record_system.url
            (registrations / path.name).write_text(json.dumps(doc), encoding="utf-8")
        env = {
            "PLAN_GATEWAY_MLLP_PORT": str(port),
            "PLAN_GATEWAY_ORGANISATIONS": str(registrations),
        }
        with gateway_for(request.param, tmp_path_factory, worker_id, "mllp", env=env) as gw:
            yield Served(gw, port, record_system)


def send(port: int, *messages: bytes) -> list[dict[str, list[str]]]:
    """Each message framed on one connection, in order; the ACK segments of each."""

    async def run() -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(frame(m) for m in messages))
        await writer.drain()
        deframer, acks = Deframer(), []
        while len(acks) < len(messages):
            acks += deframer.feed(await asyncio.wait_for(reader.read(65536), 30))
        writer.close()
        return acks

    answers = asyncio.run(run())
    return [{line[:3]: line.split("|") for line in a.decode().split("\r") if line} for a in answers]


def fhir(gw: Gateway) -> SyncFHIRClient:
    return SyncFHIRClient(
        gw.base,
        authorization=f"Bearer {gw.token()}",
        extra_headers={"Accept": "application/fhir+json"},
    )


def test_adt_over_mllp_is_acked_and_the_patient_is_readable_with_fhirpy(served) -> None:
    gw, port, _ = served
    a04, a08 = send(port, sample("adt-a04"), sample("adt-a08"))
    assert a04["MSA"][1:3] == ["AA", "PGS000123"]
    assert a08["MSA"][1:3] == ["AA", "PGS000456"]
    client = fhir(gw)
    aino = client.resources("Patient").search(identifier=f"{HETU}|010190-900P").get()
    assert aino["name"][0]["family"] == "Virtanen"
    assert "010190-900P" not in aino.id  # a pseudonymous id, never the HETU
    mikko = client.resources("Patient").search(identifier=f"{HETU}|150575-912F").get()
    assert mikko["address"][0]["line"] == ["Satamakatu 3 & 5", "c/o Mäkelä"]


def test_a_repeat_and_a_reject_change_nothing_over_mllp(served) -> None:
    gw, port, _ = served
    first, again, bad = send(
        port, sample("adt-a04"), sample("adt-a04"), b"MSH|^~\\&|NOBODY|X|||2025||ADT^A04|Z1|P|2.5.1"
    )
    assert again == first  # the stored ACK
    assert bad["MSA"][1:3] == ["AR", "Z1"]
    found = fhir(gw).resources("Patient").search(identifier=f"{HETU}|010190-900P").fetch()
    assert len(found) == 1


def test_a_merge_over_mllp(served) -> None:
    gw, port, _ = served
    answers = send(port, sample("adt-a04"), sample("adt-a04-duplicate"), sample("adt-a40"))
    assert [a["MSA"][1] for a in answers] == ["AA", "AA", "AA"]
    client = fhir(gw)
    retired = client.resources("Patient").search(identifier=f"{HETU}|010190-902S").get()
    survivor = client.resources("Patient").search(identifier=f"{HETU}|010190-900P").get()
    assert retired["active"] is False
    assert retired["link"][0]["other"]["reference"] == f"Patient/{survivor.id}"


def load_samples(gw: Gateway) -> None:
    """The sample network and clients in the served database, as `plan-gateway serve` loads
    them (Aino, her plan, the work-ability team)."""
    key = str(gw.log.parent / "loader-token-key.json")
    svc = build_services(Settings(database_url=gw.database_url, token_key_file=key))
    try:
        assert not any(load_file(svc, path).failed for path in sample_files())
    finally:
        if svc.audit is not None:
            svc.audit.close()
        svc.repo.close()


def test_an_accepted_referral_is_answered_by_the_servers_relay(served) -> None:
    """REF^I12 in over MLLP, the team accepts over HTTP, and the relay running in the server
    process sends the RRI^I12 from the outbox to the record system: nobody drives it."""
    gw, port, record_system = served
    load_samples(gw)
    [ack] = send(port, sample("ref-aino"))
    assert ack["MSA"][1:3] == ["AA", "PGS002001"]
    system = referral.identifier_system("referral", "org-sote-keskus")
    found = httpx.get(
        f"{gw.base}/Task",
        params={"identifier": f"{system}|LAH20261012-1"},
        headers=gw.auth_headers(),
        timeout=30,
    )
    assert found.status_code == 200, found.text
    [entry] = found.json()["entry"]
    ops = [{"op": "replace", "path": "/status", "value": "accepted"}]
    accepted = httpx.patch(
        f"{gw.base}/Task/{entry['resource']['id']}",
        json=ops,
        headers={**gw.auth_headers("tyokykytiimi"), "Content-Type": "application/json-patch+json"},
        timeout=30,
    )
    assert accepted.status_code == 200, accepted.text
    [er7] = record_system.wait_for(1, timeout=30)
    rri = parse(er7)
    assert (rri.event, rri.get("MSA", 2), rri.get("RF1", 1)) == ("RRI^I12", "PGS002001", "A")
