"""FHIR XML: PLACEHOLDER until XML support lands."""

from __future__ import annotations

from typing import Any

from gateway.errors import Category, FhirError


def parse(raw: bytes, max_depth: int) -> dict[str, Any]:
    raise FhirError(Category.UNSUPPORTED_MEDIA, "XML is not supported yet")


def render(resource: dict[str, Any], pretty: bool) -> bytes:
    raise FhirError(Category.NOT_ACCEPTABLE, "XML is not supported yet")
