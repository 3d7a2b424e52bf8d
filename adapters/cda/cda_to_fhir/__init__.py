"""CDA -> FHIR: one reader per target resource (goal, service_request with its Task, care_team,
care_plan for the plan's own sections), the header and Provenance (document), participants
(parties) and the import's state (context). Pure: a transaction Bundle out, nothing stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.cda.cda_to_fhir import care_plan, care_team, goal, service_request
from adapters.cda.cda_to_fhir.context import Doc

# builder name of mappings/cda/kinds.json -> its reader
BUILDERS: dict[str, Callable[[Doc, Any, dict[str, Any], str], None]] = {
    "needs": care_plan.needs,
    "goals": goal.goals,
    "services": service_request.services,
    "network": care_team.network,
    "follow-up": care_plan.follow_up,
    "participation": care_plan.participation,
}
