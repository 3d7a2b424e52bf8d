"""Deterministic FHIR ids for what the adapters import, so that importing the same message or
document twice changes nothing (the same source identifier always gives the same id).

Two kinds, on purpose:
- `Ids.personal(system, value)`: for identifiers of persons (a HETU). A keyed HMAC-SHA256 with
  the deployment's secret (gateway.security.pseudonyms), because the HETU space is small enough
  to enumerate: an unkeyed hash (uuid5) of a HETU could be reversed by anyone holding the id.
- `Ids.derived(*parts)`: for document and message identifiers (CDA `id` root/extension plus a
  path inside the document, MSH-10), which are not personal data: uuid5 in a fixed namespace,
  the same in every deployment.

Pure: the caller hands in the key; nothing here reads files or settings.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

# fixed once for this project: derived ids are uuid5(ID_NAMESPACE, "part|part|…")
ID_NAMESPACE = uuid.UUID("2ef65f7d-4886-4f00-b3a9-e8b236eb565d")


class Ids:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key

    def personal(self, system: str, value: str) -> str:
        """An id for a person's identifier: stable within one deployment (one key), not
        reversible without the key. A UUID of version 8 (RFC 9562, custom) over the HMAC."""
        digest = bytearray(
            hmac.new(self._key, f"{system}|{value}".encode(), hashlib.sha256).digest()[:16]
        )
        digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
        digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122/9562 variant
        return str(uuid.UUID(bytes=bytes(digest)))

    @staticmethod
    def derived(*parts: str) -> str:
        """An id derived from non-personal identifiers (document id root/extension, a path)."""
        return str(uuid.uuid5(ID_NAMESPACE, "|".join(parts)))


# For tests and `plan-gateway convert` without a deployment: never used by a running gateway.
EXAMPLE_KEY = b"fhir-plan-gateway example key, not for deployment"
