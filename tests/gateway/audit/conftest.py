"""Fixtures for the audit tests: one caller context with every field set, one with the least."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.audit.context import AuditContext

WHEN = datetime(2025, 3, 4, 12, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture
def ctx() -> AuditContext:
    """Kela's case worker (PractitionerRole pr-kela-1) reading for care management."""
    return AuditContext(
        client_id="kela-app",
        server="https://gw.example/fhir",
        organization_id="org-kela",
        practitioner_role_id="pr-kela-1",
        address="192.0.2.7",
        purpose_of_use=("CAREMGT",),
        request_id="req-42",
        when=WHEN,
    )


@pytest.fixture
def bare() -> AuditContext:
    """An organisation's system acting without naming a professional, purpose or address."""
    return AuditContext(
        client_id="hc-app", server="https://gw.example/fhir", organization_id="org-hc"
    )
