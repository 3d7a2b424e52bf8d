"""HL7 v2 over MLLP against a real gateway process (uvicorn with the MLLP listener in its app
lifespan, PLAN_GATEWAY_MLLP_PORT), on each store: messages sent over TCP as the registered record
system (samples/organisations/sote-keskus.json, hl7v2), ACKs read back, then the Patient read
with a FHIR client (fhirpy) as that organisation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fhirpy import SyncFHIRClient

from adapters.hl7v2.mllp import Deframer, frame
from tests.conftest import BACKENDS
from tests.e2e.server import Gateway, free_port, gateway_for

pytestmark = pytest.mark.e2e
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "hl7v2"
HETU = "urn:oid:1.2.246.21"


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8").replace("\n", "\r").encode()


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[tuple[Gateway, int]]:
    port = free_port()
    env = {"PLAN_GATEWAY_MLLP_PORT": str(port)}
    with gateway_for(request.param, tmp_path_factory, worker_id, "mllp", env=env) as gw:
        yield gw, port


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
    gw, port = served
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
    gw, port = served
    first, again, bad = send(
        port, sample("adt-a04"), sample("adt-a04"), b"MSH|^~\\&|NOBODY|X|||2025||ADT^A04|Z1|P|2.5.1"
    )
    assert again == first  # the stored ACK
    assert bad["MSA"][1:3] == ["AR", "Z1"]
    found = fhir(gw).resources("Patient").search(identifier=f"{HETU}|010190-900P").fetch()
    assert len(found) == 1


def test_a_merge_over_mllp(served) -> None:
    gw, port = served
    answers = send(port, sample("adt-a04"), sample("adt-a04-duplicate"), sample("adt-a40"))
    assert [a["MSA"][1] for a in answers] == ["AA", "AA", "AA"]
    client = fhir(gw)
    retired = client.resources("Patient").search(identifier=f"{HETU}|010190-902S").get()
    survivor = client.resources("Patient").search(identifier=f"{HETU}|010190-900P").get()
    assert retired["active"] is False
    assert retired["link"][0]["other"]["reference"] == f"Patient/{survivor.id}"
