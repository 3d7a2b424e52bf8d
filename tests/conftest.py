"""Shared fixtures: every storage-touching test runs on SQLite and on PostgreSQL, and every FHIR
request carries a bearer token (require_auth is on, as in production).

PostgreSQL: 127.0.0.1:5432, trust auth (as on the developers' and CI machines); each xdist worker
gets its own database, emptied before each test. Set PLAN_GATEWAY_TEST_PG=0 to run SQLite only
(for a quick local loop; CI always runs both).

Acting as organisations (the demo registrations of samples/organisations/; tokens are minted with
the app's own key, valid 300 s, the key file under the test's tmp_path):

- `client`: a TestClient whose default headers carry `Authorization: Bearer <token>` for
  `sote-keskus` (Organization `org-sote-keskus`, scopes `system/*.cruds`). Every plain test
  request acts as that organisation; a header passed to one request replaces the default.
- `as_org(name, scope=None, acting_role=None)` -> request headers for another organisation
  (client_id or Organization id; default scopes: its registration):
  `client.get("/fhir/CarePlan/x", headers=as_org("kela"))`,
  `as_org("sosiaalipalvelut", acting_role="PractitionerRole/role-sosiaalityontekija")`.
- `org_client(name, scope=None, acting_role=None)` -> an `ActingClient`: the same app and stores
  through the same TestClient, every request as that organisation:
  `kela = org_client("kela"); kela.get(...)`.
- `anonymous`: an `ActingClient` that sends no Authorization header (expect 401).
- `tests.helpers.token_for(services, name, scope)` / `auth_headers(...)` / `bearer(token)` for
  tests that build their own apps or need the raw token.

Tokens are minted when the fixture (or `as_org(...)` / `org_client(...)` call) runs and live
300 s: a test that runs longer mints fresh ones with `token_for` as it goes.

A test of the unsafe "auth off" mode sets `settings.require_auth = False` itself (the `settings`
object is the app's, read on every request).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.fhir_api.context import Services
from gateway.settings import Settings
from gateway.storage.migrations import INDEX_TABLES
from tests.helpers import ActingClient, auth_headers

PG_ADMIN = os.environ.get(
    "PLAN_GATEWAY_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("PLAN_GATEWAY_TEST_PG", "1") != "0" else [])
# HL7 v2 intake's message log (migration 3) and the delivery state and outbox (migration 5)
# too: a test starts with none of them.
_TABLES = [
    "resources",
    "history",
    "search_snapshots",
    *INDEX_TABLES,
    "hl7v2_messages",
    "subscriptions",
    "outbox",
    "inbox",
]


def _pg_url(worker: str) -> str:
    # PLAN_GATEWAY_TEST_DB_SUFFIX keeps parallel local runs (several checkouts) apart.
    name = f"plan_gateway_test_{worker}{os.environ.get('PLAN_GATEWAY_TEST_DB_SUFFIX', '')}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> str:
    return _pg_url(worker_id)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway.db"
    url = request.getfixturevalue("pg_url")
    with psycopg.connect(url, autocommit=True) as conn:
        have = {
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        present = [t for t in _TABLES if t in have]
        if present:
            conn.execute(f"TRUNCATE {', '.join(present)} RESTART IDENTITY")
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        token_key_file=str(tmp_path / "token-key.json"),
        id_key_file=str(tmp_path / "pseudonym-key.hex"),
        # No relay thread per test app: delivery tests run rounds themselves (Relay.run_once)
        # or start one; end-to-end servers run it as deployed.
        delivery_relay=False,
        delivery_test_mode=True,
    )


@pytest.fixture
def services(settings: Settings, tmp_path: Path) -> Iterator[Services]:
    # A module that overrides `settings` still keeps the token key out of the repository.
    if settings.token_key_file is None:
        settings.token_key_file = str(tmp_path / "token-key.json")
    svc = build_services(settings)
    yield svc
    svc.repo.close()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    """An in-process HTTP client against the full app (base URL http://testserver/fhir), acting
    as org-sote-keskus (client sote-keskus, system/*.cruds) on every request."""
    with TestClient(create_app(settings, services), headers=auth_headers(services)) as c:
        yield c


OrgHeaders = Callable[..., dict[str, str]]


@pytest.fixture
def as_org(services: Services) -> OrgHeaders:
    """`as_org(name, scope=None, acting_role=None)`: request headers acting as that demo
    organisation (client_id or Organization id)."""

    def headers(name: str, scope: str | None = None, acting_role: str | None = None) -> dict:
        return auth_headers(services, name, scope, acting_role)

    return headers


@pytest.fixture
def org_client(client: TestClient, as_org: OrgHeaders) -> Callable[..., ActingClient]:
    """`org_client(name, scope=None, acting_role=None)`: the shared client acting as that
    organisation on every request."""

    def acting(name: str, scope: str | None = None, acting_role: str | None = None) -> Any:
        return ActingClient(client, as_org(name, scope, acting_role))

    return acting


@pytest.fixture
def anonymous(client: TestClient) -> ActingClient:
    """The shared client sending no bearer token."""
    return ActingClient(client, None)
