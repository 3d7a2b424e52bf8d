"""Loading FHIR JSON files (resources and Bundles) into the gateway: the sample client journeys in
samples/bundles and whatever `plan-gateway load` is given.

Every file goes through the same interactions as the REST API (batch/transaction, update,
create), so validation, storage and history are exactly those of a REST client; this module must
never write to storage directly, and reports statuses and paths only, never resource content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from gateway.errors import FhirError, invalid
from gateway.fhir_api import formats
from gateway.fhir_api.context import RESOURCE_TYPES, FhirRequest, FhirResponse, Services
from gateway.fhir_api.interactions import create, transaction, update

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "bundles"
# The base used in Location headers and fullUrls when loading offline (no HTTP request).
OFFLINE_BASE = "http://127.0.0.1:8080/fhir"
# Bundle types that go through the transaction interaction, as POST [base] would.
INTERACTION_BUNDLES = ("transaction", "batch")
# Bundle types whose entries are plain resources to store one by one.
ENTRY_BUNDLES = ("collection", "searchset")


@dataclass
class LoadResult:
    """What loading one file did: its kind and a count of response status lines."""

    path: Path
    kind: str = "resource"
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> bool:
        return any(not s.startswith(("200", "201", "204")) for s in self.statuses)


def json_files(paths: Iterable[Path]) -> list[Path]:
    """The files named, with directories expanded to their *.json files in name order."""
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.rglob("*.json")) if path.is_dir() else [path])
    return out


def read_json(path: Path, max_depth: int = 64) -> Any:
    """Parsed JSON of a file; an invalid FhirError (with no content echoed) when it is not."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise invalid(f"cannot read the file: {e.strerror}", "file") from None
    return formats.parse_json(raw, max_depth)


def _status(resp: FhirResponse) -> str:
    try:
        return f"{resp.status} {HTTPStatus(resp.status).phrase}"
    except ValueError:
        return str(resp.status)


def load_resource(svc: Services, resource: Any, base: str = OFFLINE_BASE) -> FhirResponse:
    """PUT a resource that carries an id (idempotent), POST one that does not."""
    if not isinstance(resource, dict):
        raise invalid("a FHIR resource must be a JSON object", "resourceType")
    rtype, rid = str(resource.get("resourceType", "")), resource.get("id")
    if rtype not in RESOURCE_TYPES:  # as the REST routes do before any interaction runs
        raise invalid(f"resourceType '{rtype[:40]}' is not served by this gateway", "resourceType")
    if isinstance(rid, str):
        req = FhirRequest(method="PUT", base=base, resource_type=rtype, id=rid, resource=resource)
        return update.update(svc, req)
    return create.create(svc, FhirRequest("POST", base, resource_type=rtype, resource=resource))


def load_document(svc: Services, doc: Any, path: Path, base: str = OFFLINE_BASE) -> LoadResult:
    """Load one parsed file: a transaction/batch Bundle, a collection Bundle, or a resource."""
    result = LoadResult(path)
    if not (isinstance(doc, dict) and doc.get("resourceType") == "Bundle"):
        result.statuses[_status(load_resource(svc, doc, base))] += 1
        return result
    result.kind = str(doc.get("type"))
    if result.kind in INTERACTION_BUNDLES:
        req = FhirRequest("POST", base, resource=doc, headers={"prefer": "return=minimal"})
        resp = transaction.bundle(svc, req)
        assert isinstance(resp.body, dict)
        for entry in resp.body.get("entry", []):
            result.statuses[entry["response"]["status"]] += 1
        return result
    if result.kind not in ENTRY_BUNDLES:
        raise invalid(
            f"a Bundle of type '{result.kind[:40]}' cannot be loaded; use transaction, batch "
            "or collection",
            "Bundle.type",
        )
    for entry in doc.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        result.statuses[_status(load_resource(svc, resource, base))] += 1
    return result


def load_file(svc: Services, path: Path, base: str = OFFLINE_BASE) -> LoadResult:
    """Read and load one file; a FhirError when the file or any entry of a transaction fails."""
    return load_document(svc, read_json(path, svc.settings.max_json_depth), path, base)


def sample_files() -> list[Path]:
    """The sample bundles, in load order (the network first, then each client journey)."""
    return json_files([SAMPLES_DIR])


def load_samples(svc: Services, base: str = OFFLINE_BASE) -> list[LoadResult]:
    """Load every sample bundle; idempotent (PUT with fixed ids), so loading twice changes
    nothing."""
    return [load_file(svc, path, base) for path in sample_files()]


def describe(err: FhirError) -> list[str]:
    """One line per issue of an error: its path (when known) and message."""
    return [
        f"{', '.join(i.expression)}: {i.diagnostics}" if i.expression else i.diagnostics
        for i in err.issues
    ]
