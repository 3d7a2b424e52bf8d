"""The CapabilityStatement at /metadata. PLACEHOLDER until it is generated from what we serve."""

from __future__ import annotations

from gateway.fhir_api.context import RESOURCE_TYPES, FhirRequest, FhirResponse, Services


def capability_statement(svc: Services, req: FhirRequest) -> FhirResponse:
    return FhirResponse(
        200,
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-22",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [{"mode": "server", "resource": [{"type": t} for t in RESOURCE_TYPES]}],
        },
    )
