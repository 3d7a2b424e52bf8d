"""Against a real server (uvicorn, two worker processes, require_auth on by default): one
assertion sent 1,000 times in parallel gives one token across processes; `plan-gateway token
--base-url` gets a token that the FHIR API accepts."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from click.testing import CliRunner

from gateway import cli
from tests.conftest import BACKENDS
from tests.e2e.server import Gateway, gateway_for
from tests.gateway.security.helpers import assertion, form

N = 1000
CONNECTIONS = 100


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[Gateway]:
    # require_auth is the default; the helper puts the token key in the module's folder.
    with gateway_for(request.param, tmp_path_factory, worker_id, "auth", 2) as gw:
        yield gw


def _root(gw: Gateway) -> str:
    return gw.root


def test_the_helper_token_is_accepted_across_processes(gateway: Gateway) -> None:
    """A token from one worker process's endpoint is accepted by both (one shared key)."""
    headers = gateway.auth_headers("kela", "system/Organization.rs")
    # a new connection per request: the kernel hands each to either worker
    statuses = {
        httpx.get(f"{gateway.base}/Organization", headers=headers).status_code for _ in range(20)
    }
    assert statuses == {200}


def test_one_assertion_1000_times_across_processes_gives_one_token(gateway: Gateway) -> None:
    token_url = f"{_root(gateway)}/auth/token"
    data = form(assertion(token_url=token_url))
    barrier = threading.Barrier(N)
    # 1,000 requests released at once over 100 connections: 1,000 new connections at the same
    # instant overflow the listen backlog (resets) when the machine is busy with other tests.
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    with httpx.Client(limits=limits, timeout=httpx.Timeout(120, pool=300)) as client:

        def one(_: int) -> int:
            barrier.wait(timeout=120)
            return client.post(token_url, data=data).status_code

        with ThreadPoolExecutor(max_workers=N) as pool:
            statuses = Counter(pool.map(one, range(N)))
    assert statuses == {200: 1, 401: N - 1}


def test_cli_token_from_a_running_gateway(gateway: Gateway) -> None:
    result = CliRunner().invoke(
        cli.main,
        [
            "token",
            "--org",
            "org-kela",
            "--scope",
            "system/Organization.rs",
            "--base-url",
            gateway.base,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    access = result.output.strip()
    assert "\n" not in access  # the token only
    assert httpx.get(f"{gateway.base}/Organization").status_code == 401
    r = httpx.get(f"{gateway.base}/Organization", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 200, r.text
    assert (
        httpx.get(f"{gateway.base}/Task", headers={"Authorization": f"Bearer {access}"}).status_code
        == 403
    )


def test_cli_token_error_is_reported(gateway: Gateway) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["token", "--org", "kela", "--scope", "system/*.cruds", "--base-url", _root(gateway)],
    )
    assert result.exit_code == 1 and "invalid_scope" in result.output
