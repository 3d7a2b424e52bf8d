"""Concurrency on both stores, through a real server and real concurrent HTTP clients.

The server is uvicorn in a subprocess with two worker processes (each with its own thread pool),
so writers race across threads *and* processes: SQLite must serialise them with BEGIN IMMEDIATE,
PostgreSQL with transaction-scoped advisory locks taken before the current version is read.
Every request carries a bearer token from the server's token endpoint (one per test).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.e2e.server import Gateway, gateway_for

T = TypeVar("T")
JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[Gateway]:
    with gateway_for(request.param, tmp_path_factory, worker_id, "concurrency", workers=2) as gw:
        yield gw


@pytest.fixture
def auth(gateway: Gateway) -> dict[str, str]:
    """Bearer headers for org-sote-keskus, fresh for each test (tokens live 300 s)."""
    return gateway.auth_headers()


def race(n: int, call: Callable[[httpx.Client, int], T], auth: dict[str, str]) -> list[T]:
    """Run `call(client, i)` for i in range(n) on n threads released together by a barrier."""
    barrier = threading.Barrier(n)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    with httpx.Client(limits=limits, timeout=120, headers=auth) as client:

        def one(i: int) -> T:
            barrier.wait()
            return call(client, i)

        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(one, range(n)))


def _history_total(base: str, path: str, auth: dict[str, str]) -> int:
    """How many versions the history lists, counted through every page (a caller's history
    Bundle carries no `total`: the disclosure gate would have to count hidden versions)."""
    url: str | None = f"{base}/{path}/_history?_count=100"
    seen = 0
    while url:
        r = httpx.get(url, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        bundle = r.json()
        seen += len(bundle.get("entry", []))
        url = next(
            (link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None
        )
    return seen


def test_50_puts_with_the_same_if_match_have_exactly_one_winner(
    gateway: Gateway, auth: dict[str, str]
) -> None:
    base = gateway.base
    r = httpx.post(f"{base}/Patient", json={"resourceType": "Patient"}, headers={**auth, **JSON})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]

    def put(client: httpx.Client, i: int) -> tuple[int, str]:
        # Each writer changes the resource differently, so no update is a no-op.
        body = {"resourceType": "Patient", "id": pid, "name": [{"family": f"Writer{i}"}]}
        resp = client.put(f"{base}/Patient/{pid}", json=body, headers={**JSON, "If-Match": 'W/"1"'})
        return resp.status_code, resp.text

    results = race(50, put, auth)
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 412: 49}, statuses
    winner = next(text for status, text in results if status == 200)
    for status, text in results:
        if status == 412:
            assert '"OperationOutcome"' in text
    current = httpx.get(f"{base}/Patient/{pid}", headers=auth, timeout=30)
    assert current.json()["meta"]["versionId"] == "2"
    assert current.headers["etag"] == 'W/"2"'
    # The stored version is exactly the winner's: no other writer overwrote it.
    assert current.json()["name"] == httpx.Response(200, text=winner).json()["name"]
    assert _history_total(base, f"Patient/{pid}", auth) == 2


def test_read_modify_write_with_retries_loses_no_update(
    gateway: Gateway, auth: dict[str, str]
) -> None:
    base = gateway.base
    r = httpx.post(
        f"{base}/Organization", json={"resourceType": "Organization"}, headers={**auth, **JSON}
    )
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    writers = 12

    def add_alias(client: httpx.Client, i: int) -> int:
        """Read, append this writer's alias, PUT with If-Match; on 412 start again."""
        for attempt in range(1, 200):
            got = client.get(f"{base}/Organization/{oid}")
            body: dict[str, Any] = got.json()
            body["alias"] = [*body.get("alias", []), f"writer-{i}"]
            resp = client.put(
                f"{base}/Organization/{oid}",
                json=body,
                headers={**JSON, "If-Match": got.headers["etag"]},
            )
            if resp.status_code == 200:
                return attempt
            assert resp.status_code == 412, resp.text
        raise AssertionError(f"writer {i} never won")

    race(writers, add_alias, auth)
    final = httpx.get(f"{base}/Organization/{oid}", headers=auth, timeout=30).json()
    assert sorted(final["alias"]) == sorted(f"writer-{i}" for i in range(writers))
    assert final["meta"]["versionId"] == str(writers + 1)
    assert _history_total(base, f"Organization/{oid}", auth) == writers + 1


def test_100_conditional_creates_with_one_identifier_make_one_resource(
    gateway: Gateway, auth: dict[str, str]
) -> None:
    base = gateway.base
    body = {
        "resourceType": "Practitioner",
        "identifier": [{"system": "urn:oid:1.2.246.537.26", "value": "10000000100"}],
    }
    headers = {**JSON, "If-None-Exist": "identifier=urn:oid:1.2.246.537.26|10000000100"}

    def create(client: httpx.Client, i: int) -> tuple[int, str]:
        resp = client.post(f"{base}/Practitioner", json=body, headers=headers)
        return resp.status_code, resp.json().get("id", resp.text)

    results = race(100, create, auth)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 200: 99}, (statuses, results[:3])
    assert len({rid for _, rid in results}) == 1
    assert _history_total(base, "Practitioner", auth) == 1
    found = httpx.get(
        f"{base}/Practitioner",
        params={"identifier": "urn:oid:1.2.246.537.26|10000000100"},
        headers=auth,
        timeout=30,
    ).json()
    assert found["total"] == 1


def test_concurrent_creates_of_different_resources_all_land(
    gateway: Gateway, auth: dict[str, str]
) -> None:
    base = gateway.base
    r = httpx.post(f"{base}/Patient", json={"resourceType": "Patient"}, headers={**auth, **JSON})
    subject = {"reference": f"Patient/{r.json()['id']}"}

    def create(client: httpx.Client, i: int) -> int:
        body = {
            "resourceType": "Goal",
            "lifecycleStatus": "proposed",
            "description": {"text": f"goal {i}"},
            "subject": subject,
        }
        return client.post(f"{base}/Goal", json=body, headers={**auth, **JSON}).status_code

    assert Counter(race(40, create, auth)) == {201: 40}
    assert _history_total(base, "Goal", auth) == 40
