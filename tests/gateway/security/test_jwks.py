"""Registered keys beyond the samples: a JWKS fetched from the organisation's URL (respx: the far
side is the partner's key server), cached and refetched on rotation; a registered jku; several
keys with one kid; keys unfit for the algorithm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey, RSAKey

from gateway.app import build_services, create_app
from gateway.security.demo import client_assertion
from gateway.settings import Settings
from tests.gateway.security.helpers import TOKEN_URL, form

JWKS_URL = "https://keys.partner.example/jwks.json"
JKU = "https://keys.partner.example/rotating.json"


def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": kid})


def jwks(*keys: Any) -> dict:
    return {"keys": [k.as_dict(private=False) for k in keys]}


@contextmanager
def gateway(database_url: str, tmp_path: Path, **registration: Any) -> Iterator[TestClient]:
    orgs = tmp_path / "orgs"
    orgs.mkdir(exist_ok=True)
    doc = {"organization": "org-partner", "client_id": "partner", "scopes": ["system/Task.rs"]}
    (orgs / "partner.json").write_text(json.dumps({**doc, **registration}))
    settings = Settings(
        database_url=database_url,
        organisations_dir=str(orgs),
        token_key_file=str(tmp_path / "key.json"),
    )
    svc = build_services(settings)
    try:
        with TestClient(create_app(settings, svc)) as client:
            yield client
    finally:
        svc.repo.close()


def ask(client: TestClient, key: Any, alg: str = "ES384", **header: Any) -> httpx.Response:
    text = client_assertion(key, alg, "partner", TOKEN_URL, header=header or None)
    return client.post("/auth/token", data=form(text, "system/Task.rs"))


def test_jwks_url_is_fetched_once_and_cached(database_url: str, tmp_path: Path) -> None:
    key = ec_key("k1")
    with (
        respx.mock(assert_all_called=False) as mock,
        gateway(database_url, tmp_path, jwks_url=JWKS_URL) as client,
    ):
        route = mock.get(JWKS_URL).respond(json=jwks(key))
        assert ask(client, key).status_code == 200
        assert ask(client, key).status_code == 200
        assert route.call_count == 1


def test_rotated_key_is_found_by_refetching(database_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("gateway.security.jwks.REFRESH_MIN_S", 0.0)
    old, new = ec_key("old"), ec_key("new")
    with respx.mock() as mock, gateway(database_url, tmp_path, jwks_url=JWKS_URL) as client:
        route = mock.get(JWKS_URL)
        route.side_effect = [
            httpx.Response(200, json=jwks(old)),
            httpx.Response(200, json=jwks(new)),
        ]
        assert ask(client, old).status_code == 200
        assert ask(client, new).status_code == 200
        assert route.call_count == 2


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(500), httpx.Response(200, text="<html>"), httpx.Response(200, json=[1])],
)
def test_unusable_jwks_url_is_invalid_client(
    database_url: str, tmp_path: Path, answer: httpx.Response
) -> None:
    with respx.mock() as mock, gateway(database_url, tmp_path, jwks_url=JWKS_URL) as client:
        mock.get(JWKS_URL).mock(return_value=answer)
        r = ask(client, ec_key("k1"))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_unreachable_jwks_url_is_invalid_client(database_url: str, tmp_path: Path) -> None:
    with respx.mock() as mock, gateway(database_url, tmp_path, jwks_url=JWKS_URL) as client:
        mock.get(JWKS_URL).mock(side_effect=httpx.ConnectTimeout("slow"))
        r = ask(client, ec_key("k1"))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_registered_jku_is_used(database_url: str, tmp_path: Path) -> None:
    inline, rotating = ec_key("inline"), ec_key("rotating")
    with (
        respx.mock() as mock,
        gateway(database_url, tmp_path, jwks=jwks(inline), jku=[JKU]) as client,
    ):
        mock.get(JKU).respond(json=jwks(rotating))
        assert ask(client, rotating, jku=JKU).status_code == 200
        assert ask(client, inline).status_code == 200


def test_unregistered_jku_is_never_fetched(database_url: str, tmp_path: Path) -> None:
    key = ec_key("k1")
    with (
        respx.mock(assert_all_called=False) as mock,
        gateway(database_url, tmp_path, jwks=jwks(key), jku=[JKU]) as client,
    ):
        evil = mock.get("https://attacker.example/jwks.json").respond(json=jwks(key))
        r = ask(client, key, jku="https://attacker.example/jwks.json")
        assert r.status_code == 401 and "jku" in r.json()["error_description"]
        assert not evil.called


def test_several_keys_with_the_kid(database_url: str, tmp_path: Path) -> None:
    one, two = ec_key("same"), ec_key("same")
    with gateway(database_url, tmp_path, jwks=jwks(one, two)) as client:
        r = ask(client, one)
        assert r.status_code == 401 and "several" in r.json()["error_description"]


@pytest.mark.parametrize(
    "registered",
    [
        {"alg": "ES256"},  # registered for another algorithm
        {"use": "enc"},
        {"key_ops": ["encrypt"]},
        {"crv": "P-256"},  # wrong curve for ES384 (the key then does not fit)
    ],
)
def test_key_registered_for_another_use(
    database_url: str, tmp_path: Path, registered: dict
) -> None:
    key = ec_key("k1")
    public = {**key.as_dict(private=False), **registered}
    with gateway(database_url, tmp_path, jwks={"keys": [public]}) as client:
        r = ask(client, key)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_short_rsa_key(database_url: str, tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = RSAKey.generate_key(1024, parameters={"kid": "short"})
    with gateway(database_url, tmp_path, jwks=jwks(key)) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = ask(client, key, alg="RS384")
        assert r.status_code == 401 and "2048" in r.json()["error_description"]
