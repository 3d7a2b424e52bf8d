"""search: GET [base]/[type]?params and POST [base]/[type]/_search (http://hl7.org/fhir/R4/search.html)."""

from __future__ import annotations

from gateway.fhir_api.context import FhirRequest, FhirResponse, Services


def search(svc: Services, req: FhirRequest) -> FhirResponse:
    return svc.search.search(svc, req)
