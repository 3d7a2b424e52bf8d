"""search: GET [base]/[type]?params and POST [base]/[type]/_search (http://hl7.org/fhir/R4/search.html).

The search engine filters through the request's disclosure gate (gateway/search/visibility.py,
bundle.py); here the gate decides whether the caller may search at all.
"""

from __future__ import annotations

from gateway.fhir_api.context import FhirRequest, FhirResponse, Services


def search(svc: Services, req: FhirRequest) -> FhirResponse:
    req.gate.start("search-type" if req.resource_type else "search-system", req.resource_type)
    return svc.search.search(svc, req)
