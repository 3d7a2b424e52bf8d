"""Storage fixtures: a Repository on each store (via the shared `database_url` fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.storage import Repository, open_repository
from tests.storage.factories import identifier_index


@pytest.fixture
def repo(database_url: str) -> Iterator[Repository]:
    r = open_repository(database_url, identifier_index)
    yield r
    r.close()
