"""CDA adapter errors at the gateway's edge: every `CdaError` becomes a 4xx OperationOutcome with
its stable code and the line it was found on, never document content and never a 500.

The table says which HTTP category each code is (adapters/cda/errors.py CODES); a code added to
the adapter later without a row here is a 400, not a fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from adapters.cda.errors import CdaError
from gateway.errors import Category, FhirError, Issue

# CdaError.code -> the gateway's error category (gateway/errors.py maps it to HTTP).
CATEGORIES: dict[str, Category] = {
    "too-large": Category.TOO_LARGE,
    "too-deep": Category.INVALID,
    "dtd-forbidden": Category.INVALID,
    "not-well-formed": Category.INVALID,
    "not-cda": Category.INVALID,
    "schema-invalid": Category.INVALID,
    "unknown-kind": Category.INVALID,
    "not-recognised": Category.UNPROCESSABLE,
    "missing-element": Category.UNPROCESSABLE,
    "invalid-value": Category.UNPROCESSABLE,
    "export-incomplete": Category.UNPROCESSABLE,
}
# OperationOutcome.issue.code per CdaError code where the category's default says too little.
ISSUE_CODES: dict[str, str] = {
    "dtd-forbidden": "security",
    "not-well-formed": "structure",
    "schema-invalid": "structure",
    "too-deep": "too-costly",
    "not-recognised": "not-supported",
    "missing-element": "required",
    "invalid-value": "value",
}
# At most this many schema issues or unrecognised items are listed in one outcome.
MAX_LISTED = 50


def _where(line: int | None) -> tuple[str, ...]:
    return (f"line {line}",) if line else ()


def to_fhir_error(error: CdaError) -> FhirError:
    """The FhirError for a CdaError: its code in every diagnostics text, the line as the issue's
    location, each schema issue (line, element path) and each unrecognised item as an issue."""
    category = CATEGORIES.get(error.code, Category.INVALID)
    code = ISSUE_CODES.get(error.code)
    head = f"CDA {error.code}: {error.message}" + (f" (line {error.line})" if error.line else "")
    issues = [Issue(head, _where(error.line), code=code)]
    for item in error.issues[:MAX_LISTED]:
        text = f"CDA {error.code}: {item.message} at {item.path}"
        issues.append(Issue(text, (item.path, *_where(item.line)), code=code))
    for detail in getattr(error, "details", ())[:MAX_LISTED]:
        issues.append(Issue(f"CDA {error.code}: {detail}", (), code=code))
    return FhirError(category, head, issues=issues)


@contextmanager
def translated() -> Iterator[None]:
    """Run adapter code; a CdaError leaves as the matching FhirError."""
    try:
        yield
    except CdaError as error:
        raise to_fhir_error(error) from None
