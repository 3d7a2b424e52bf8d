"""Where `$import-cda` finds the document (gateway/documents/body.py): the raw body, or one
Parameters `document` as an Attachment or a Binary, base64 (line breaks allowed)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.documents.body import document_bytes
from gateway.errors import FhirError
from gateway.fhir_api.context import FhirRequest

DOC = b"<ClinicalDocument/>"


def request(resource: dict[str, Any] | None = None, raw: bytes = b"") -> FhirRequest:
    return FhirRequest(
        "POST", "http://x/fhir", operation="import-cda", resource=resource, raw_body=raw
    )


def params(*parameter: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parameter)}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_the_raw_body() -> None:
    assert document_bytes(request(raw=DOC)) == DOC


def test_an_attachment_and_a_binary() -> None:
    attachment = {"name": "document", "valueAttachment": {"data": b64(DOC)}}
    binary = {"name": "document", "resource": {"resourceType": "Binary", "data": b64(DOC)}}
    assert document_bytes(request(params(attachment))) == DOC
    assert document_bytes(request(params(binary))) == DOC


def test_wrapped_base64_is_accepted() -> None:
    wrapped = "\n".join(b64(DOC * 10)[i : i + 76] for i in range(0, len(b64(DOC * 10)), 76))
    attachment = {"name": "document", "valueAttachment": {"data": wrapped}}
    assert document_bytes(request(params(attachment))) == DOC * 10


@pytest.mark.parametrize(
    "body",
    [
        params(),
        params({"name": "document", "valueString": "x"}),
        params({"name": "document", "valueAttachment": {"data": "%%%"}}),
        params({"name": "document", "valueAttachment": {"url": "file:///etc/passwd"}}),
        params({"name": "document", "valueAttachment": {"data": "ä"}}),
        params({"name": "other", "valueString": "x"}),
        params(
            {"name": "document", "valueAttachment": {"data": b64(DOC)}},
            {"name": "document", "valueAttachment": {"data": b64(DOC)}},
        ),
        {"resourceType": "Patient"},
    ],
)
def test_anything_else_is_a_400(body: dict[str, Any]) -> None:
    with pytest.raises(FhirError) as caught:
        document_bytes(request(body))
    assert caught.value.status == 400


def test_no_body_is_a_400() -> None:
    with pytest.raises(FhirError) as caught:
        document_bytes(request())
    assert caught.value.status == 400
