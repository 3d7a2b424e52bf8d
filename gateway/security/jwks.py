"""Which public key verifies a client assertion: the organisation's registered JWKS (inline or
fetched from its URL, cached), or the JWKS at a registered `jku`; then exactly one key with the
header's `kid`, of the type the `alg` needs.

These are checks a JOSE library leaves to the server (SMART Backend Services, "Signature
verification"). Never picks a key by guessing: zero or several candidates is a refusal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwk
from joserfc.errors import JoseError

from gateway.security.oauth import invalid_client
from gateway.security.outbound import FetchError, get_json
from gateway.security.registry import Organisation

# alg -> (kty, crv): the only algorithms accepted for client assertions (SMART: RS384, ES384).
ALGORITHMS: dict[str, tuple[str, str | None]] = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
MIN_RSA_BITS = 2048
# A kid missing from a fetched JWKS refetches it (key rotation), at most this often per URL, so
# assertions with made-up kids cannot turn the gateway into a request amplifier.
REFRESH_MIN_S = 30.0
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


class JwksCache:
    """Fetched key sets by URL, each kept `ttl_s` seconds; one fetch per URL at a time."""

    def __init__(self, ttl_s: float, fetch: Callable[[str], Any] = get_json) -> None:
        self.ttl_s = ttl_s
        self.fetch = fetch
        self._entries: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def keys(self, url: str, refresh: bool = False) -> list[dict[str, Any]]:
        with self._guard:
            lock = self._locks.setdefault(url, threading.Lock())
        with lock:
            now = time.monotonic()
            entry = self._entries.get(url)
            fresh = entry is not None and now - entry[0] < self.ttl_s
            if entry is not None and fresh and not (refresh and now - entry[0] >= REFRESH_MIN_S):
                return entry[1]
            keys = self._fetch(url)
            self._entries[url] = (now, keys)
            return keys

    def _fetch(self, url: str) -> list[dict[str, Any]]:
        try:
            doc = self.fetch(url)
        except FetchError as e:
            raise invalid_client(f"the registered JWKS URL could not be read: {e}") from None
        keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(keys, list):
            raise invalid_client("the registered JWKS URL did not give a JWK Set")
        return [k for k in keys if isinstance(k, dict)]


def verification_key(org: Organisation, header: dict[str, Any], cache: JwksCache) -> jwk.Key:
    """The one registered key that may verify an assertion with this protected header."""
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise invalid_client("the assertion header has no kid")
    url = _jwks_url(org, header)
    keys = list(org.jwks) if url is None else cache.keys(url)
    matches = [k for k in keys if k.get("kid") == kid]
    if not matches and url is not None:
        matches = [k for k in cache.keys(url, refresh=True) if k.get("kid") == kid]
    if not matches:
        raise invalid_client("no registered key has the assertion's kid")
    if len(matches) > 1:
        raise invalid_client("several registered keys have the assertion's kid")
    return fitting_key(matches[0], header["alg"])


def _jwks_url(org: Organisation, header: dict[str, Any]) -> str | None:
    jku = header.get("jku")
    if jku is None:
        return org.jwks_url
    if jku not in org.allowed_jku():
        raise invalid_client("the assertion's jku is not a registered JWKS URL")
    return str(jku)


def fitting_key(key: dict[str, Any], alg: str) -> jwk.Key:
    """The key as a verification key, if its type, curve, size and declared use fit `alg`."""
    kty, crv = ALGORITHMS[alg]
    if key.get("kty") != kty or (crv is not None and key.get("crv") != crv):
        raise invalid_client(f"the key with this kid is not a {kty} key fit for {alg}")
    if key.get("alg", alg) != alg or key.get("use", "sig") != "sig":
        raise invalid_client(f"the key with this kid is registered for another use than {alg}")
    if "verify" not in key.get("key_ops", ["verify"]):
        raise invalid_client("the key with this kid is not registered for verification")
    public = {k: v for k, v in key.items() if k not in PRIVATE_MEMBERS}
    try:
        imported = jwk.import_key(public)
    except (JoseError, ValueError, TypeError):
        raise invalid_client("the key with this kid is not a usable JWK") from None
    if kty == "RSA" and imported.public_key.key_size < MIN_RSA_BITS:  # type: ignore[union-attr]
        raise invalid_client(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    return imported
