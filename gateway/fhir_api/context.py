"""The framework-free request/response pair every FHIR interaction works on.

Interactions take a `FhirRequest` and the gateway's `Services` and return a `FhirResponse`; they
never see FastAPI. A response body is either stored canonical JSON bytes (served unchanged) or a
dict that may contain `orjson.Fragment`s of stored bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.consent.enforcement import Gate
from gateway.errors import invalid
from gateway.fhir_api.operations import Registry

if TYPE_CHECKING:
    from adapters.ids import Ids
    from gateway.audit.writer import AuditWriter
    from gateway.search.engine import SearchEngine
    from gateway.security.authority import Authority
    from gateway.security.caller import Caller
    from gateway.settings import Settings
    from gateway.storage.base import Repository, StoredVersion
    from gateway.validation.validator import Validator

ID_RE = re.compile(r"^[A-Za-z0-9\-\.]{1,64}$")
_DIGITS = re.compile(r"[0-9]+")
# Integers from the request are bounded before they reach SQL (SQLite and PostgreSQL hold 64 bits).
INT_CAP = 2**62

# The resource types this gateway serves (issue 2); the CapabilityStatement lists exactly these.
RESOURCE_TYPES: tuple[str, ...] = (
    "Patient",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "CareTeam",
    "CarePlan",
    "Goal",
    "ServiceRequest",
    "Task",
    "Consent",
    "Provenance",
    "AuditEvent",
    "Subscription",
    "Composition",
    "DocumentReference",
    "QuestionnaireResponse",
    "Communication",
    "Endpoint",
    "Basic",
)


@dataclass
class FhirRequest:
    method: str
    base: str  # absolute service base, e.g. http://127.0.0.1:8080/fhir
    resource_type: str | None = None
    id: str | None = None
    vid: str | None = None
    operation: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    resource: dict[str, Any] | None = None  # parsed body (JSON or XML)
    raw_body: bytes = b""
    # The authenticated organisation (and acting PractitionerRole); None when require_auth is off.
    caller: Caller | None = None
    # The disclosure gate and audit trail of this request (gateway.consent.enforcement): every
    # path out asks it; trusted (permits all, records nothing) only when there is no caller.
    gate: Gate = field(default_factory=Gate.trusted)
    request_id: str = ""  # X-Request-Id, echoed on the response and recorded in AuditEvents
    # A `$`-operation's SMART scope need (type, letter), set by routes.py (fhir_api/operations.py).
    operation_scope: tuple[str, str] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return None


@dataclass
class FhirResponse:
    status: int
    body: bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Services:
    """Everything an interaction may use, built once by `gateway.app.create_app`."""

    repo: Repository
    settings: Settings
    search: SearchEngine
    validator: Validator
    security: Authority | None = None  # gateway.security: registry, token key and verifier
    audit: AuditWriter | None = None  # stores read AuditEvents in batches (routes.py awaits it)
    operations: Registry = field(default_factory=Registry)  # `$`-operations
    # The deployment's pseudonymous id maker for imported persons (adapters/ids.py); set by
    # build_services from the deployment's key file (gateway/security/pseudonyms.py).
    ids: Ids | None = None


def check_id(id: str, where: str = "id") -> str:
    if not ID_RE.match(id):
        raise invalid(f"'{id[:70]}' is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})", where)
    return id


def version_headers(base: str, sv: StoredVersion) -> dict[str, str]:
    return {
        "ETag": sv.etag,
        "Last-Modified": sv.last_modified,
        "Location": f"{base}/{sv.resource_type}/{sv.id}/_history/{sv.version}",
    }


def digits(text: str, cap: int = INT_CAP) -> int | None:
    """The value of a string of ASCII digits, at most `cap`; None for anything else.

    Not `str.isdigit`: it also accepts '²' and other digits that `int()` rejects, and a very long
    string of digits would exceed what `int()` parses and what the database stores.
    """
    if not _DIGITS.fullmatch(text):
        return None
    text = text.lstrip("0") or "0"
    return cap if len(text) > len(str(cap)) else min(int(text), cap)


def parse_etag(value: str, where: str = "If-Match") -> int:
    """`W/"3"` or `"3"` or `3` -> 3."""
    text = value.strip()
    text = text[2:] if text.startswith("W/") else text
    version = digits(text.strip('"'))
    if version is None:
        raise invalid(f'{where} must be a version ETag such as W/"3"', where)
    return version
