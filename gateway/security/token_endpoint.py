"""POST /auth/token: the SMART Backend Services client_credentials grant with a private_key_jwt
client assertion (https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token).

Framework-free: form pairs in, the token response (or an `OAuthError`) out. No refresh tokens.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.security.assertion import verify_assertion
from gateway.security.authority import Authority
from gateway.security.caller import Caller
from gateway.security.oauth import OAuthError, invalid_client, invalid_request
from gateway.security.replay import first_use
from gateway.security.scopes import ScopeError, parse_scopes, within
from gateway.security.tokens import issue
from gateway.storage.base import Repository

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FIELDS = ("grant_type", "client_assertion_type", "client_assertion", "scope", "client_id")


def token_response(
    authority: Authority, repo: Repository, pairs: list[tuple[str, str]], token_url: str
) -> dict[str, Any]:
    form = _form(pairs)
    if form.get("grant_type") != GRANT_TYPE:
        if "grant_type" not in form:
            raise invalid_request("grant_type is required")
        raise OAuthError("unsupported_grant_type", f"only {GRANT_TYPE} is supported")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise invalid_request(f"client_assertion_type must be {ASSERTION_TYPE}")
    if not form.get("client_assertion"):
        raise invalid_request("client_assertion is required")
    if not form.get("scope", "").strip():
        raise OAuthError("invalid_scope", "scope is required")
    now = time.time()
    found = verify_assertion(
        form["client_assertion"], authority.registry, authority.jwks, token_url, now
    )
    org = found.org
    if form.get("client_id", org.client_id) != org.client_id:
        raise invalid_client("client_id does not match the assertion's issuer")
    granted = _granted(form["scope"], org.scopes)
    if not first_use(repo, org.client_id, found.jti, found.exp):
        raise invalid_client("this assertion (jti) has already been used")
    caller = Caller(org.organization, org.client_id, parse_scopes(granted))
    lifetime = min(authority.settings.token_lifetime_s, 300)
    return {
        "access_token": issue(authority.key, caller, granted, lifetime, now),
        "token_type": "bearer",
        "expires_in": lifetime,
        "scope": granted,
    }


def _form(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """RFC 6749 section 3.2: parameters sent without a value are treated as omitted, and no
    parameter may be repeated."""
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form and name in FIELDS:
            raise invalid_request(f"{name} is given more than once")
        if value != "":
            form[name] = value
    return form


def _granted(text: str, registered: tuple[Any, ...]) -> str:
    """The requested scopes, each within the registration; otherwise invalid_scope."""
    try:
        requested = parse_scopes(text)
    except ScopeError as e:
        raise OAuthError("invalid_scope", str(e)) from None
    for part, scope in zip(text.split(), requested, strict=True):
        if not within(scope, registered):
            raise OAuthError("invalid_scope", f"'{part}' is beyond this client's registration")
    return " ".join(dict.fromkeys(text.split()))
