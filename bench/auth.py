"""Bearer tokens for the benchmark: the gateway runs as in production, requiring a token on every
FHIR request, and the load generators send one (the bare baselines need none).

Tokens come from the gateway's real token endpoint (SMART Backend Services: a client assertion
signed with the demo organisation's key, samples/organisations/demo-keys). They live at most
300 s, so every measured run asks for a fresh one just before it starts (outside the measured
time), and the long bulk load refreshes its token before it gets old.
"""

from __future__ import annotations

import time

import httpx

from gateway.security.demo import client_assertion, load_demo_key
from gateway.security.token_endpoint import ASSERTION_TYPE, GRANT_TYPE
from gateway.settings import ORGANISATIONS_DIR

CLIENT_ID = "sote-keskus"  # Organization org-sote-keskus, system/*.cruds (demo registration)
SCOPE = "system/*.cruds"
ORGANIZATION = "org-sote-keskus"
REFRESH_AFTER_S = 200.0  # well inside the 300 s lifetime


class Bearer:
    """Tokens for one running gateway (`root`: http://host:port)."""

    def __init__(self, root: str, client_id: str = CLIENT_ID, scope: str = SCOPE) -> None:
        self.root, self.client_id, self.scope = root.rstrip("/"), client_id, scope
        self._headers: dict[str, str] = {}
        self._at = 0.0

    def fresh(self) -> dict[str, str]:
        """Headers with a token issued now (valid 300 s)."""
        url = f"{self.root}/auth/token"
        key, alg = load_demo_key(ORGANISATIONS_DIR, self.client_id)
        last: Exception | None = None
        for _ in range(3):  # a busy server (the bulk load) may be slow to answer
            form = {  # a new assertion each try: a resent one would be refused as a replay
                "grant_type": GRANT_TYPE,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(key, alg, self.client_id, url),
                "scope": self.scope,
            }
            try:
                r = httpx.post(url, data=form, timeout=60)
            except httpx.HTTPError as e:
                last = e
                continue
            if r.status_code != 200:
                raise RuntimeError(f"token request answered {r.status_code}: {r.text[:300]}")
            self._headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            self._at = time.monotonic()
            return dict(self._headers)
        raise RuntimeError(f"no token from {url}: {last}")

    def __call__(self) -> dict[str, str]:
        """Headers with a token that has at least 100 s left."""
        if not self._headers or time.monotonic() - self._at > REFRESH_AFTER_S:
            return self.fresh()
        return dict(self._headers)
