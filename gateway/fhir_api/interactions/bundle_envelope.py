"""The Bundle posted to [base]: its envelope (type, size, structure without the entry resources)
and its entries, each checked into an `Entry` or the FhirError that makes it unusable.

Problems outside any entry fail the whole request; problems of one entry belong to that entry (a
batch answers them there, a transaction fails). Never touches storage.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import Category, FhirError, Issue, invalid
from gateway.fhir_api.context import Services
from gateway.fhir_api.interactions.bundle_entries import Entry, check_full_urls, parse_entry
from gateway.fhir_api.interactions.bundle_errors import at_entry
from gateway.validation.validator import structure_issues

KINDS = ("transaction", "batch")
_ENTRY_RE = re.compile(r"^Bundle\.entry\[(\d+)\]")


def read_bundle(svc: Services, body: Any, base: str) -> tuple[str, list[Entry | FhirError]]:
    """The Bundle's type and its entries in order, each checked."""
    kind, raw = _envelope(svc, body)
    return kind, check_full_urls(_entries(svc, body, raw, base))


def _envelope(svc: Services, body: Any) -> tuple[str, list[Any]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise invalid("POST [base] takes a Bundle of type batch or transaction", "resourceType")
    kind = body.get("type")
    if kind not in KINDS:
        raise invalid("Bundle.type must be 'transaction' or 'batch'", "Bundle.type")
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise invalid("Bundle.entry must be a list", "Bundle.entry")
    limit = svc.settings.max_bundle_entries
    if len(entries) > limit:
        raise FhirError(
            Category.TOO_LARGE, f"the Bundle has more than {limit} entries", ("Bundle.entry",)
        )
    return kind, entries


def _entries(svc: Services, body: dict, raw: list[Any], base: str) -> list[Entry | FhirError]:
    """Entries checked one by one; envelope problems outside any entry fail the whole request."""
    per_entry = _envelope_issues(body, raw)
    out: list[Entry | FhirError] = []
    for index, item in enumerate(raw):
        try:
            entry = parse_entry(svc, item, index, base)
            if index in per_entry:
                issues = per_entry[index]
                raise FhirError(Category.INVALID, issues[0].diagnostics, issues=issues)
            out.append(entry)
        except FhirError as err:
            out.append(at_entry(err, index))
    return out


def _envelope_issues(body: dict, raw: list[Any]) -> dict[int, list[Issue]]:
    """Structure issues of the Bundle itself; entry resources are checked separately."""
    envelope = {**body, "entry": [_without_resource(e) for e in raw]}
    per_entry: dict[int, list[Issue]] = {}
    outside: list[Issue] = []
    for issue in structure_issues("Bundle", envelope):
        found = _ENTRY_RE.match(issue.expression[0] if issue.expression else "")
        if found:
            per_entry.setdefault(int(found.group(1)), []).append(issue)
        else:
            outside.append(issue)
    if outside:
        raise FhirError(Category.INVALID, outside[0].diagnostics, issues=outside)
    return per_entry


def _without_resource(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    return {k: v for k, v in entry.items() if k != "resource"}
