"""Upstream files: read at start; anything malformed stops the gateway with the file and field
named, never a half-read upstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.delivery.upstreams import UpstreamError, load_upstreams
from gateway.security.demo import demo_key_path
from gateway.settings import ORGANISATIONS_DIR
from tests.gateway.delivery.upstream_files import SECRET, write_upstream

A = "https://a.example/fhir/"
KELA_KEY = demo_key_path(ORGANISATIONS_DIR, "kela")


def test_an_upstream_is_read_with_its_key(tmp_path: Path) -> None:
    write_upstream(tmp_path, A)
    a = load_upstreams(tmp_path)["a"]
    assert (a.base, a.client_id, a.organization, a.alg) == (
        "https://a.example/fhir",
        "kela",
        "org-kela",
        "ES384",
    )
    assert a.key.kid == "kela-demo-1"
    assert a.accepts(SECRET) and not a.accepts(SECRET + "x")


def test_no_directory_no_upstreams() -> None:
    assert load_upstreams(None) == {}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"name": "A/B"}, "name"),
        ({"base": "http://a.example/fhir"}, "https"),
        ({"base": "https://user@a.example/fhir"}, "base"),
        ({"organization": "org kela"}, "organization"),
        ({"secret_sha256": "secret"}, "secret_sha256"),
        ({"client_id": ""}, "client_id"),
        ({"key": "missing.json"}, "missing.json"),
    ],
)
def test_malformed_files_stop_the_start(tmp_path: Path, change: dict, named: str) -> None:
    path = write_upstream(tmp_path, A)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, **change}))
    with pytest.raises(UpstreamError, match=named) as refused:
        load_upstreams(tmp_path)
    assert "a.json" in str(refused.value)


def test_a_public_key_is_refused(tmp_path: Path) -> None:
    public = {k: v for k, v in json.loads(KELA_KEY.read_text()).items() if k != "d"}
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "public.json").write_text(json.dumps(public))
    write_upstream(tmp_path, A, key="keys/public.json")
    with pytest.raises(UpstreamError, match="private"):
        load_upstreams(tmp_path)


def test_two_files_one_name_is_refused(tmp_path: Path) -> None:
    write_upstream(tmp_path, A)
    (tmp_path / "b.json").write_text((tmp_path / "a.json").read_text())
    with pytest.raises(UpstreamError, match="twice"):
        load_upstreams(tmp_path)
