"""jti replay protection: an assertion's jti is recorded until the assertion expires, in the
database shared by every gateway process (table `auth_jti`, migration 2), so one assertion
yields one token however many workers it is sent to at once.

The PRIMARY KEY decides: the first INSERT wins, every other sees no row returned. Must be called
only after the assertion has been fully verified.
"""

from __future__ import annotations

import time

from gateway.security.assertion import LEEWAY_S
from gateway.storage.base import Repository

_INSERT = (
    "INSERT INTO auth_jti (jti, exp_us) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING RETURNING jti"
)


def first_use(repo: Repository, client_id: str, jti: str, exp: int) -> bool:
    """Record the jti (scoped to its client); False when it was already recorded."""
    now_us = time.time_ns() // 1000
    # An assertion is accepted up to the leeway past its exp: the row is kept that long too.
    keep_until_us = (exp + LEEWAY_S + 1) * 1_000_000
    with repo.writer() as session:
        # Rows of expired assertions can go: an expired assertion is refused before this point.
        session.execute("DELETE FROM auth_jti WHERE exp_us < ?", (now_us,))
        rows = session.query(_INSERT, (f"{client_id} {jti}", keep_until_us))
    return bool(rows)
