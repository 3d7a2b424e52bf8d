"""The authentication state of one gateway process, built once by `gateway.app`: the registry,
the JWKS cache, and (on first use) the gateway's token key and the token verifier.

The key is loaded lazily so that commands and tests that never issue or check a token never
create a key file.
"""

from __future__ import annotations

import threading
from pathlib import Path

from joserfc.jwk import OctKey

from gateway.security.jwks import JwksCache
from gateway.security.registry import Registry, load_registry
from gateway.security.tokens import Verifier, load_or_create_key
from gateway.settings import Settings

KEY_FILE_NAME = "token-signing-key.jwk.json"


def key_file(settings: Settings) -> Path:
    """`token_key_file`, else beside the SQLite database (else ./data for PostgreSQL)."""
    return secret_file(settings, settings.token_key_file, KEY_FILE_NAME)


def secret_file(settings: Settings, configured: str | None, name: str) -> Path:
    """A deployment secret's file: `configured`, else `name` beside the SQLite database (else
    in ./data for PostgreSQL). Several hosts sharing one PostgreSQL must be given the file."""
    if configured:
        return Path(configured)
    url = settings.database_url
    if url.startswith(("postgresql://", "postgres://")):
        return Path("data") / name
    return Path(url.removeprefix("sqlite:///")).parent / name


def token_url(settings: Settings, request_root: str) -> str:
    """The absolute token endpoint URL: under the configured public base when there is one
    (behind a proxy the Host header is not to be trusted for `aud`), else under the request's."""
    if settings.base_url:
        root = settings.base_url.rstrip("/").removesuffix("/fhir")
    else:
        root = request_root.rstrip("/")
    return f"{root}/auth/token"


class Authority:
    def __init__(self, settings: Settings, registry: Registry, jwks: JwksCache | None = None):
        self.settings = settings
        self.registry = registry
        self.jwks = jwks or JwksCache(settings.jwks_cache_seconds)
        self._lock = threading.Lock()
        self._key: OctKey | None = None
        self._verifier: Verifier | None = None

    @property
    def key(self) -> OctKey:
        with self._lock:
            if self._key is None:
                self._key = load_or_create_key(key_file(self.settings))
            return self._key

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            self._verifier = Verifier(self.key, self.registry)
        return self._verifier


def build_authority(settings: Settings) -> Authority:
    return Authority(settings, load_registry(settings.organisations_dir))
