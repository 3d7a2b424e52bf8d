"""Errors of one Bundle entry: re-homed under `Bundle.entry[i]` so the caller sees which entry
failed and where inside it. Never adds values from the resource to a message, only paths.
"""

from __future__ import annotations

from gateway.errors import Category, FhirError, Issue
from gateway.fhir_api.context import RESOURCE_TYPES

# Expressions the single-resource interactions use, and where they live inside an entry.
_ALIASES = {
    "If-Match": "request.ifMatch",
    "If-None-Exist": "request.ifNoneExist",
    "body": "resource",
    "resourceType": "resource.resourceType",
}
_RESOURCE_NAMES = (*RESOURCE_TYPES, "Binary", "Parameters")


def entry_expression(expression: str, prefix: str) -> str:
    """`CarePlan.status` -> `Bundle.entry[2].resource.status`; entry paths stay as they are."""
    if expression.startswith("Bundle."):
        return expression
    if expression in _ALIASES:
        return f"{prefix}.{_ALIASES[expression]}"
    head, sep, rest = expression.partition(".")
    if head in _RESOURCE_NAMES:
        return f"{prefix}.resource{sep}{rest}"
    return prefix


def at_entry(err: FhirError, index: int) -> FhirError:
    """The same failure, with each issue's diagnostics and expression naming entry `index`."""
    prefix = f"Bundle.entry[{index}]"
    issues = [_issue(issue, prefix) for issue in err.issues]
    return FhirError(err.category, issues[0].diagnostics, issues=issues)


def _issue(issue: Issue, prefix: str) -> Issue:
    text = issue.diagnostics
    if not text.startswith(prefix):
        text = f"{prefix}: {text}"
    paths = tuple(dict.fromkeys(entry_expression(e, prefix) for e in issue.expression))
    return Issue(text, paths or (prefix,), issue.severity, issue.code)


def combined(errors: list[FhirError]) -> FhirError:
    """One error holding every entry's issues (a transaction reports all invalid entries)."""
    categories = {e.category for e in errors}
    category = categories.pop() if len(categories) == 1 else Category.INVALID
    issues = [issue for err in errors for issue in err.issues]
    return FhirError(category, issues[0].diagnostics, issues=issues)
