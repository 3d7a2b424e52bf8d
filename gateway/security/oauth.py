"""OAuth 2.0 error responses of the token endpoint (RFC 6749 section 5.2), one exception type.

A description names the rule that failed, never the content of the assertion or a key.
"""

from __future__ import annotations

from dataclasses import dataclass

# error code -> HTTP status. invalid_client is 401: the client failed to authenticate.
STATUS = {
    "invalid_request": 400,
    "invalid_client": 401,
    "invalid_scope": 400,
    "unsupported_grant_type": 400,
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class OAuthError(Exception):
    error: str
    description: str

    def __post_init__(self) -> None:
        super().__init__(f"{self.error}: {self.description}")

    @property
    def status(self) -> int:
        return STATUS[self.error]

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description)


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)
