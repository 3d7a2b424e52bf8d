"""Clinical documents in and out of the gateway: CDA R2 plan documents imported as stored plans
and plans exported as CDA, each a FHIR `$`-operation over the same gate and transaction as REST.
`DOCUMENT_OPERATIONS` is what app.py registers besides the coordination workflows."""

from __future__ import annotations

from gateway.documents import export_cda, import_cda
from gateway.fhir_api.operations import Operation

DOCUMENT_OPERATIONS: tuple[Operation, ...] = (*import_cda.OPERATIONS, *export_cda.OPERATIONS)
