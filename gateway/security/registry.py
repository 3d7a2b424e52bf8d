"""The organisation registry: which organisations may ask for tokens, with which keys and scopes.

One JSON file per organisation (samples/organisations/*.json by default; the setting
`organisations_dir` points elsewhere). A malformed registration stops the gateway at start: a
half-read registry must never let a client in. Registrations hold public keys only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.fhir_api.context import ID_RE
from gateway.security.scopes import Scope, ScopeError, parse_scope

# Registered URLs must be TLS-protected (SMART Backend Services, "jku"); plain http only on
# the loopback interface, for local testing.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class RegistrationError(ValueError):
    """A registration file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Organisation:
    organization: str  # the FHIR Organization id of the calling organisation
    client_id: str
    name: str
    scopes: tuple[Scope, ...]
    scope_text: tuple[str, ...]  # as registered, for the CLI's default request
    jwks: tuple[dict[str, Any], ...] = ()  # inline public JWKs
    jwks_url: str | None = None
    jku: tuple[str, ...] = ()  # JWKS URLs an assertion may name in its `jku` header

    def allowed_jku(self) -> tuple[str, ...]:
        return self.jku + ((self.jwks_url,) if self.jwks_url else ())


class Registry:
    def __init__(self, organisations: list[Organisation]) -> None:
        self.by_client: dict[str, Organisation] = {}
        for org in organisations:
            if org.client_id in self.by_client:
                raise RegistrationError(f"client_id '{org.client_id}' is registered twice")
            self.by_client[org.client_id] = org

    def client(self, client_id: str) -> Organisation | None:
        return self.by_client.get(client_id)

    def find(self, name: str) -> Organisation | None:
        """By client_id or by Organization id (the CLI's --org)."""
        return self.client(name) or next(
            (o for o in self.by_client.values() if o.organization == name), None
        )


def load_registry(directory: str | Path) -> Registry:
    return Registry([load_registration(p) for p in sorted(Path(directory).glob("*.json"))])


def load_registration(path: Path) -> Organisation:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return registration(doc)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RegistrationError(f"{path.name}: {e}") from None


def registration(doc: dict[str, Any]) -> Organisation:
    org, client_id = str(doc["organization"]), str(doc["client_id"])
    if not ID_RE.match(org):
        raise RegistrationError("organization must be a FHIR Organization id")
    jwks, url = doc.get("jwks"), doc.get("jwks_url")
    if (jwks is None) == (url is None):
        raise RegistrationError("give exactly one of jwks (inline) and jwks_url")
    keys = tuple(_public(k) for k in jwks["keys"]) if jwks is not None else ()
    try:
        scopes = tuple(parse_scope(s) for s in doc["scopes"])
    except ScopeError as e:
        raise RegistrationError(str(e)) from None
    return Organisation(
        organization=org,
        client_id=client_id,
        name=str(doc.get("name", org)),
        scopes=scopes,
        scope_text=tuple(doc["scopes"]),
        jwks=keys,
        jwks_url=_https(url) if url is not None else None,
        jku=tuple(_https(u) for u in doc.get("jku", [])),
    )


def _public(jwk: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(jwk, dict) or "kty" not in jwk:
        raise RegistrationError("every key in jwks.keys must be a JWK object")
    if any(name in jwk for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise RegistrationError("a registration holds public keys only")
    return dict(jwk)


def _https(url: str) -> str:
    parts = urlsplit(str(url))
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return str(url)
    raise RegistrationError(f"'{str(url)[:80]}' must be an https URL")
