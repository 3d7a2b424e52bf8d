"""Bearer tokens for in-process tests: minted directly with the app's own token key (no round
trip through /auth/token, so tests stay fast), for any demo organisation of
samples/organisations/ and any scopes within its registration.

    token_for(services, "kela")                       # kela's registered scopes
    token_for(services, "kela", "system/CarePlan.rs") # fewer scopes
    auth_headers(services, "sote-keskus", acting_role="role-terveydenhoitaja")

`ActingClient` sends through the shared TestClient (same app, same stores) as another
organisation, or as nobody (`headers=None`). The fixtures in tests/conftest.py wrap these.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from fastapi.testclient import TestClient

from gateway.fhir_api.context import Services
from gateway.security import tokens
from gateway.security.caller import Caller
from gateway.security.scopes import parse_scopes, within

DEFAULT_CLIENT = "sote-keskus"  # org-sote-keskus, system/*.cruds: every test acts as it
TEST_TOKEN_LIFETIME_S = tokens.MAX_LIFETIME_S  # 300 s: the most the gateway ever issues
ACTING_ROLE_HEADER = "X-Acting-Practitioner-Role"


def token_for(
    services: Services,
    client_id: str = DEFAULT_CLIENT,
    scope: str | None = None,
    lifetime_s: int = TEST_TOKEN_LIFETIME_S,
) -> str:
    """An access token the app accepts, for a registered client_id or Organization id; `scope`
    (space-separated) must lie within the registration, as at the token endpoint."""
    authority = services.security
    assert authority is not None, "the services have no Authority"
    org = authority.registry.find(client_id)
    if org is None:
        raise ValueError(f"'{client_id}' is not a registered organisation")
    text = scope if scope is not None else " ".join(org.scope_text)
    requested = parse_scopes(text)
    beyond = [s for s in requested if not within(s, org.scopes)]
    if beyond:
        raise ValueError(f"{beyond} is beyond the registration of '{org.client_id}'")
    caller = Caller(org.organization, org.client_id, requested)
    return tokens.issue(authority.key, caller, text, lifetime_s, time.time())


def bearer(token: str, acting_role: str | None = None, **more: str) -> dict[str, str]:
    """Request headers carrying `token` (and the acting PractitionerRole, when given)."""
    headers = {"Authorization": f"Bearer {token}", **more}
    if acting_role is not None:
        headers[ACTING_ROLE_HEADER] = acting_role
    return headers


def auth_headers(
    services: Services,
    client_id: str = DEFAULT_CLIENT,
    scope: str | None = None,
    acting_role: str | None = None,
) -> dict[str, str]:
    return bearer(token_for(services, client_id, scope), acting_role)


class ActingClient:
    """The shared TestClient acting as someone else: `headers` are laid over the client's
    default headers on every request (a header the test passes itself still wins); with
    `headers=None` the default Authorization header is left out (an anonymous caller).

    It sends through the same TestClient, so the app, its stores and its event loop are
    shared; it supports get/head/options/post/put/patch/delete/request with httpx's keywords.
    """

    def __init__(self, client: TestClient, headers: dict[str, str] | None) -> None:
        self.client = client
        self.acting_headers = headers

    @property
    def headers(self) -> httpx.Headers:
        merged = httpx.Headers(self.client.headers)
        if self.acting_headers is None:
            merged.pop("authorization", None)
        else:
            merged.update(self.acting_headers)
        return merged

    @property
    def app(self) -> Any:
        return self.client.app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        send = {k: kwargs.pop(k) for k in ("follow_redirects", "auth") if k in kwargs}
        given = httpx.Headers(kwargs.pop("headers", None) or {})
        headers = httpx.Headers(self.acting_headers or {})
        headers.update(given)
        req = self.client.build_request(method, url, headers=headers, **kwargs)
        if self.acting_headers is None and "authorization" not in given:
            req.headers.pop("authorization", None)
        return self.client.send(req, **send)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)
