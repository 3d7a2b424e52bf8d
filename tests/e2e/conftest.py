"""One real gateway per test module and store: uvicorn in a subprocess on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS
from tests.e2e.server import Gateway, fresh_database, running_gateway


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    url = fresh_database(request.param, workdir, "e2e", worker_id)
    with running_gateway(url, workdir, workers=1) as gw:
        yield gw
