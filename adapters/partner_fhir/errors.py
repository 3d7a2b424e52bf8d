"""The one error vocabulary of the partner FHIR client: stable codes that the relay stores as an
outbox row's last_error and a PushResult carries. A message never quotes a body or a header value:
either may hold personal data or a partner's secret.
"""

from __future__ import annotations

# code -> what it means (stable; "http-<status>" is added for every answer outside 2xx)
CODES: dict[str, str] = {
    "bad-endpoint": "the URL is not an absolute http(s) URL",
    "bad-header": "a channel header is not 'Name: value', or names a header the client owns",
    "timeout": "no complete answer within the timeout (waiting for a pooled connection included)",
    "refused": "no connection could be made (refused, unreachable)",
    "dns": "the host name does not resolve",
    "tls": "the TLS handshake or the certificate check failed",
    "reset": "the partner closed or reset the connection before a complete answer",
    "bad-response": "the answer is not well-formed HTTP, or is compressed although we asked not",
    "too-large": "the answer's body is larger than the client reads",
    "network": "another transport failure",
}


class PartnerError(Exception):
    """A partner call that got no usable answer. `code` is one of CODES."""

    def __init__(self, code: str, message: str = "") -> None:
        if code not in CODES:
            raise ValueError(f"unknown PartnerError code {code!r}")
        super().__init__(f"{code}: {message or CODES[code]}")
        self.code = code
        self.message = message or CODES[code]
