"""Authentication fixtures: the shared stores, with the gateway's token key in the test's own
directory (never ./data), and helpers that make client assertions with the demo keys."""

from __future__ import annotations

import pytest

from gateway.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(database_url=database_url, token_key_file=str(tmp_path / "token-key.json"))
