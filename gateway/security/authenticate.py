"""The check of every FHIR request when `require_auth` is on: who calls (the bearer token), as
whom (the acting professional), and whether the granted scopes allow this interaction.

Acting professional: the calling system names it per request in the `X-Acting-Practitioner-Role`
header (`PractitionerRole/<id>` or `<id>`), not in the token, because one system token serves
many professionals of the organisation within its lifetime. The role is read on every request
through the repository, so a role that is deleted, made inactive or moved to another
organisation stops being usable at once. Missing or bad token: 401 with WWW-Authenticate;
a role that is not the caller's, or scopes that do not cover the interaction: 403.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import orjson

from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, Services, check_id
from gateway.fhir_api.interactions.bundle_entries import METHODS
from gateway.fhir_api.interactions.bundle_urls import parse_url
from gateway.security.caller import Caller
from gateway.security.scopes import ALL_TYPES, ENTRY_GET, ENTRY_PERMISSIONS, ROUTE_PERMISSIONS
from gateway.security.tokens import TokenError

if TYPE_CHECKING:
    from gateway.security.authority import Authority

ACTING_ROLE_HEADER = "x-acting-practitioner-role"
REALM = 'Bearer realm="fhir-plan-gateway"'
_DENY = "deny"  # the need of a route missing from the table: nobody has it


def is_public(method: str, route: str | None) -> bool:
    return ROUTE_PERMISSIONS.get((_method(method), route or ""), _DENY) is None


def authenticate(svc: Services, headers: dict[str, str]) -> Caller:
    """The caller of a request with these (lower-case) headers, or a 401/403 FhirError."""
    caller = bearer_caller(svc, headers)
    role = acting_role_id(headers)
    return caller if role is None else with_acting_role(svc, caller, role)


async def authenticate_request(svc: Services, headers: dict[str, str]) -> Caller:
    """`authenticate` for the event loop: the role lookup, a database read, runs in a thread
    except on the embedded store, where a one-row read costs less than the hand-off."""
    caller = bearer_caller(svc, headers)
    role = acting_role_id(headers)
    if role is None:
        return caller
    if svc.repo.dialect == "sqlite":
        return with_acting_role(svc, caller, role)
    return await anyio.to_thread.run_sync(with_acting_role, svc, caller, role)


def authority(svc: Services) -> Authority:
    if svc.security is None:
        raise FhirError(Category.FAULT, "authentication is not configured")
    return svc.security  # type: ignore[no-any-return]


def bearer_caller(svc: Services, headers: dict[str, str]) -> Caller:
    scheme, _, token = (headers.get("authorization") or "").strip().partition(" ")
    if not scheme:
        raise _unauthorized("a bearer token is required", None)
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'", "invalid_request")
    try:
        return authority(svc).verifier.caller(token.strip(), time.time())
    except TokenError as e:
        raise _unauthorized(str(e), "invalid_token") from None


def _unauthorized(message: str, error: str | None) -> FhirError:
    challenge = REALM if error is None else f'{REALM}, error="{error}"'
    return FhirError(Category.UNAUTHORIZED, message, headers={"WWW-Authenticate": challenge})


def acting_role_id(headers: dict[str, str]) -> str | None:
    value = headers.get(ACTING_ROLE_HEADER)
    if value is None:
        return None
    return check_id(value.strip().removeprefix("PractitionerRole/"), ACTING_ROLE_HEADER)


def with_acting_role(svc: Services, caller: Caller, role_id: str) -> Caller:
    """The caller acting as this PractitionerRole, if it exists, is active and belongs to the
    calling organisation; 403 otherwise (the same answer whether it is missing or foreign)."""
    with svc.repo.reader(consistent=False) as session:
        stored = session.current("PractitionerRole", role_id)
    role: dict[str, Any] = {} if stored is None or stored.deleted else orjson.loads(stored.body)
    owner = (role.get("organization") or {}).get("reference")
    if owner != caller.organization_reference or role.get("active") is False:
        raise FhirError(
            Category.FORBIDDEN,
            "the acting PractitionerRole is not an active role of the calling organisation",
            (ACTING_ROLE_HEADER,),
        )
    return caller.acting_as(role_id)


def authorize(caller: Caller, route: str | None, req: FhirRequest) -> None:
    """403 unless the caller's scopes allow this request (every entry of a batch/transaction)."""
    need = ROUTE_PERMISSIONS.get((_method(req.method), route or ""), _DENY)
    if need is None:
        return
    if need == "bundle":
        needs = _bundle_needs(req)
    elif need == "operation":
        needs = [req.operation_scope or (ALL_TYPES, "u")]
    else:
        needs = [(req.resource_type or ALL_TYPES, need)]
    for resource_type, letter in needs:
        if not caller.permits(resource_type, letter):
            raise FhirError(
                Category.FORBIDDEN,
                f"the access token's scopes do not allow '{letter}' on {resource_type}",
                headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope"'},
            )


def _bundle_needs(req: FhirRequest) -> list[tuple[str, str]]:
    """(type, letter) per entry. An entry this cannot parse is refused by the transaction
    interaction with the same parser, so it never runs and needs nothing here."""
    entries = req.resource.get("entry") if isinstance(req.resource, dict) else None
    needs = []
    for raw in entries if isinstance(entries, list) else []:
        request = raw.get("request") if isinstance(raw, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        url = request.get("url") if isinstance(request, dict) else None
        if method not in METHODS or not isinstance(url, str):
            continue
        try:
            target = parse_url(url.strip(), req.base, method, "Bundle.entry.request.url")
        except FhirError:
            continue
        letter = ENTRY_GET[target.id is not None] if method == "GET" else ENTRY_PERMISSIONS[method]
        needs.append((target.resource_type, letter))
    return needs


def _method(method: str) -> str:
    return "GET" if method == "HEAD" else method
