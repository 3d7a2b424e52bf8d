"""One error vocabulary for the whole gateway, mapped to HTTP status and OperationOutcome
in one table.

Every failure a caller can cause is a `FhirError` of one `Category`; nothing guesses a status from
message text. This module must never include personal data in what it renders: messages name
paths and rules, not values from a client's record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Category(Enum):
    INVALID = "invalid"
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not-found"
    GONE = "gone"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    NOT_ACCEPTABLE = "not-acceptable"
    CONFLICT = "conflict"
    PRECONDITION_FAILED = "precondition-failed"
    TOO_LARGE = "too-large"
    UNSUPPORTED_MEDIA = "unsupported-media"
    UNPROCESSABLE = "unprocessable"
    NOT_SUPPORTED = "not-supported"
    BUSY = "busy"
    FAULT = "fault"


# category -> (HTTP status, OperationOutcome.issue.code); http://hl7.org/fhir/R4/http.html
TABLE: dict[Category, tuple[int, str]] = {
    Category.INVALID: (400, "invalid"),
    Category.UNAUTHORIZED: (401, "login"),
    Category.FORBIDDEN: (403, "forbidden"),
    Category.NOT_FOUND: (404, "not-found"),
    Category.METHOD_NOT_ALLOWED: (405, "not-supported"),
    Category.NOT_ACCEPTABLE: (406, "not-supported"),
    Category.CONFLICT: (409, "conflict"),
    Category.GONE: (410, "deleted"),
    Category.PRECONDITION_FAILED: (412, "conflict"),
    Category.TOO_LARGE: (413, "too-costly"),
    Category.UNSUPPORTED_MEDIA: (415, "not-supported"),
    Category.UNPROCESSABLE: (422, "processing"),
    Category.NOT_SUPPORTED: (400, "not-supported"),
    Category.BUSY: (503, "transient"),
    Category.FAULT: (500, "exception"),
}


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: what went wrong and where (a FHIRPath-like expression)."""

    diagnostics: str
    expression: tuple[str, ...] = ()
    severity: str = "error"
    code: str | None = None  # overrides the category's code, e.g. "required", "value", "structure"

    def to_fhir(self, default_code: str) -> dict:
        issue: dict = {
            "severity": self.severity,
            "code": self.code or default_code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


@dataclass
class FhirError(Exception):
    """A failure with a category; rendered as an OperationOutcome by `outcome()`."""

    category: Category
    message: str
    expression: tuple[str, ...] | list[str] = ()
    code: str | None = None
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if not self.issues:
            self.issues = [Issue(self.message, tuple(self.expression), code=self.code)]

    @property
    def status(self) -> int:
        return TABLE[self.category][0]

    def outcome(self) -> dict:
        default_code = TABLE[self.category][1]
        return operation_outcome([i.to_fhir(default_code) for i in self.issues])


def operation_outcome(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def information(message: str, code: str = "informational") -> dict:
    return operation_outcome([{"severity": "information", "code": code, "diagnostics": message}])


def invalid(message: str, *expression: str, code: str | None = None) -> FhirError:
    return FhirError(Category.INVALID, message, expression, code=code)


def not_found(message: str) -> FhirError:
    return FhirError(Category.NOT_FOUND, message)
