"""Client assertions and token requests for the tests, made with the demo organisations' keys
(samples/organisations/demo-keys; public test material)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from gateway.security.demo import client_assertion, load_demo_key
from gateway.security.token_endpoint import ASSERTION_TYPE, GRANT_TYPE
from gateway.settings import ORGANISATIONS_DIR

TOKEN_URL = "http://testserver/auth/token"  # what the TestClient's requests see as our URL
RSA_CLIENT = "sote-keskus"  # RS384, system/*.cruds
EC_CLIENT = "kela"  # ES384, partner scopes (CarePlan.rs, Task.rus, …)


def demo_key(client_id: str) -> tuple[Any, str]:
    return load_demo_key(ORGANISATIONS_DIR, client_id)


def assertion(client_id: str = EC_CLIENT, token_url: str = TOKEN_URL, **claims: Any) -> str:
    """A valid assertion; keyword arguments override claims (None drops one)."""
    key, alg = demo_key(client_id)
    return client_assertion(key, alg, client_id, token_url, claims=claims)


def form(assertion_text: str, scope: str = "system/CarePlan.rs", **extra: str) -> dict[str, str]:
    return {
        "grant_type": GRANT_TYPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion_text,
        "scope": scope,
        **extra,
    }


def token(client: TestClient, client_id: str = EC_CLIENT, scope: str = "system/CarePlan.rs") -> str:
    r = client.post("/auth/token", data=form(assertion(client_id), scope))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])
