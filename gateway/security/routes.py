"""The HTTP shell of authentication: POST /auth/token and the SMART configuration document
(at the server root and under the FHIR base, where SMART clients look for it).

Token errors are RFC 6749 JSON, never an OperationOutcome or a traceback; the request body is
bounded and never logged.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.errors import FhirError
from gateway.fhir_api import formats
from gateway.fhir_api.context import RESOURCE_TYPES, Services
from gateway.security.authenticate import authority
from gateway.security.authority import token_url
from gateway.security.jwks import ALGORITHMS
from gateway.security.oauth import NO_STORE, OAuthError, invalid_request
from gateway.security.token_endpoint import GRANT_TYPE, token_response

log = logging.getLogger("gateway.security")
MAX_FORM_BYTES = 64 * 1024
FORM = "application/x-www-form-urlencoded"


def smart_configuration(svc: Services, request_root: str) -> dict:
    return {
        "token_endpoint": token_url(svc.settings, request_root),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "grant_types_supported": [GRANT_TYPE],
        "scopes_supported": ["system/*.cruds"] + [f"system/{t}.cruds" for t in RESOURCE_TYPES],
        "capabilities": ["client-confidential-asymmetric"],
    }


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    if formats.media_type(request.headers.get("content-type")) != FORM:
        raise invalid_request(f"the body must be {FORM}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise invalid_request("the request body is too large")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise invalid_request("the body is not a well-formed form") from None


def _oauth_error(err: OAuthError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=NO_STORE)


def install_auth(app: FastAPI, svc: Services) -> None:
    async def token(request: Request) -> JSONResponse:
        root = str(request.base_url)
        try:
            pairs = await _form_pairs(request)
            url = token_url(svc.settings, root)
            body = await anyio.to_thread.run_sync(
                token_response, authority(svc), svc.repo, pairs, url
            )
        except OAuthError as err:
            return _oauth_error(err)
        except FhirError as err:  # the database is busy: the client may retry
            status = 503 if err.status == 503 else 500
            error = "temporarily_unavailable" if status == 503 else "server_error"
            return JSONResponse({"error": error}, status_code=status, headers=NO_STORE)
        except Exception:
            log.exception("unexpected failure at the token endpoint")
            return JSONResponse({"error": "server_error"}, status_code=500, headers=NO_STORE)
        return JSONResponse(body, headers=NO_STORE)

    async def configuration(request: Request) -> JSONResponse:
        return JSONResponse(smart_configuration(svc, str(request.base_url)))

    app.add_api_route("/auth/token", token, methods=["POST"], name="token")
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        app.add_api_route(path, configuration, methods=["GET"], name=f"smart-configuration {path}")
