"""A real gateway for tests: uvicorn in a subprocess on a free loopback port, on a fresh database.

Used by tests/e2e (real FHIR clients), tests/gateway/test_concurrency.py (real concurrent HTTP
clients) and tests/gateway/security/test_live.py. The server only ever listens on 127.0.0.1; it
never reaches any other address. It requires bearer tokens (the default), with its token key in
the module's folder; `Gateway.token()` gets one the way a partner system does: discovery at
/.well-known/smart-configuration, a client assertion signed with the demo organisation's key
(samples/organisations/demo-keys), POST to the real token endpoint. Tokens live 300 s: get one
per test, not per module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from gateway.security.registry import load_registry
from gateway.settings import ORGANISATIONS_DIR
from gateway.storage.postgres import reset_database
from tests.gateway.security.helpers import assertion, form
from tests.helpers import DEFAULT_CLIENT

PG_ADMIN = os.environ.get(
    "PLAN_GATEWAY_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90.0


@dataclass(frozen=True)
class Gateway:
    """A running server: its FHIR base URL and the database it stores into."""

    base: str
    database_url: str
    log: Path

    @property
    def root(self) -> str:
        """The server root (where /auth/token and /.well-known live)."""
        return self.base.removesuffix("/fhir")

    def token(self, client_id: str = DEFAULT_CLIENT, scope: str | None = None) -> str:
        """An access token from this server's token endpoint for a demo organisation (its
        registered scopes unless `scope` names fewer)."""
        return fetch_token(self.root, client_id, scope)

    def auth_headers(self, client_id: str = DEFAULT_CLIENT, scope: str | None = None) -> dict:
        return {"Authorization": f"Bearer {self.token(client_id, scope)}"}


def fetch_token(root: str, client_id: str = DEFAULT_CLIENT, scope: str | None = None) -> str:
    """SMART Backend Services against a running gateway: discovery, a signed client assertion
    (the demo key), the token request."""
    org = load_registry(ORGANISATIONS_DIR).find(client_id)
    assert org is not None, f"{client_id} is not a demo organisation"
    conf = httpx.get(f"{root}/.well-known/smart-configuration", timeout=30)
    assert conf.status_code == 200, conf.text
    url = str(conf.json()["token_endpoint"])
    scopes = scope if scope is not None else " ".join(org.scope_text)
    r = httpx.post(url, data=form(assertion(org.client_id, token_url=url), scopes), timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(backend: str, workdir: Path, purpose: str, worker: str) -> str:
    """An empty database URL for one server: a SQLite file, or a reset PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{workdir}/gateway.db"
    suffix = os.environ.get("PLAN_GATEWAY_TEST_DB_SUFFIX", "")
    name = f"plan_gateway_{purpose}_{worker}{suffix}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    reset_database(url)
    return url


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gateway did not answer within {STARTUP_SECONDS}s:\n{log.read_text()}")


@contextmanager
def running_gateway(database_url: str, workdir: Path, workers: int = 1) -> Iterator[Gateway]:
    """Start `uvicorn gateway.app:create_app --factory` with `workers` processes; stop it after."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    log = workdir / f"server-{port}.log"
    env = {
        "PLAN_GATEWAY_TOKEN_KEY_FILE": str(workdir / "token-key.json"),
        **os.environ,
        "PLAN_GATEWAY_DATABASE": database_url,
    }
    env.pop("PLAN_GATEWAY_BASE_URL", None)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "gateway.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        # A kept-alive connection the server closes just as the client reuses it surfaces as a
        # ReadError on a busy machine; tests keep connections for their whole run instead.
        "--timeout-keep-alive",
        "300",
        "--backlog",
        "4096",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, base, log)
        yield Gateway(base, database_url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if "Traceback" in log.read_text():
        raise AssertionError(f"the gateway logged an unexpected error:\n{log.read_text()[-6000:]}")


@contextmanager
def gateway_for(
    backend: str,
    tmp_path_factory: Any,
    worker: str,
    purpose: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[Gateway]:
    """A running gateway on a fresh `backend` database for one test module; `env` adds
    PLAN_GATEWAY_* settings (a `{workdir}` in a value is replaced by the module's folder)."""
    workdir = tmp_path_factory.mktemp(f"{purpose}-{backend}")
    url = fresh_database(backend, workdir, purpose, worker)
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update({k: v.format(workdir=workdir) for k, v in (env or {}).items()})
    try:
        with running_gateway(url, workdir, workers=workers) as gw:
            yield gw
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
