"""Every message of samples/hl7v2/ sent, in file order, through the intake pipeline to a gateway
holding the sample network: its ACK code and what it wrote (every resource version it made, but
AuditEvents) against a golden file (tests/gateway/intake/goldens/<sample>.json). Volatile fields
(times of the run, meta) are removed by path; ids minted at random by the gateway (Provenance)
are replaced by their order of appearance. Goldens are rewritten only with UPDATE_GOLDENS=1.

Invariants checked for every sample besides the golden: every message is answered AA, every
reference a written resource makes resolves to a stored resource, and sending the whole series
again changes nothing (each MSH-10 is answered from the message log).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.ids import EXAMPLE_KEY, Ids
from gateway.fhir_api.context import Services
from gateway.intake.hl7v2 import handle
from gateway.samples import load_samples
from tests.gateway.intake.acks import code
from tests.gateway.intake.conftest import SAMPLES, sample

GOLDENS = Path(__file__).parent / "goldens"
ORDER = [p.stem for p in sorted(SAMPLES.glob("*.hl7"))]
# fields whose value is the time of the run (or server bookkeeping), by resource type
VOLATILE = {
    "*": ("meta",),
    "Provenance": ("recorded", "occurredDateTime"),
    "Task": ("authoredOn", "lastModified"),
    "ServiceRequest": ("authoredOn",),
    "CarePlan": ("created",),
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _history(svc: Services) -> set[tuple[str, str, int]]:
    with svc.repo.reader() as session:
        rows = session.query(
            "SELECT res_type, res_id, version FROM history WHERE res_type <> 'AuditEvent'"
        )
    return {(t, i, int(v)) for t, i, v in rows}


def _written(svc: Services, keys: set[tuple[str, str, int]]) -> list[dict[str, Any]]:
    out = []
    with svc.repo.reader() as session:
        for rtype, rid, version in sorted(keys):
            sv = session.version(rtype, rid, version)
            assert sv is not None
            out.append(orjson.loads(sv.body) if not sv.deleted else {"deleted": f"{rtype}/{rid}"})
    return out


def _stable(resources: list[dict[str, Any]], fixed: set[str]) -> list[dict[str, Any]]:
    """Volatile fields removed; uuids not derived from the sample (`fixed`) numbered."""
    for resource in resources:
        for name in VOLATILE["*"] + VOLATILE.get(resource.get("resourceType", ""), ()):
            resource.pop(name, None)
    text = orjson.dumps(resources, option=orjson.OPT_SORT_KEYS).decode()
    seen: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        value = match.group(0)
        if value in fixed:
            return value
        return seen.setdefault(value, f"minted-{len(seen) + 1}")

    return orjson.loads(_UUID.sub(number, text))


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def _resolves(svc: Services, reference: str) -> bool:
    if reference.startswith("#") or "/" not in reference:
        return reference.startswith("#")
    reference = reference.split("/_history/")[0]  # a Provenance names versions
    rtype, rid = reference.split("/")[-2:]
    with svc.repo.reader() as session:
        sv = session.current(rtype, rid)
    return sv is not None and not sv.deleted


@pytest.fixture
def network(intake: Services) -> Services:
    load_samples(intake)
    intake.ids = Ids(EXAMPLE_KEY)  # fixed pseudonyms, so the goldens hold stable Patient ids
    return intake


def test_every_sample_message_against_its_golden(network: Services) -> None:
    assert ORDER, "samples/hl7v2 holds no messages"
    fixed = set(_UUID.findall(orjson.dumps(_all_stored(network)).decode()))
    results: dict[str, dict[str, Any]] = {}
    for name in ORDER:
        before = _history(network)
        ack = handle(network, sample(name), "127.0.0.1:5000")
        assert code(ack) == "AA", f"{name}: {ack!r}"
        written = _written(network, _history(network) - before)
        assert written, f"{name} wrote nothing"
        for resource in written:
            for reference in _references(resource):
                assert _resolves(network, reference), f"{name}: {reference} does not resolve"
        fixed |= {network.ids.personal("urn:oid:1.2.246.21", h) for h in _hetus(name)}
        fixed |= {r["id"] for r in written if r.get("resourceType") != "Provenance"}
        results[name] = {"ack": code(ack), "written": written}
    for name, result in results.items():
        result["written"] = _stable(result["written"], fixed)
        _compare(name, result)
    after = _history(network)
    for name in ORDER:  # the series again: every MSH-10 answered from the log, nothing written
        assert code(handle(network, sample(name), None)) == "AA"
    assert _history(network) == after


def _all_stored(svc: Services) -> list[str]:
    with svc.repo.reader() as session:
        return [i for (i,) in session.query("SELECT res_id FROM resources")]


def _hetus(name: str) -> list[str]:
    text = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8")
    return re.findall(r"(\d{6}[-+A]\d{3}[0-9A-Y])\^", text)


def _compare(name: str, result: dict[str, Any]) -> None:
    path = GOLDENS / f"{name}.json"
    if os.environ.get("UPDATE_GOLDENS") == "1":
        GOLDENS.mkdir(exist_ok=True)
        path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    assert path.exists(), f"no golden {path.name}: run with UPDATE_GOLDENS=1 and review it"
    assert result == orjson.loads(path.read_bytes()), f"{name} differs from its golden"
