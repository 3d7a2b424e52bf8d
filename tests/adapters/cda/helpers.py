"""Shared pieces of the CDA adapter tests: the sample plans as FHIR, the samples as CDA, and
invariant checks every imported bundle must pass (STYLE habit 10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.ids import EXAMPLE_KEY, Ids
from gateway.validation.validator import Validator

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples" / "cda"
BUNDLES = ROOT / "samples" / "bundles"
IDS = Ids(EXAMPLE_KEY)
NOW = "2026-11-22T10:00:00+02:00"
# sample CDA document -> (FHIR client bundle, kind, exporting organisation)
EXPORTED = {
    "hosu-aino.xml": ("10-client-aino", "hosu", "org-tyokykytiimi"),
    "hosu-mikko.xml": ("11-client-mikko", "hosu", "org-sote-keskus"),
    "social-plan-laura.xml": ("12-client-laura", "social-plan", "org-sosiaalipalvelut"),
}


def network() -> list[dict[str, Any]]:
    return [e["resource"] for e in json.loads((BUNDLES / "00-network.json").read_text())["entry"]]


def client(name: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in json.loads((BUNDLES / f"{name}.json").read_text())["entry"]]


def organisation(org_id: str) -> dict[str, Any]:
    return next(r for r in network() if r["id"] == org_id)


def check_invariants(bundle: dict[str, Any], *, profiles: bool = True) -> None:
    """ids unique, every urn:uuid reference resolves inside the bundle, each entry validates
    against the gateway's structure rules and our profiles (unless `profiles` is False),
    requests are idempotent."""
    entries = bundle["entry"]
    urls = [e["fullUrl"] for e in entries]
    assert len(urls) == len(set(urls))
    for entry in entries:
        resource, request = entry["resource"], entry["request"]
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        for ref in _references(resource):
            if ref.startswith("urn:uuid:"):
                assert ref in urls, ref
        if request["method"] == "PUT":
            assert request["url"] == f"{resource['resourceType']}/{resource['id']}"
        else:
            # conditional creates only: on a national identifier, or a role on its practitioner
            # and organisation (both conditional creates themselves)
            assert request["method"] == "POST"
            assert request["ifNoneExist"].startswith(("identifier=", "practitioner=urn:uuid:"))
        if profiles:
            expect = resource["id"] if request["method"] == "PUT" else None
            Validator().validate_resource(resource, expect_id=expect)


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []
