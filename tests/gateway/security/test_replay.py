"""One assertion sent 1,000 times at once yields exactly one token: in one process (the app's
thread pool racing on the database) and across two uvicorn worker processes (test_live.py)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.gateway.security.helpers import assertion, form

N = 1000


def test_1000_parallel_requests_with_one_assertion_give_one_token(client: TestClient) -> None:
    data = form(assertion())
    barrier = threading.Barrier(100)

    def one(_: int) -> tuple[int, str]:
        barrier.wait(timeout=60) if _ < 100 else None  # the first 100 leave together
        r = client.post("/auth/token", data=data)
        return r.status_code, r.json().get("error", "")

    with ThreadPoolExecutor(max_workers=100) as pool:
        results = Counter(pool.map(one, range(N)))
    assert results == {(200, ""): 1, (401, "invalid_client"): N - 1}
