"""FHIR -> CDA: one writer per source resource (goal, service_request with its Tasks,
care_team, care_plan for the plan's own sections), the header (document) and participants
(parties). Each section writer returns the lines of the section's narrative.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.cda.fhir_to_cda import care_plan, care_team, goal, service_request
from adapters.cda.fhir_to_cda.parties import Index
from adapters.cda.mapping import Structure

Writer = Callable[[Structure, Index, Any, dict[str, Any]], list[str]]

# builder name of mappings/cda/kinds.json -> its writer
WRITERS: dict[str, Writer] = {
    "needs": care_plan.needs,
    "goals": goal.goals,
    "services": service_request.services,
    "network": care_team.network,
    "follow-up": care_plan.follow_up,
    "participation": care_plan.participation,
}
