"""Client assertions made with the demo organisations' keys (samples/organisations/demo-keys/):
what `plan-gateway token` and the tests sign with. The keys are public test material; this module
must never be used with a real organisation's key.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import import_key

from gateway.security.jwks import ALGORITHMS

KEY_DIR_NAME = "demo-keys"


def demo_key_path(organisations_dir: str | Path, client_id: str) -> Path:
    return Path(organisations_dir) / KEY_DIR_NAME / f"{client_id}.json"


def load_demo_key(organisations_dir: str | Path, client_id: str) -> tuple[Any, str]:
    """The demo private key of a client and the algorithm it signs with."""
    doc = json.loads(demo_key_path(organisations_dir, client_id).read_text(encoding="utf-8"))
    jwk = {k: v for k, v in doc.items() if not k.startswith("x-")}
    alg = jwk["alg"]
    if alg not in ALGORITHMS:
        raise ValueError(f"demo key of {client_id} has an unsupported alg")
    return import_key(jwk), alg


def client_assertion(
    key: Any,
    alg: str,
    client_id: str,
    token_url: str,
    lifetime_s: int = 60,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A signed assertion as SMART Backend Services describes; `claims`/`header` override."""
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": now + lifetime_s,
        "iat": now,
        "jti": uuid.uuid4().hex,
        **(claims or {}),
    }
    head = {"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}
    return jwt.encode(head, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])
