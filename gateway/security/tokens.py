"""The gateway's access tokens: short JWTs (RFC 9068 shape, typ `at+jwt`) MAC'd with the
gateway's own key.

Why signed and not an opaque database row: every FHIR request checks its token, and a MAC check
(plus a per-process cache of tokens already checked) costs microseconds and no database round
trip, which matters on PostgreSQL and for the read benchmark. Why HMAC (HS256) and not a key
pair: the gateway is the only issuer and the only verifier, so nothing needs a public key. No
revocation list is kept: tokens live at most 300 s. The key is 32 random bytes in a JWK file
(mode 0600) created on first use in the data directory, atomically, so every worker process of
one host uses the same key; several hosts must be given the same file (`token_key_file`).
Client-assertion algorithms (RS384/ES384) are never accepted here, nor HS256 there.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from gateway.security.caller import Caller
from gateway.security.registry import Registry
from gateway.security.scopes import ScopeError, parse_scopes

ALGORITHM = "HS256"
TYPE = "at+jwt"
ISSUER = "fhir-plan-gateway"
MAX_LIFETIME_S = 300
LEEWAY_S = 5
CACHE_SIZE = 10_000


class TokenError(Exception):
    """The bearer token is not one of ours, or no longer valid; the message names the reason."""


def load_or_create_key(path: Path) -> OctKey:
    if not path.exists():
        create_secret_file(path, json.dumps(OctKey.generate_key(256).as_dict(private=True)))
    return OctKey.import_key(json.loads(path.read_text(encoding="utf-8")))


def create_secret_file(path: Path, text: str) -> None:
    """Write a new secret beside `path` (mode 0600), then link it into place: of several
    processes starting at once, exactly one secret wins and every process reads that one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def issue(key: OctKey, caller: Caller, scope: str, lifetime_s: int, now: float) -> str:
    iat = int(now)
    claims = {
        "iss": ISSUER,
        "sub": caller.client_id,
        "org": caller.organization,
        "scope": scope,
        "client_id": caller.client_id,
        "iat": iat,
        "exp": iat + min(lifetime_s, MAX_LIFETIME_S),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": ALGORITHM, "typ": TYPE}, claims, key, algorithms=[ALGORITHM])


class Verifier:
    """Checks bearer tokens; remembers tokens already checked until they expire."""

    def __init__(self, key: OctKey, registry: Registry) -> None:
        self.key = key
        self.registry = registry
        self._checked: dict[str, tuple[int, Caller]] = {}

    def caller(self, token: str, now: float) -> Caller:
        hit = self._checked.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        exp, caller = self._verify(token, now)
        if len(self._checked) >= CACHE_SIZE:
            self._checked.clear()
        self._checked[token] = (exp, caller)
        return caller

    def _verify(self, token: str, now: float) -> tuple[int, Caller]:
        try:
            decoded = jwt.decode(token, self.key, algorithms=[ALGORITHM])
        except (JoseError, ValueError, UnicodeError):
            raise TokenError("the access token is not valid") from None
        claims: dict[str, Any] = decoded.claims
        if decoded.header.get("typ") != TYPE or claims.get("iss") != ISSUER:
            raise TokenError("the access token is not valid")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int) or iat > now + LEEWAY_S:
            raise TokenError("the access token is not valid")
        if exp <= now:
            raise TokenError("the access token has expired")
        org = self.registry.client(str(claims.get("sub")))
        if org is None or org.organization != claims.get("org"):
            raise TokenError("the access token's client is no longer registered")
        try:
            scopes = parse_scopes(str(claims.get("scope", "")))
        except ScopeError:
            raise TokenError("the access token is not valid") from None
        return exp, Caller(org.organization, org.client_id, scopes)
