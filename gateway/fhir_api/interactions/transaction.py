"""batch and transaction: POST [base] with a Bundle (http://hl7.org/fhir/R4/http.html#transaction).

PLACEHOLDER until transactions land.
"""

from __future__ import annotations

from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services


def bundle(svc: Services, req: FhirRequest) -> FhirResponse:
    raise FhirError(Category.NOT_SUPPORTED, "batch/transaction is not implemented yet")
