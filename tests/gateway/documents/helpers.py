"""What the document tests share: the demo directory loaded, CDA documents made from the demo
plans by the real adapter (adapters.cda.convert.from_fhir) or read from samples/cda/, and a
snapshot of every stored version to prove that a second import changes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from adapters.cda.convert import from_fhir
from gateway.fhir_api.context import Services
from gateway.samples import SAMPLES_DIR, load_file

ROOT = Path(__file__).resolve().parents[3]
CDA_SAMPLES = ROOT / "samples" / "cda"
XML = {"Content-Type": "application/xml"}
SOTE_OID = "urn:oid:1.2.246.537.6.202.2008"
# The custodian organisation's <id .../> element (root, perhaps an extension).
_CUSTODIAN = re.compile(
    rb"(<custodian>.*?<representedCustodianOrganization>\s*)<id\b[^>]*?\broot=\"([0-9.]+)\"[^>]*/>",
    re.S,
)


def load_network(services: Services) -> None:
    """The demo directory (organisations, professionals), no client data."""
    load_file(services, SAMPLES_DIR / "00-network.json")


def sample_bundle(name: str) -> list[dict[str, Any]]:
    bundle = json.loads((SAMPLES_DIR / name).read_text("utf-8"))
    return [e["resource"] for e in bundle["entry"]]


def directory(rtype: str, id: str) -> dict[str, Any]:
    for resource in sample_bundle("00-network.json"):
        if (resource["resourceType"], resource["id"]) == (rtype, id):
            return resource
    raise KeyError(f"{rtype}/{id}")


def oid_of(org_id: str) -> str:
    org = directory("Organization", org_id)
    return next(i["value"] for i in org["identifier"] if i["system"] == SOTE_OID)


def exported(plan_bundle: str, author_org: str, kind: str = "hosu") -> bytes:
    """A CDA document of a demo plan (its bundle with the directory), written by the adapter."""
    resources = sample_bundle("00-network.json") + sample_bundle(plan_bundle)
    org = directory("Organization", author_org)
    return from_fhir(resources, kind, author_org=org, now="2026-11-20T10:00:00+02:00")


def with_custodian(data: bytes, oid: str) -> bytes:
    """The document with its custodian organisation's id root replaced by `oid`."""
    new = b'<id root="' + oid.encode() + b'"/>'
    out, n = _CUSTODIAN.subn(lambda m: m.group(1) + new, data, count=1)
    assert n == 1, "no custodian organisation id found"
    return out


def custodian_of(data: bytes) -> str:
    found = _CUSTODIAN.search(data)
    assert found is not None
    return found.group(2).decode()


def versions(services: Services) -> dict[tuple[str, str], int]:
    """Every stored resource and its current version (AuditEvents aside: reads add those)."""
    with services.repo.reader() as session:
        rows = session.query(
            "SELECT res_type, res_id, version FROM resources WHERE res_type <> ?",
            ("AuditEvent",),
        )
    return {(str(t), str(i)): int(v) for t, i, v in rows}
