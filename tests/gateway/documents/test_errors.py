"""CdaError -> FhirError (gateway/documents/errors.py): every adapter code is a 4xx with its code
and line, and never a 500 even for a code the table does not know yet."""

from __future__ import annotations

import pytest

from adapters.cda.errors import CODES, CdaError, SchemaIssue
from gateway.documents.errors import CATEGORIES, to_fhir_error, translated
from gateway.errors import FhirError


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_adapter_code_is_a_4xx_naming_code_and_line(code: str) -> None:
    err = to_fhir_error(CdaError(code, "what went wrong", 12))
    assert 400 <= err.status < 500
    (issue, *_) = err.outcome()["issue"]
    assert code in issue["diagnostics"] and "line 12" in issue["diagnostics"]
    assert issue["expression"] == ["line 12"]


def test_every_adapter_code_has_a_row() -> None:
    assert set(CODES) <= set(CATEGORIES)


def test_statuses_of_the_main_codes() -> None:
    statuses = {c: to_fhir_error(CdaError(c, "m")).status for c in CODES}
    assert statuses["too-large"] == 413
    assert statuses["dtd-forbidden"] == statuses["not-well-formed"] == 400
    if "not-recognised" in CODES:
        assert statuses["not-recognised"] == 422


def test_schema_issues_are_listed_with_paths_and_lines() -> None:
    issues = (SchemaIssue(3, "element-content", "/ClinicalDocument/foo"),)
    err = to_fhir_error(CdaError("schema-invalid", "1 violation", 3, issues=issues))
    listed = err.outcome()["issue"]
    assert len(listed) == 2
    assert listed[1]["expression"] == ["/ClinicalDocument/foo", "line 3"]


def test_translated_turns_a_cda_error_into_a_fhir_error() -> None:
    with pytest.raises(FhirError) as caught, translated():
        raise CdaError("not-cda", "root", 1)
    assert caught.value.status == 400
