"""The one rule every conditional interaction shares (http://hl7.org/fhir/R4/http.html#ccreate,
#cond-update, #cdelete): lock the type's conditional writers, find the live resources matching
the criteria, and refuse with 412 when more than one matches.

Used by conditional create, update, delete and the same entries inside batch/transaction; it
must never write anything itself. Given the request's disclosure gate, a resource the caller may
not see does not match (it counts as not existing: never a 412 that reveals it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, Services
from gateway.storage.base import Session

if TYPE_CHECKING:
    from gateway.consent.enforcement import Gate

Key = tuple[str, str]
# Parameters that shape a response, never criteria of a conditional request.
NOT_CRITERIA = ("_format", "_pretty")


def lock_key(resource_type: str) -> str:
    """The lock every conditional writer of a type takes first (transactions take it early)."""
    return f"conditional-create:{resource_type}"


def criteria(req: FhirRequest) -> list[tuple[str, str]]:
    """The request's query parameters that are conditional criteria."""
    return [(k, v) for k, v in req.params if k not in NOT_CRITERIA]


def single_match(
    svc: Services,
    session: Session,
    resource_type: str,
    params: list[tuple[str, str]] | str,
    what: str,
    gate: Gate | None = None,
) -> Key | None:
    """The one live resource matching `params` (a list or a query string) that `gate` lets the
    caller see (None: no gate, every resource counts), or None.

    Takes the type's conditional lock first, so two conditional writers of the same criteria
    cannot both see "no match" and both create.
    """
    if isinstance(params, str):
        params = parse_qsl(params.lstrip("?"), keep_blank_values=True)
    if not params:
        raise FhirError(Category.INVALID, f"{what} needs search criteria")
    session.lock(lock_key(resource_type))
    matches = svc.search.match_keys(session, resource_type, params, gate)
    if len(matches) > 1:
        raise FhirError(
            Category.PRECONDITION_FAILED,
            f"{what} matched {len(matches)} resources; criteria must be more selective",
        )
    return matches[0] if matches else None
