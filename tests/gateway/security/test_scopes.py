"""SMART scopes: the grammar, v1 and v2, coverage, and the route table's completeness."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.security.scopes import (
    ROUTE_PERMISSIONS,
    ScopeError,
    parse_scope,
    parse_scopes,
    permits,
    within,
)


@pytest.mark.parametrize(
    ("text", "letters"),
    [
        ("system/CarePlan.rs", "rs"),
        ("system/Task.cruds", "cruds"),
        ("system/*.s", "s"),
        ("system/Task.read", "rs"),  # v1
        ("system/Task.write", "cud"),  # v1
        ("system/Task.*", "cruds"),  # v1
    ],
)
def test_parse(text: str, letters: str) -> None:
    assert parse_scope(text).letters == frozenset(letters)


@pytest.mark.parametrize(
    "text",
    [
        "user/Task.rs",
        "patient/*.read",
        "system/Task.sr",
        "system/Task.",
        "system/Nope.rs",
        "system/Task.rs?status=ready",
        "system/Task.x",
        "system/task.rs",
        "openid",
    ],
)
def test_unsupported(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_permits() -> None:
    scopes = parse_scopes("system/CarePlan.rs system/*.s")
    assert permits(scopes, "CarePlan", "r")
    assert permits(scopes, "Task", "s")  # from the wildcard
    assert not permits(scopes, "Task", "r")
    assert permits(scopes, "*", "s") and not permits(scopes, "*", "r")


def test_within_registration() -> None:
    registered = parse_scopes("system/*.rs system/Task.cruds")
    assert within(parse_scope("system/CarePlan.read"), registered)
    assert within(parse_scope("system/Task.cud"), registered)
    assert not within(parse_scope("system/CarePlan.c"), registered)
    assert not within(parse_scope("system/*.cruds"), registered)


def test_every_fhir_route_has_a_scope_rule() -> None:
    """A route added without a rule would be refused to everyone; this names it at once."""
    app = create_app()
    routes = {
        (method, route.path.removeprefix("/fhir"))
        for route in app.routes
        if getattr(route, "path", "").startswith("/fhir") and ".well-known" not in route.path
        for method in getattr(route, "methods", ())
        if method != "HEAD"
    }
    assert routes == set(ROUTE_PERMISSIONS)
