"""The organisation registry: the demo organisations load; a bad registration stops the start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.samples import SAMPLES_DIR
from gateway.security.demo import demo_key_path
from gateway.security.registry import RegistrationError, load_registry
from gateway.settings import ORGANISATIONS_DIR


def test_every_sample_organisation_is_registered_with_a_demo_key() -> None:
    network = json.loads((SAMPLES_DIR / "00-network.json").read_text())
    ids = {
        e["resource"]["id"]
        for e in network["entry"]
        if e["resource"]["resourceType"] == "Organization"
    }
    registry = load_registry(ORGANISATIONS_DIR)
    assert {o.organization for o in registry.by_client.values()} == ids
    for org in registry.by_client.values():
        assert demo_key_path(ORGANISATIONS_DIR, org.client_id).exists()
        assert registry.find(org.organization) is org
        assert all("d" not in k for k in org.jwks)  # registrations hold public keys only


GOOD = {
    "organization": "org-x",
    "client_id": "x",
    "scopes": ["system/Task.rs"],
    "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "kid": "k"}]},
}


@pytest.mark.parametrize(
    "change",
    [
        {"jwks_url": "https://keys.example/jwks"},  # both inline and URL
        {"jwks": None},  # neither (None drops the key)
        {"scopes": ["patient/*.read"]},
        {"organization": "not an id!"},
        {"jwks": {"keys": [{"kty": "oct", "k": "secret", "kid": "k"}]}},  # private material
        {"jku": ["http://keys.example/jwks"]},  # not TLS
    ],
)
def test_bad_registration(tmp_path: Path, change: dict) -> None:
    doc = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(RegistrationError):
        load_registry(tmp_path)


def test_duplicate_client_id(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps(GOOD))
    with pytest.raises(RegistrationError, match="twice"):
        load_registry(tmp_path)
