"""Hostile XML at `$import-cda` over HTTP (the full app in process, bearer token, both stores):
XXE (file and network), XInclude, billion laughs, quadratic blow-up, 300k-deep nesting and a
50 MB body are each a 4xx OperationOutcome in under 100 ms, with no file opened and no
connection made (tests/gateway/documents/attacks.py watches both), nothing stored, and no
document content in the answer. The real-server run of the same payloads is
tests/e2e/test_cda_http.py.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from tests.gateway.documents import attacks

LIMIT_S = 0.100
XML = {"Content-Type": "application/xml"}
# name -> (payload builder, the statuses it may get)
Payload = Callable[[attacks.Watch], bytes]
CASES: dict[str, tuple[Payload, tuple[int, ...]]] = {
    "xxe-file": (attacks.xxe_file, (400,)),
    "xxe-network": (attacks.xxe_network, (400,)),
    "xinclude": (attacks.xinclude, (400, 422)),
    "billion-laughs": (lambda w: attacks.billion_laughs(), (400,)),
    "quadratic-blowup": (lambda w: attacks.quadratic_blowup(), (400,)),
    "deep-nesting-300k": (lambda w: attacks.deep_nesting(), (400, 413)),
    "body-50mb": (lambda w: attacks.huge_body(), (413,)),
    "body-12mb": (lambda w: attacks.huge_body(12 * attacks.MB), (413,)),
}


def stored_count(services: Services) -> int:
    with services.repo.reader() as session:
        row = session.query("SELECT COUNT(*) FROM resources WHERE res_type <> ?", ("AuditEvent",))
    return int(row[0][0])


def timed_post(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, dict, float]:
    start = time.perf_counter()
    resp = client.post("/fhir/$import-cda", content=body, headers=headers)
    elapsed = time.perf_counter() - start
    return resp.status_code, resp.json(), elapsed


def warm(client: TestClient) -> None:
    """One small refused document first: the first request pays for imports, not the parser."""
    client.post("/fhir/$import-cda", content=b"<x/>", headers=XML)


def check_refused(status: int, outcome: dict, elapsed: float, allowed: tuple[int, ...]) -> None:
    assert status in allowed, (status, outcome)
    assert outcome["resourceType"] == "OperationOutcome"
    text = str(outcome)
    assert "lol" not in text and "aaaa" not in text and "xxxx" not in text  # no content echoed
    assert elapsed < LIMIT_S, f"{elapsed * 1000:.1f} ms"


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_body_is_refused_fast_without_access(
    client: TestClient, services: Services, tmp_path: Path, name: str
) -> None:
    build, allowed = CASES[name]
    warm(client)
    before = stored_count(services)
    with attacks.watching(tmp_path) as watch:
        body = build(watch)
        status, outcome, elapsed = timed_post(client, body, XML)
    check_refused(status, outcome, elapsed, allowed)
    assert not watch.file_opened, "the parser opened a local file"
    assert watch.connections == 0, "the parser connected to the network"
    assert stored_count(services) == before  # nothing written
    print(f"{name}: {status} in {elapsed * 1000:.1f} ms")


@pytest.mark.parametrize("name", ["xxe-file", "xxe-network", "billion-laughs"])
def test_hostile_document_in_parameters_is_refused_alike(
    client: TestClient, tmp_path: Path, name: str
) -> None:
    build, allowed = CASES[name]
    warm(client)
    with attacks.watching(tmp_path) as watch:
        data = base64.b64encode(build(watch)).decode("ascii")
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "document",
                    "valueAttachment": {"contentType": "application/xml", "data": data},
                }
            ],
        }
        start = time.perf_counter()
        resp = client.post("/fhir/$import-cda", json=body)
        elapsed = time.perf_counter() - start
    check_refused(resp.status_code, resp.json(), elapsed, allowed)
    assert not watch.file_opened and watch.connections == 0


def test_a_chunked_50mb_body_without_length_is_refused(client: TestClient) -> None:
    """No Content-Length: the gateway stops reading past its body limit (413)."""
    chunk = b"x" * 1_000_000

    def stream():  # type: ignore[no-untyped-def]
        yield attacks.PROLOG + attacks.CDA_OPEN + b"<!--"
        for _ in range(50):
            yield chunk

    warm(client)
    start = time.perf_counter()
    resp = client.post("/fhir/$import-cda", content=stream(), headers=XML)
    elapsed = time.perf_counter() - start
    assert resp.status_code == 413, resp.text
    print(f"chunked 50 MB: 413 in {elapsed * 1000:.1f} ms")
