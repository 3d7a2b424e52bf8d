"""CDA documents over real HTTP (uvicorn in a subprocess, both stores; tokens from the server's
own token endpoint): the custodian files a plan document with `$import-cda`, reads the stored plan
back with fhirpy, files it again and nothing changes, exports it with `$export-cda`; hostile XML
(XXE, billion laughs, quadratic blow-up, 300k-deep nesting, a 50 MB body) is each a 4xx in under
100 ms with no file opened and no connection made by the server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fhirpy import SyncFHIRClient

from gateway.app import build_services
from gateway.samples import SAMPLES_DIR, load_file
from gateway.settings import Settings
from tests.e2e.server import Gateway
from tests.gateway.documents import attacks
from tests.gateway.documents.helpers import exported, oid_of, with_custodian

pytestmark = pytest.mark.e2e
CUSTODIAN = "tyokykytiimi"
XML = {"Content-Type": "application/xml"}
LIMIT_S = 0.100
HETU = "150390-902D"


@pytest.fixture(scope="module")
def document() -> bytes:
    data = exported("10-client-aino.json", "org-tyokykytiimi")
    return with_custodian(data, oid_of("org-tyokykytiimi"))


@pytest.fixture(scope="module")
def directory(gateway: Gateway) -> Gateway:
    """The demo directory (organisations and professionals), loaded as `plan-gateway serve`
    loads samples: through the interactions, offline, into the server's database."""
    settings = Settings(
        database_url=gateway.database_url,
        token_key_file=str(gateway.log.parent / "loader-token-key.json"),
    )
    svc = build_services(settings)
    try:
        assert not load_file(svc, SAMPLES_DIR / "00-network.json").failed
    finally:
        if svc.audit is not None:
            svc.audit.close()
        svc.repo.close()
    return gateway


@pytest.fixture
def http(directory: Gateway) -> Iterator[httpx.Client]:
    headers = directory.auth_headers(CUSTODIAN)
    with httpx.Client(base_url=directory.base, headers=headers, timeout=60) as c:
        yield c


def imported(http: httpx.Client, document: bytes) -> dict:
    r = http.post("/$import-cda", content=document, headers=XML)
    assert r.status_code == 200, r.text
    return {p["name"]: p for p in r.json()["parameter"]}


def plan_versions(fhir: SyncFHIRClient, plan_id: str, subject: str) -> dict[str, str]:
    """meta.versionId of the plan and everything of its client the custodian can search."""
    out = {
        f"CarePlan/{plan_id}": fhir.reference("CarePlan", plan_id).to_resource()["meta"][
            "versionId"
        ]
    }
    for rtype, param in (
        ("Goal", "subject"),
        ("Task", "patient"),
        ("DocumentReference", "subject"),
        ("CareTeam", "subject"),
    ):
        for r in fhir.resources(rtype).search(**{param: subject}).fetch_all():
            out[f"{rtype}/{r.id}"] = r["meta"]["versionId"]
    return out


def test_import_read_reimport_export(
    directory: Gateway, http: httpx.Client, document: bytes
) -> None:
    parts = imported(http, document)
    plan = parts["plan"]["resource"]
    fhir = SyncFHIRClient(
        directory.base,
        authorization=f"Bearer {directory.token(CUSTODIAN)}",
        extra_headers={"Accept": "application/fhir+json"},
    )
    stored = fhir.reference("CarePlan", plan["id"]).to_resource()
    assert stored["subject"]["reference"] == plan["subject"]["reference"]
    before = plan_versions(fhir, plan["id"], plan["subject"]["reference"])
    assert len(before) > 3
    again = imported(http, document)
    assert again["plan"]["resource"]["id"] == plan["id"]
    assert plan_versions(fhir, plan["id"], plan["subject"]["reference"]) == before
    r = http.get(f"/CarePlan/{plan['id']}/$export-cda", params={"kind": "hosu"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    assert HETU.encode() in r.content


def test_another_organisation_is_refused(directory: Gateway, document: bytes) -> None:
    r = httpx.post(
        f"{directory.base}/$import-cda",
        content=document,
        headers={**directory.auth_headers("sote-keskus"), **XML},
        timeout=60,
    )
    assert r.status_code == 403, r.text


Payload = Callable[[attacks.Watch], bytes]
CASES: dict[str, Payload] = {
    "xxe-file": attacks.xxe_file,
    "xxe-network": attacks.xxe_network,
    "xinclude": attacks.xinclude,
    "billion-laughs": lambda w: attacks.billion_laughs(),
    "quadratic-blowup": lambda w: attacks.quadratic_blowup(),
    "deep-nesting-300k": lambda w: attacks.deep_nesting(),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_xml_is_refused_fast_without_access(
    http: httpx.Client, tmp_path: Path, name: str
) -> None:
    http.post("/$import-cda", content=b"<x/>", headers=XML)  # a warm connection and server
    with attacks.watching(tmp_path) as watch:
        body = CASES[name](watch)
        start = time.perf_counter()
        r = http.post("/$import-cda", content=body, headers=XML)
        elapsed = time.perf_counter() - start
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert elapsed < LIMIT_S, f"{name}: {elapsed * 1000:.1f} ms"
    assert not watch.file_opened and watch.connections == 0
    print(f"{name}: {r.status_code} in {elapsed * 1000:.1f} ms over HTTP")


def _answer_while_uploading(base: str, token: str, body: bytes) -> tuple[int, float, bytes]:
    """POST `body` over a raw socket, the upload in a thread of its own; the status and the time
    until the server's complete answer, however much of the body was still unsent."""
    url = httpx.URL(base)
    path = f"{url.path}/$import-cda"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((url.host, url.port), timeout=10)

    def upload() -> None:
        # The server may answer and close: the rest of the body is then never read.
        with contextlib.suppress(OSError):
            sock.sendall(body)

    start = time.perf_counter()
    sock.sendall(head)
    sender = threading.Thread(target=upload, daemon=True)
    sender.start()
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection without an answer"
        received += chunk
    headers, _, content = received.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(content) < length:
        chunk = sock.recv(65536)
        assert chunk, "the answer was cut short"
        content += chunk
    elapsed = time.perf_counter() - start
    sock.close()
    sender.join(timeout=10)
    return int(headers.split(b" ")[1]), elapsed, content


def test_a_50mb_body_is_answered_413_before_it_is_uploaded(directory: Gateway) -> None:
    """The gateway refuses on Content-Length, before reading the body: its 413 arrives while
    the client is still sending (an httpx client, which reads the answer only after uploading
    everything, measures its own upload: ~0.3 s for 50 MB on loopback)."""
    token = directory.token(CUSTODIAN)
    body = attacks.huge_body()
    _answer_while_uploading(directory.base, token, b"<x/>")  # a warm server
    status, elapsed, content = _answer_while_uploading(directory.base, token, body)
    assert status == 413, content
    assert b"OperationOutcome" in content
    assert elapsed < LIMIT_S, f"{elapsed * 1000:.1f} ms"
    print(f"body-50mb: {status} in {elapsed * 1000:.1f} ms over HTTP (raw socket)")
