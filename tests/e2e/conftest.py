"""One real gateway per test module and store: uvicorn in a subprocess on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS
from tests.e2e.server import Gateway, gateway_for


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[Gateway]:
    with gateway_for(request.param, tmp_path_factory, worker_id, "e2e") as gw:
        yield gw
