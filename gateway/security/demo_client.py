"""What `plan-gateway token` does: sign an assertion with a demo organisation's key and trade it
for an access token, at a running gateway's token endpoint or in-process against a database
(the same checks either way). Prints nothing itself; never used with real keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.security.authority import token_url
from gateway.security.demo import client_assertion, load_demo_key
from gateway.security.oauth import OAuthError
from gateway.security.outbound import FetchError, get_json, post_form
from gateway.security.registry import Organisation, load_registry
from gateway.security.token_endpoint import ASSERTION_TYPE, GRANT_TYPE, token_response
from gateway.settings import Settings

# The root `plan-gateway serve` listens on by default; the `aud` of an in-process request.
OFFLINE_ROOT = "http://127.0.0.1:8080"


class TokenFailed(Exception):
    """No token: the message says why (an OAuth error code and description, or the transport)."""


def _form(settings: Settings, name: str, scopes: Sequence[str], url: str) -> dict[str, str]:
    org = _organisation(settings, name)
    try:
        key, alg = load_demo_key(settings.organisations_dir, org.client_id)
    except (OSError, ValueError, KeyError):
        raise TokenFailed(f"'{name}' has no usable demo key") from None
    return {
        "grant_type": GRANT_TYPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(key, alg, org.client_id, url),
        "scope": " ".join(scopes or org.scope_text),
    }


def _organisation(settings: Settings, name: str) -> Organisation:
    org = load_registry(settings.organisations_dir).find(name)
    if org is None:
        raise TokenFailed(f"'{name}' is not a registered organisation")
    return org


def local_token(settings: Settings, name: str, scopes: Sequence[str]) -> str:
    from gateway.app import build_services

    url = token_url(settings, OFFLINE_ROOT)
    form = _form(settings, name, scopes, url)
    svc = build_services(settings)
    try:
        assert svc.security is not None
        body = token_response(svc.security, svc.repo, list(form.items()), url)
    except OAuthError as err:
        raise TokenFailed(f"{err.error}: {err.description}") from None
    finally:
        svc.repo.close()
    return str(body["access_token"])


def remote_token(settings: Settings, name: str, scopes: Sequence[str], base_url: str) -> str:
    try:
        conf = get_json(base_url.rstrip("/") + "/.well-known/smart-configuration")
        url = str(conf["token_endpoint"])
        status, body = post_form(url, _form(settings, name, scopes, url))
    except (FetchError, KeyError, TypeError) as e:
        raise TokenFailed(f"the gateway at {base_url} did not answer as expected: {e}") from None
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error", "error") if isinstance(body, dict) else "error"
        detail = body.get("error_description", "") if isinstance(body, dict) else ""
        raise TokenFailed(f"{error} (HTTP {status}): {detail}")
    return str(body["access_token"])
