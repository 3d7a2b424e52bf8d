"""Verifying a SMART Backend Services client assertion (a JWT signed with the organisation's
private key): https://hl7.org/fhir/smart-app-launch/backend-services.html#signature-verification

The order matters: the header and the issuer pick one registered key, the signature is verified
with that key and only the header's own algorithm (so `alg=none` and HS-signed-with-the-public-
key never reach a verifier), then every claim is checked. Replay (jti) is recorded by the caller
only after everything here has passed, so forged assertions cannot use up a client's jti values.
Never logs or echoes the assertion.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from gateway.security.jwks import ALGORITHMS, JwksCache, verification_key
from gateway.security.oauth import invalid_client
from gateway.security.registry import Organisation, Registry

MAX_ASSERTION_BYTES = 16 * 1024
MAX_LIFETIME_S = 300  # "exp ... no more than five minutes in the future"
LEEWAY_S = 10  # clock skew allowed on exp, iat and nbf
REQUIRED = ("iss", "sub", "aud", "exp", "iat", "jti")


@dataclass(frozen=True)
class Assertion:
    org: Organisation
    jti: str
    exp: int


def verify_assertion(
    text: str, registry: Registry, cache: JwksCache, token_url: str, now: float
) -> Assertion:
    header, claims = _unverified(text)
    org = _issuer(claims, registry)
    key = verification_key(org, header, cache)
    try:
        jwt.decode(text, key, algorithms=[header["alg"]])
    except (JoseError, ValueError):
        raise invalid_client("the assertion's signature does not verify") from None
    _check_claims(claims, token_url, now)
    return Assertion(org, claims["jti"], claims["exp"])


def _unverified(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification: used only to choose the key."""
    if len(text) > MAX_ASSERTION_BYTES:
        raise invalid_client("the assertion is too large")
    try:
        compact = jws.extract_compact(text.encode("ascii"))
        header = compact.headers()
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError):
        raise invalid_client("the assertion is not a compact JWS") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise invalid_client(f"the assertion must be signed with {' or '.join(ALGORITHMS)}")
    if "crit" in header:
        raise invalid_client("the assertion's critical header parameters are not supported")
    if not isinstance(claims, dict):
        raise invalid_client("the assertion's payload is not a claims object")
    return header, claims


def _issuer(claims: dict[str, Any], registry: Registry) -> Organisation:
    missing = [name for name in REQUIRED if name not in claims]
    if missing:
        raise invalid_client(f"the assertion lacks the claim(s) {', '.join(missing)}")
    iss, sub = claims["iss"], claims["sub"]
    if not isinstance(iss, str) or iss != sub:
        raise invalid_client("the assertion's iss and sub must both be the client_id")
    org = registry.client(iss)
    if org is None:
        raise invalid_client("the assertion's issuer is not a registered client")
    return org


def _check_claims(claims: dict[str, Any], token_url: str, now: float) -> None:
    aud = claims["aud"]
    if aud != token_url and not (isinstance(aud, list) and token_url in aud):
        raise invalid_client("the assertion's aud must be this server's token endpoint URL")
    exp, iat, nbf = (_time(claims, n) for n in ("exp", "iat", "nbf"))
    if exp is None or iat is None:
        raise invalid_client("the assertion's exp and iat must be NumericDates")
    if exp <= now - LEEWAY_S:
        raise invalid_client("the assertion has expired")
    if exp > now + MAX_LIFETIME_S + LEEWAY_S:
        raise invalid_client("the assertion's exp is more than five minutes ahead")
    if iat > now + LEEWAY_S or iat > exp:
        raise invalid_client("the assertion's iat is in the future")
    if nbf is not None and nbf > now + LEEWAY_S:
        raise invalid_client("the assertion is not valid yet (nbf)")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= 255 or not jti.isprintable():
        raise invalid_client("the assertion's jti must be 1 to 255 printable characters")


def _time(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int to Python; inf and NaN are floats that no clock reads.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise invalid_client(f"the assertion's {name} must be a NumericDate")
    return int(value)
