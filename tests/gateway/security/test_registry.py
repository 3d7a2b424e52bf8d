"""The organisation registry: the demo organisations load; a bad registration stops the start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.samples import SAMPLES_DIR
from gateway.security.demo import demo_key_path
from gateway.security.registry import RegistrationError, load_registry
from gateway.settings import ORGANISATIONS_DIR


def _organisations(network: Path) -> set[str]:
    bundle = json.loads(network.read_text())
    return {
        e["resource"]["id"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Organization"
    }


def test_every_sample_organisation_is_registered_with_a_demo_key() -> None:
    # Every organisation of the sample network acts with a demo key; every registration names an
    # organisation of the samples (the network or a journey's network).
    ids = _organisations(SAMPLES_DIR / "00-network.json")
    journeys = SAMPLES_DIR.parent / "journeys"
    known = ids.union(*(_organisations(p) for p in journeys.glob("*/bundles/00-network.json")))
    registry = load_registry(ORGANISATIONS_DIR)
    registered = {o.organization for o in registry.by_client.values()}
    assert ids <= registered
    assert registered <= known
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
