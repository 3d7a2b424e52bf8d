"""Shared fixtures: every storage-touching test runs on SQLite and on PostgreSQL.

PostgreSQL: 127.0.0.1:5432, trust auth (as on the developers' and CI machines); each xdist worker
gets its own database, emptied before each test. Set PLAN_GATEWAY_TEST_PG=0 to run SQLite only
(for a quick local loop; CI always runs both).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.fhir_api.context import Services
from gateway.settings import Settings
from gateway.storage.migrations import INDEX_TABLES

PG_ADMIN = os.environ.get(
    "PLAN_GATEWAY_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("PLAN_GATEWAY_TEST_PG", "1") != "0" else [])
_TABLES = ["resources", "history", "search_snapshots", *INDEX_TABLES]


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
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.repo.close()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    """An in-process HTTP client against the full app (base URL http://testserver/fhir)."""
    with TestClient(create_app(settings, services)) as c:
        yield c
