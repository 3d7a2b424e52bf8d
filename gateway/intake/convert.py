"""`plan-gateway convert`: one file converted offline, nothing stored, no gateway running.
HL7 v2 -> FHIR (adapters/hl7v2/convert.py), CDA -> FHIR and FHIR -> CDA (adapters/cda/convert.py).
Errors leave as a `ConvertError` carrying an OperationOutcome that names codes and places, never
content of the file (it holds personal data).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adapters.hl7v2.convert import to_bundle
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import parse
from adapters.ids import EXAMPLE_KEY, Ids

EXAMPLE_KEY_WARNING = (
    "note: Patient ids use the example pseudonym key, not a deployment's (--id-key-file)"
)


class ConvertError(Exception):
    def __init__(
        self, code: str, message: str, where: str | None = None, details: tuple[str, ...] = ()
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.where = code, message, where
        self.details = details  # e.g. the templateIds and sections a CDA document has unmapped

    def outcome(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": "error",
            "code": "invalid",
            "details": {"text": self.code},
            "diagnostics": self.message,
        }
        if self.where:
            issue["expression"] = [self.where]
        listed = [
            {"severity": "information", "code": "informational", "diagnostics": f"not mapped: {d}"}
            for d in self.details
        ]
        return {"resourceType": "OperationOutcome", "issue": [issue, *listed]}

    def outcome_json(self) -> str:
        return orjson.dumps(self.outcome(), option=orjson.OPT_INDENT_2).decode()


def run(
    source: str, target: str, data: bytes, kind: str, key_file: Path | None
) -> tuple[bytes, list[str]]:
    """(the output bytes, warnings for stderr)."""
    pair = (source, target)
    if pair == ("hl7v2", "fhir"):
        ids, warnings = _ids(key_file)
        return _json(_hl7v2_to_fhir(data, ids)), warnings
    if pair == ("cda", "fhir"):
        ids, warnings = _ids(key_file)
        bundle, unrecognised = _cda_to_fhir(data, ids)
        return _json(bundle), warnings + [f"unrecognised: {u}" for u in unrecognised]
    if pair == ("fhir", "cda"):
        return _fhir_to_cda(data, kind), []
    raise ConvertError("unsupported", f"no conversion from {source} to {target}")


def _ids(key_file: Path | None) -> tuple[Ids, list[str]]:
    if key_file is None:
        return Ids(EXAMPLE_KEY), [EXAMPLE_KEY_WARNING]
    try:
        return Ids(bytes.fromhex(key_file.read_text(encoding="ascii").strip())), []
    except (OSError, ValueError):
        raise ConvertError("bad-key", "the id key file is not a hex key of 16+ bytes") from None


def _hl7v2_to_fhir(data: bytes, ids: Ids) -> dict[str, Any]:
    try:
        return to_bundle(parse(data), ids)
    except Hl7Error as error:
        where = f"{error.segment}-{error.field}" if error.segment and error.field else error.segment
        raise ConvertError(error.code, error.message, where) from None


def _cda_to_fhir(data: bytes, ids: Ids) -> tuple[dict[str, Any], list[str]]:
    from adapters.cda.convert import to_fhir
    from adapters.cda.errors import CdaError

    try:
        result = to_fhir(data, ids)
    except CdaError as error:
        where = f"line {error.line}" if getattr(error, "line", None) else None
        details = tuple(getattr(error, "details", ()) or ())
        raise ConvertError(error.code, error.message, where, details) from None
    return result.bundle, list(result.unrecognised)


def _fhir_to_cda(data: bytes, kind: str) -> bytes:
    from adapters.cda.convert import from_fhir
    from adapters.cda.errors import CdaError

    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ConvertError("not-json", "the file is not JSON") from None
    resources = _resources(doc)
    author = _author_org(resources)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    try:
        return from_fhir(resources, kind, author_org=author, now=now)
    except CdaError as error:
        raise ConvertError(error.code, error.message) from None


def _resources(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        entries = doc.get("entry") if isinstance(doc.get("entry"), list) else []
        found = [e.get("resource") for e in entries if isinstance(e, dict)]
    elif isinstance(doc, list):
        found = doc
    else:
        found = [doc]
    resources = [r for r in found if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]
    if not resources:
        raise ConvertError("no-resources", "the file holds no FHIR resources", "Bundle.entry")
    return resources


def _author_org(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The exporting organisation: the CarePlan's custodian or author when it is an
    Organization in the file, else the first Organization."""
    orgs = {r.get("id"): r for r in resources if r.get("resourceType") == "Organization"}
    plan = next((r for r in resources if r.get("resourceType") == "CarePlan"), {})
    named = [
        (e.get("valueReference") or {}).get("reference", "")
        for e in plan.get("extension") or []
        if isinstance(e, dict) and str(e.get("url", "")).endswith("/custodian")
    ] + [(plan.get("author") or {}).get("reference", "")]
    for ref in named:
        if isinstance(ref, str) and ref.startswith("Organization/") and ref[13:] in orgs:
            return orgs[ref[13:]]
    if orgs:
        return next(iter(orgs.values()))
    raise ConvertError("no-author", "the file holds no Organization to author the document")


def _json(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
