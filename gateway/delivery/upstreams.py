"""The upstreams of a gateway that is itself a partner: other gateways (or FHIR servers) that
push us subscription notifications about the Tasks they assign to our organisation, and that we
tell back how the work goes (gateway/delivery/inbox.py, mirror.py, upstream_send.py).

One JSON file per upstream in the directory of the setting `upstreams_dir` (env
PLAN_GATEWAY_UPSTREAMS; unset: the feature is off). A malformed file stops the gateway at start,
as a malformed registration does (gateway/security/registry.py): a half-read upstream must never
let a notification in. Files hold the SHA-256 of the channel secret, never the secret itself;
the private key they point to is read here and never logged.

    {"name": "a", "base": "https://a.example/fhir", "client_id": "kela",
     "key": "keys/kela.json", "organization": "org-kela",
     "secret_sha256": "<64 hex digits>", "scope": "system/Task.ru"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from joserfc.jwk import import_key

from gateway.fhir_api.context import ID_RE
from gateway.security.jwks import ALGORITHMS
from gateway.security.registry import LOOPBACK

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]{0,31}$")  # a path segment and an outbox stream name
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi")
DEFAULT_SCOPE = "system/Task.ru"  # read a Task (id-only events), patch its work state


class UpstreamError(ValueError):
    """An upstream file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Upstream:
    name: str  # our name for it: the receiving route's path segment, the outbox stream
    base: str  # its FHIR base URL, no trailing slash
    client_id: str  # our client_id at its token endpoint
    key: Any = field(repr=False)  # our private signing key (SMART Backend Services)
    alg: str  # ES384 or RS384
    organization: str  # our Organization id that owns the mirrored Tasks
    secret_sha256: bytes = field(repr=False)  # of the secret its notifications carry
    scope: str = DEFAULT_SCOPE

    @property
    def task_system(self) -> str:
        """The identifier system of its Task ids on our mirrors."""
        return f"{self.base}/Task"

    def accepts(self, secret: str) -> bool:
        """Whether `secret` is the channel secret (compared in constant time)."""
        digest = hashlib.sha256(secret.encode("utf-8")).digest()
        return hmac.compare_digest(digest, self.secret_sha256)


def load_upstreams(directory: str | Path | None) -> dict[str, Upstream]:
    """name -> Upstream for every *.json in `directory` (None: none)."""
    if directory is None:
        return {}
    folder = Path(directory)
    if not folder.is_dir():
        raise UpstreamError(f"upstreams directory {folder} does not exist")
    found: dict[str, Upstream] = {}
    for path in sorted(folder.glob("*.json")):
        upstream = load_upstream(path)
        if upstream.name in found:
            raise UpstreamError(f"{path.name}: upstream '{upstream.name}' is defined twice")
        found[upstream.name] = upstream
    return found


def load_upstream(path: Path) -> Upstream:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise UpstreamError("the file must hold one JSON object")
        return upstream(doc, path.parent)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UpstreamError(f"{path.name}: {e}") from None


def upstream(doc: dict[str, Any], folder: Path) -> Upstream:
    name, organization = _text(doc, "name"), _text(doc, "organization")
    if not _NAME.match(name):
        raise UpstreamError("name must be 1-32 of a-z, 0-9 and '-'")
    if not ID_RE.match(organization):
        raise UpstreamError("organization must be a FHIR Organization id")
    secret = _text(doc, "secret_sha256").lower()
    if not _HEX64.match(secret):
        raise UpstreamError("secret_sha256 must be 64 hex digits (the SHA-256 of the secret)")
    key, alg = _key(folder / _text(doc, "key"), doc.get("alg"), doc.get("kid"))
    return Upstream(
        name=name,
        base=_base(_text(doc, "base")),
        client_id=_text(doc, "client_id"),
        key=key,
        alg=alg,
        organization=organization,
        secret_sha256=bytes.fromhex(secret),
        scope=str(doc.get("scope") or DEFAULT_SCOPE),
    )


def _text(doc: dict[str, Any], field: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value.strip():
        raise UpstreamError(f"{field} is required (a non-empty string)")
    return value.strip()


def _base(url: str) -> str:
    parts = urlsplit(url)
    if parts.query or parts.fragment or parts.username is not None or not parts.hostname:
        raise UpstreamError("base must be scheme://host[:port]/path, no user or query")
    # TLS unless on the loopback interface (tests, local demos), as for registered URLs.
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)):
        raise UpstreamError("base must be an https URL (http only on the loopback)")
    return url.rstrip("/")


def _key(path: Path, alg: Any, kid: Any) -> tuple[Any, str]:
    """Our private key: a JWK (JSON, its own alg and kid) or a PEM file (alg and kid given in
    the upstream file)."""
    raw = path.read_bytes()
    if raw.lstrip().startswith(b"{"):
        jwk = {k: v for k, v in json.loads(raw).items() if not k.startswith("x-")}
        if not any(member in jwk for member in _PRIVATE):
            raise UpstreamError("key must be a private key")
        alg = jwk.get("alg", alg)
        key = import_key(jwk)
    else:
        key = import_key(raw, _kty(alg), {"kid": str(kid)} if kid else None)
        if not key.is_private:
            raise UpstreamError("key must be a private key")
    if alg not in ALGORITHMS or key.key_type != ALGORITHMS[alg][0]:
        raise UpstreamError(f"key must be an {' or '.join(ALGORITHMS)} key (with its alg)")
    if not key.kid:
        raise UpstreamError("key needs a kid (in the JWK, or 'kid' beside a PEM key)")
    return key, str(alg)


def _kty(alg: Any) -> Any:
    if alg not in ALGORITHMS:
        raise UpstreamError(f"a PEM key needs 'alg': {' or '.join(ALGORITHMS)}")
    return ALGORITHMS[alg][0]
