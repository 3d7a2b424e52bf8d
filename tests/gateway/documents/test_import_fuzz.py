"""Mutated CDA documents at `$import-cda` (seeded, both stores): every answer is a 200 or a 4xx
OperationOutcome, never a 500, and a refused document writes nothing at all (the versions of
every stored resource are as before)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from tests.gateway.documents.helpers import (
    CDA_SAMPLES,
    XML,
    load_network,
    oid_of,
    versions,
    with_custodian,
)

MUTANTS = 120
SEED = 20261122
Mutation = Callable[[random.Random, bytes], bytes]


def _span(rng: random.Random, data: bytes) -> tuple[int, int]:
    start = rng.randrange(len(data))
    return start, min(len(data), start + rng.randrange(1, 200))


def delete_slice(rng: random.Random, data: bytes) -> bytes:
    a, b = _span(rng, data)
    return data[:a] + data[b:]


def duplicate_slice(rng: random.Random, data: bytes) -> bytes:
    a, b = _span(rng, data)
    return data[:b] + data[a:b] + data[b:]


def flip_byte(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def blank_attribute(rng: random.Random, data: bytes) -> bytes:
    """One attribute value emptied or replaced by junk (dates, codes, ids)."""
    starts = [i for i in range(len(data) - 2) if data[i : i + 2] == b'="']
    i = rng.choice(starts) + 2
    end = data.index(b'"', i)
    junk = rng.choice([b"", b"x", b"99999999999999", b"-1", b"\xc3\xa4"])
    return data[:i] + junk + data[end:]


def drop_element(rng: random.Random, data: bytes) -> bytes:
    """One element (start tag to its end tag, when simple) removed."""
    tags = [i for i in range(len(data) - 1) if data[i] == ord("<") and data[i + 1] not in b"/?!"]
    i = rng.choice(tags)
    name = data[i + 1 : i + 1 + next(j for j, c in enumerate(data[i + 1 :]) if c in b" />")]
    end = data.find(b"</" + name + b">", i)
    close = data.find(b">", i) + 1
    stop = end + len(name) + 3 if end > 0 and data[close - 2] != ord("/") else close
    return data[:i] + data[stop:]


MUTATIONS: tuple[Mutation, ...] = (
    delete_slice,
    duplicate_slice,
    flip_byte,
    truncate,
    blank_attribute,
    drop_element,
)


def mutants(count: int) -> list[bytes]:
    rng = random.Random(SEED)
    oid = oid_of("org-tyokykytiimi")
    docs = [with_custodian(p.read_bytes(), oid) for p in sorted(CDA_SAMPLES.glob("*.xml"))]
    out = []
    for _ in range(count):
        data = rng.choice(docs)
        for _ in range(rng.randrange(1, 3)):
            data = rng.choice(MUTATIONS)(rng, data)
        out.append(data)
    return out


@pytest.fixture
def network(services: Services) -> Services:
    load_network(services)
    return services


def test_mutated_documents_are_answered_without_a_fault_or_a_partial_write(
    client: TestClient, network: Services, as_org: Callable[..., dict[str, str]]
) -> None:
    headers = {**as_org("tyokykytiimi"), **XML}
    statuses: dict[int, int] = {}
    for data in mutants(MUTANTS):
        before = versions(network)
        resp = client.post("/fhir/$import-cda", content=data, headers=headers)
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert resp.status_code < 500, resp.text
        if resp.status_code != 200:
            assert resp.json()["resourceType"] == "OperationOutcome"
            assert versions(network) == before, resp.text  # nothing of it was written
    assert sum(statuses.values()) == MUTANTS
    print(f"statuses: {dict(sorted(statuses.items()))}")
