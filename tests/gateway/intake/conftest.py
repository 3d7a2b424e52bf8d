"""Fixtures of the HL7 v2 intake tests: `intake`, the `services` of tests/conftest.py (SQLite
and PostgreSQL; the shared fixture empties the intake's tables too), and messages from
samples/hl7v2/ as on the wire (CR segment ends)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.fhir_api.context import Services

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "hl7v2"


def sample(name: str) -> bytes:
    """samples/hl7v2/<name>.hl7 with CR segment ends, as UTF-8 bytes."""
    text = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8")
    return text.replace("\n", "\r").encode("utf-8")


@pytest.fixture
def intake(services: Services) -> Services:
    """The gateway's services with empty stores, as the intake tests use them."""
    return services
