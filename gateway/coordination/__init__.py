"""The coordination workflows of the client coordinator model (asiakasvastaavamalli): who
coordinates, the named coordinator and its escorted handover, network responsibilities, overlaps,
follow-up, the final summary, the client-readable plan and client participation, each a FHIR
`$`-operation (gateway/fhir_api/operations.py) over the same gate and transaction as REST.

`ALL_OPERATIONS` is what app.py registers, in the catalogue order of issue 4; each workflow
module declares its own `OPERATIONS`.
"""

from __future__ import annotations

from gateway.coordination import (
    client_plan,
    coordinator,
    final_summary,
    follow_up,
    handover,
    overlaps,
    participation,
    responsibilities,
    who_coordinates,
)
from gateway.fhir_api.operations import Operation

ALL_OPERATIONS: tuple[Operation, ...] = (
    *who_coordinates.OPERATIONS,
    *coordinator.OPERATIONS,
    *handover.OPERATIONS,
    *responsibilities.OPERATIONS,
    *overlaps.OPERATIONS,
    *follow_up.OPERATIONS,
    *final_summary.OPERATIONS,
    *client_plan.OPERATIONS,
    *participation.OPERATIONS,
)
