"""The security package's only outbound HTTP: fetching an organisation's JWKS, and (for the CLI)
talking to a running gateway's token endpoint. httpx stays inside this module; its errors become
`FetchError`, which callers turn into OAuth errors.

Never follows redirects (a registered URL is the URL) and never reads more than `MAX_BYTES`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

MAX_BYTES = 256 * 1024
TIMEOUT_S = 5.0


class FetchError(Exception):
    """The URL did not give a usable JSON document; the message names the reason only."""


def get_json(url: str) -> Any:
    return _json(_send("GET", url))


def post_form(url: str, form: dict[str, str]) -> tuple[int, Any]:
    response = _send("POST", url, data=form)
    return response.status_code, _json(response, any_status=True)


def _send(method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            response = client.request(method, url, **kwargs)
    except httpx.HTTPError as e:
        raise FetchError(f"request failed ({type(e).__name__})") from None
    if len(response.content) > MAX_BYTES:
        raise FetchError("the response is too large")
    return response


def _json(response: httpx.Response, any_status: bool = False) -> Any:
    if response.status_code != 200 and not any_status:
        raise FetchError(f"HTTP status {response.status_code}")
    try:
        return json.loads(response.content)
    except ValueError:
        raise FetchError("the response is not JSON") from None
