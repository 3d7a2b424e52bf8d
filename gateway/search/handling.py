"""Lenient and strict handling of search parameters the gateway does not support
(http://hl7.org/fhir/R4/search.html#errors): ignored and reported in an OperationOutcome entry by
default, a 400 naming them with `Prefer: handling=strict`. Messages name parameters, never values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.errors import Category, FhirError
from gateway.search.query import Query

if TYPE_CHECKING:
    from gateway.fhir_api.context import FhirRequest


def strict(req: FhirRequest) -> bool:
    prefer = (req.header("prefer") or "").replace(" ", "").lower()
    return "handling=strict" in prefer.split(";") or "handling=strict" in prefer.split(",")


def lenient_outcome(q: Query) -> dict[str, Any] | None:
    issues = [
        {
            "severity": "warning",
            "code": "not-supported",
            "diagnostics": f"search parameter '{name[:80]}' is not supported and was ignored",
            "expression": [name[:80]],
        }
        for name in q.ignored
    ]
    return {"resourceType": "OperationOutcome", "issue": issues} if issues else None


def reject_unknown(q: Query) -> None:
    if q.ignored:
        names = ", ".join(q.ignored)[:200]
        raise FhirError(
            Category.INVALID, f"unknown search parameter(s): {names}", q.ignored, "not-supported"
        )
