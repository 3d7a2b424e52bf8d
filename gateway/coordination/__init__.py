"""The coordination workflows of the client coordinator model (asiakasvastaavamalli): who
coordinates, the named coordinator and its escorted handover, network responsibilities, overlaps,
follow-up, the final summary, the client-readable plan and client participation, each a FHIR
`$`-operation (gateway/fhir_api/operations.py) over the same gate and transaction as REST.

`ALL_OPERATIONS` is what app.py registers; a workflow module declares its own `OPERATIONS`.
"""

from __future__ import annotations

import importlib
import logging

from gateway.fhir_api.operations import Operation

# The workflow modules, in catalogue order (issue 4).
WORKFLOWS = (
    "who_coordinates",
    "coordinator",
    "handover",
    "responsibilities",
    "overlaps",
    "follow_up",
    "final_summary",
    "client_plan",
    "participation",
)


def _collect() -> tuple[Operation, ...]:
    found: list[Operation] = []
    for name in WORKFLOWS:
        try:
            module = importlib.import_module(f"gateway.coordination.{name}")
        except Exception as failed:  # TODO(lead): static imports once every workflow landed
            if f"gateway.coordination.{name}" != getattr(failed, "name", None):
                logging.getLogger("gateway.coordination").warning(
                    "workflow %s not loaded: %s", name, failed
                )
            continue
        found.extend(getattr(module, "OPERATIONS", ()))
    return tuple(found)


ALL_OPERATIONS: tuple[Operation, ...] = _collect()
