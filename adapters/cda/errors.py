"""The one error type of the CDA adapter: a stable code, a message and, where known, a line.
A message never quotes document content (names, values, text): a CDA document holds personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

# code -> what it means; the codes are stable (the gateway maps them to HTTP and OperationOutcome).
CODES: dict[str, str] = {
    "too-large": "the document is larger than allowed, or exceeds a parser resource limit",
    "too-deep": "elements are nested deeper than allowed",
    "dtd-forbidden": "the document has a DOCTYPE (DTDs and entity declarations are refused)",
    "not-well-formed": "the document is not well-formed XML",
    "not-cda": "the root element is not an HL7 CDA R2 ClinicalDocument",
    "schema-invalid": "the document does not validate against the CDA R2 schema",
    "not-recognised": "a CDA R2 document of no known kind with no section we can map",
    "missing-element": "a part the document's kind requires is absent",
    "invalid-value": "a value cannot be converted (a malformed timestamp, ...)",
    "unknown-kind": "the requested document kind cannot be written",
    "export-incomplete": "the resources lack what the document kind requires",
}


@dataclass(frozen=True)
class SchemaIssue:
    """One schema violation: the line of the offending element, a content-free message (the
    libxml2 error kind) and the element path (element names only, never values)."""

    line: int
    message: str
    path: str


class CdaError(Exception):
    """A CDA input problem with a stable `code`; `issues` lists schema violations for
    `schema-invalid`; `details` lists what was not recognised for `not-recognised` (templateIds
    and section codes: never content)."""

    def __init__(
        self,
        code: str,
        message: str,
        line: int | None = None,
        *,
        issues: tuple[SchemaIssue, ...] = (),
        details: tuple[str, ...] = (),
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown CdaError code {code!r}")
        super().__init__(f"{code}: {message}" + (f" (line {line})" if line else ""))
        self.code = code
        self.message = message
        self.line = line
        self.issues = issues
        self.details = details
