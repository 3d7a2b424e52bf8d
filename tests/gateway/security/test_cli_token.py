"""`plan-gateway token` in-process: an assertion signed with the demo key goes through the same
token endpoint checks against --database; the printed token is the gateway's (its key file)."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner

from gateway import cli
from gateway.security.authority import key_file
from gateway.security.registry import load_registry
from gateway.security.tokens import Verifier, load_or_create_key
from gateway.settings import ORGANISATIONS_DIR, Settings


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli.main, ["token", *args])


def test_token_in_process(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/gateway.db"
    result = invoke("--org", "kela", "--scope", "system/CarePlan.rs", "--database", database)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    access = result.output.strip()  # type: ignore[attr-defined]
    # A server on the same database finds the key beside it and accepts the token.
    key = load_or_create_key(key_file(Settings(database_url=database)))
    caller = Verifier(key, load_registry(ORGANISATIONS_DIR)).caller(access, time.time())
    assert caller.organization == "org-kela"
    assert caller.permits("CarePlan", "r") and not caller.permits("Task", "r")


def test_default_scope_is_the_registration(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/gateway.db"
    result = invoke("--org", "org-sote-keskus", "--database", database)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    key = load_or_create_key(key_file(Settings(database_url=database)))
    access = result.output.strip()  # type: ignore[attr-defined]
    caller = Verifier(key, load_registry(ORGANISATIONS_DIR)).caller(access, time.time())
    assert caller.permits("Task", "d")  # system/*.cruds


def test_unknown_organisation_and_refused_scope(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/gateway.db"
    unknown = invoke("--org", "nobody", "--database", database)
    assert unknown.exit_code == 1 and "not a registered" in unknown.output  # type: ignore[attr-defined]
    beyond = invoke("--org", "kela", "--scope", "system/Task.d", "--database", database)
    assert beyond.exit_code == 1 and "invalid_scope" in beyond.output  # type: ignore[attr-defined]
