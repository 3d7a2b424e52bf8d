"""Plain words for the FHIR R4 status codes the final summary shows (Goal lifecycle and
achievement, ServiceRequest and Task status), Finnish first, English beside it.

Data only: these are FHIR's own value sets, not our CodeSystems, so `fhir_profiles.display`
has no words for them. Used by summary_text.py.
"""

from __future__ import annotations

# Status words of goals, services and responsibilities (R4 value sets) in plain words.
WORDS: dict[str, tuple[str, str]] = {
    "achieved": ("saavutettu", "achieved"),
    "sustaining": ("saavutettu ja pysyvä", "sustaining"),
    "in-progress": ("kesken", "in progress"),
    "improving": ("edistyy", "improving"),
    "worsening": ("heikentynyt", "worsening"),
    "no-change": ("ei muutosta", "no change"),
    "not-achieved": ("ei saavutettu", "not achieved"),
    "no-progress": ("ei edistystä", "no progress"),
    "not-attainable": ("ei saavutettavissa", "not attainable"),
    "proposed": ("ehdotettu", "proposed"),
    "planned": ("suunniteltu", "planned"),
    "accepted": ("hyväksytty", "accepted"),
    "active": ("voimassa", "active"),
    "on-hold": ("tauolla", "on hold"),
    "completed": ("valmis", "completed"),
    "cancelled": ("peruttu", "cancelled"),
    "rejected": ("hylätty", "rejected"),
    "revoked": ("peruttu", "revoked"),
    "draft": ("luonnos", "draft"),
    "requested": ("pyydetty", "requested"),
    "received": ("vastaanotettu", "received"),
    "ready": ("valmis aloitettavaksi", "ready"),
    "failed": ("epäonnistui", "failed"),
    "entered-in-error": ("virheellinen", "entered in error"),
}
# Where a Task's status reads otherwise than the same code of a goal or a service.
TASK_WORDS: dict[str, tuple[str, str]] = {
    "in-progress": ("käynnissä", "in progress"),
    "accepted": ("vastaanotettu", "accepted"),
}
# Task statuses of a responsibility that was not fulfilled (closed otherwise than completed).
NOT_FULFILLED = ("cancelled", "rejected", "failed", "entered-in-error")
