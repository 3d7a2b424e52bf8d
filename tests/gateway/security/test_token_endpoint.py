"""POST /auth/token over HTTP on both stores: the SMART Backend Services grant, and every check
a JOSE library leaves to the server, each refused with an RFC 6749 error (never a 500)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from gateway.security.tokens import MAX_LIFETIME_S
from tests.gateway.security.helpers import (
    EC_CLIENT,
    RSA_CLIENT,
    TOKEN_URL,
    assertion,
    demo_key,
    form,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(client_id: str = EC_CLIENT) -> dict:
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 60,
        "iat": now,
        "jti": f"j-{time.time_ns()}",
    }


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def refused(client: TestClient, data: dict, error: str = "invalid_client") -> str:
    r = client.post("/auth/token", data=data)
    assert r.status_code == (401 if error == "invalid_client" else 400), r.text
    body = r.json()
    assert body["error"] == error and "access_token" not in body
    assert r.headers["cache-control"] == "no-store"
    return str(body["error_description"])


# -- accepted ---------------------------------------------------------------------------------
@pytest.mark.parametrize("client_id", [RSA_CLIENT, EC_CLIENT])  # RS384 and ES384
def test_token_for_a_valid_assertion(client: TestClient, client_id: str) -> None:
    r = client.post("/auth/token", data=form(assertion(client_id), "system/CarePlan.rs"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= MAX_LIFETIME_S
    assert body["scope"] == "system/CarePlan.rs"
    assert "refresh_token" not in body  # SMART Backend Services: no refresh tokens
    assert r.headers["cache-control"] == "no-store"


def test_v1_scope_within_a_v2_registration(client: TestClient) -> None:
    r = client.post("/auth/token", data=form(assertion(), "system/CarePlan.read system/Task.rs"))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "system/CarePlan.read system/Task.rs"


def test_aud_as_a_list_holding_our_url_and_a_past_nbf(client: TestClient) -> None:
    text = assertion(aud=["https://other.example/token", TOKEN_URL], nbf=int(time.time()) - 5)
    assert client.post("/auth/token", data=form(text)).status_code == 200


def test_smart_configuration(client: TestClient) -> None:
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        conf = client.get(path).json()
        assert conf["token_endpoint"] == TOKEN_URL  # absolute
        assert conf["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert conf["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
        assert conf["grant_types_supported"] == ["client_credentials"]
        assert conf["capabilities"] == ["client-confidential-asymmetric"]
        assert "system/CarePlan.cruds" in conf["scopes_supported"]


# -- replay, lifetime and required claims -------------------------------------------------
def test_an_assertion_is_used_once(client: TestClient) -> None:
    data = form(assertion())
    assert client.post("/auth/token", data=data).status_code == 200
    assert "already been used" in refused(client, data)


def test_the_same_jti_from_two_clients_is_not_a_replay(client: TestClient) -> None:
    shared = f"shared-{time.time_ns()}"
    for client_id in (RSA_CLIENT, EC_CLIENT):
        r = client.post("/auth/token", data=form(assertion(client_id, jti=shared)))
        assert r.status_code == 200, r.text


def test_exp_more_than_five_minutes_ahead(client: TestClient) -> None:
    text = assertion(exp=int(time.time()) + MAX_LIFETIME_S + 60)
    assert "five minutes" in refused(client, form(text))


def test_expired_assertion(client: TestClient) -> None:
    now = int(time.time())
    assert "expired" in refused(client, form(assertion(exp=now - 60, iat=now - 120)))


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "aud", "iss", "sub"])
def test_missing_claim(client: TestClient, claim: str) -> None:
    assert claim in refused(client, form(assertion(**{claim: None})))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["soon", True, [1], float("inf"), float("nan")])
def test_times_must_be_numbers(client: TestClient, claim: str, value: object) -> None:
    assert "NumericDate" in refused(client, form(assertion(**{claim: value})))


def test_huge_exp(client: TestClient) -> None:
    assert "five minutes" in refused(client, form(assertion(exp=10**400)))


def test_future_nbf(client: TestClient) -> None:
    assert "nbf" in refused(client, form(assertion(nbf=int(time.time()) + 120)))


def test_future_iat(client: TestClient) -> None:
    assert "iat" in refused(client, form(assertion(iat=int(time.time()) + 120)))


# -- who is asking ----------------------------------------------------------------------------
def test_iss_differs_from_sub(client: TestClient) -> None:
    assert "iss and sub" in refused(client, form(assertion(sub=RSA_CLIENT)))


def test_unknown_issuer(client: TestClient) -> None:
    text = assertion(iss="nobody", sub="nobody")
    assert "not a registered client" in refused(client, form(text))


def test_client_id_parameter_must_match(client: TestClient) -> None:
    refused(client, form(assertion(), client_id=RSA_CLIENT))


def test_wrong_aud(client: TestClient) -> None:
    text = assertion(aud="https://other.example/auth/token")
    assert "aud" in refused(client, form(text))


# -- keys and algorithms ----------------------------------------------------------------------
def test_kid_matching_no_key(client: TestClient) -> None:
    key, alg = demo_key(EC_CLIENT)
    text = jwt.encode({"alg": alg, "kid": "unknown-kid"}, _claims(), key, algorithms=[alg])
    assert "kid" in refused(client, form(text))


def test_missing_kid(client: TestClient) -> None:
    key, alg = demo_key(EC_CLIENT)
    text = jwt.encode({"alg": alg}, _claims(), key, algorithms=[alg])
    assert "kid" in refused(client, form(text))


def test_signature_by_another_key_with_the_registered_kid(client: TestClient) -> None:
    key = ECKey.generate_key("P-384")
    text = jwt.encode({"alg": "ES384", "kid": "kela-demo-1"}, _claims(), key, algorithms=["ES384"])
    assert "signature" in refused(client, form(text))


def test_key_type_not_fitting_alg(client: TestClient) -> None:
    # ES384 named, but the kid is the registered RSA key of sote-keskus.
    key = ECKey.generate_key("P-384")
    header = {"alg": "ES384", "kid": "sote-keskus-demo-1"}
    text = jwt.encode(header, _claims(RSA_CLIENT), key, algorithms=["ES384"])
    assert "not a EC key" in refused(client, form(text))


def test_rs256_is_not_accepted(client: TestClient) -> None:
    demo, _ = demo_key(RSA_CLIENT)
    key = RSAKey.import_key({k: v for k, v in demo.as_dict(private=True).items() if k != "alg"})
    header = {"alg": "RS256", "kid": demo.kid}
    text = jwt.encode(header, _claims(RSA_CLIENT), key, algorithms=["RS256"])
    assert "RS384 or ES384" in refused(client, form(text))


def test_alg_none(client: TestClient) -> None:
    text = _unsigned({"alg": "none", "kid": "kela-demo-1"}, _claims()) + "."
    assert "RS384 or ES384" in refused(client, form(text))


@pytest.mark.parametrize("alg", [["ES384"], {"a": 1}, 384, "ES384 "])
def test_alg_of_another_shape(client: TestClient, alg: object) -> None:
    text = _unsigned({"alg": alg, "kid": "kela-demo-1"}, _claims()) + "." + _b64(b"sig")
    refused(client, form(text))


@pytest.mark.parametrize("kid", [["kela-demo-1"], 1, {"k": 1}])
def test_kid_of_another_shape(client: TestClient, kid: object) -> None:
    text = _unsigned({"alg": "ES384", "kid": kid}, _claims()) + "." + _b64(b"sig")
    refused(client, form(text))


@pytest.mark.parametrize("claims", [{"iss": ["kela"], "sub": ["kela"]}, {"jti": 5}, {"aud": 1}])
def test_claims_of_another_shape(client: TestClient, claims: dict) -> None:
    refused(client, form(assertion(**claims)))


def test_hs384_signed_with_the_public_key_as_secret(client: TestClient) -> None:
    key, _ = demo_key(RSA_CLIENT)
    public_pem = RSAKey.import_key(key.as_dict(private=False)).as_pem(private=False)
    signing_input = _unsigned({"alg": "HS384", "kid": key.kid}, _claims(RSA_CLIENT))
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha384).digest()
    assert "RS384 or ES384" in refused(client, form(f"{signing_input}.{_b64(mac)}"))


def test_unregistered_jku(client: TestClient) -> None:
    key, alg = demo_key(EC_CLIENT)
    header = {"alg": alg, "kid": key.kid, "jku": "https://attacker.example/jwks.json"}
    text = jwt.encode(header, _claims(), key, algorithms=[alg])
    assert "jku" in refused(client, form(text))


def test_critical_header(client: TestClient) -> None:
    key, alg = demo_key(EC_CLIENT)
    header = {"alg": alg, "kid": key.kid, "crit": ["x-unknown"], "x-unknown": 1}
    text = _unsigned(header, _claims()) + "." + _b64(b"sig")
    refused(client, form(text))


@pytest.mark.parametrize(
    "text", ["", "abc", "a.b.c", "e30.e30.", "\u00e9.\u00e9.\u00e9", "x" * 20_000, "W10.W10.W10"]
)
def test_malformed_assertions_are_invalid_client_or_request(client: TestClient, text: str) -> None:
    r = client.post("/auth/token", data=form(text))
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] in ("invalid_client", "invalid_request")


# -- scopes -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "scope",
    [
        "system/CarePlan.cruds",  # kela may only read and search plans
        "system/*.rs",  # no wildcard registered
        "system/Task.cruds",  # no create or delete of Tasks
    ],
)
def test_scope_beyond_registration(client: TestClient, scope: str) -> None:
    assert "beyond" in refused(client, form(assertion(), scope), "invalid_scope")


@pytest.mark.parametrize(
    "scope",
    ["", "patient/CarePlan.rs", "system/CarePlan.sr", "system/Nope.rs", "system/Task.rs?x=1"],
)
def test_unsupported_scope(client: TestClient, scope: str) -> None:
    refused(client, form(assertion(), scope), "invalid_scope")


def test_a_refused_scope_does_not_use_up_the_assertion(client: TestClient) -> None:
    text = assertion()
    refused(client, form(text, "system/CarePlan.cruds"), "invalid_scope")
    assert client.post("/auth/token", data=form(text)).status_code == 200


# -- the request itself -----------------------------------------------------------------------
def test_unsupported_grant_type(client: TestClient) -> None:
    refused(client, {**form(assertion()), "grant_type": "password"}, "unsupported_grant_type")


def test_missing_grant_type(client: TestClient) -> None:
    data = form(assertion())
    del data["grant_type"]
    refused(client, data, "invalid_request")


def test_wrong_assertion_type(client: TestClient) -> None:
    refused(client, {**form(assertion()), "client_assertion_type": "x"}, "invalid_request")


def test_repeated_parameter(client: TestClient) -> None:
    body = "&".join(f"{k}={v}" for k, v in form(assertion()).items()) + "&scope=system/Task.rs"
    r = client.post(
        "/auth/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_json_body_is_refused(client: TestClient) -> None:
    r = client.post("/auth/token", json=form(assertion()))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_no_assertion_content_in_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    text = assertion(aud="https://other.example/")
    with caplog.at_level(logging.DEBUG):
        refused(client, form(text))
        refused(client, form(text[:-5]))
    assert text[:40] not in caplog.text and text.split(".")[1][:20] not in caplog.text
