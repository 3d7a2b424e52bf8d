"""Words for codes: a CodeableConcept or Coding shown to the client as its display in the
client's language, never as the code itself.

The displays come from our CodeSystems (`fhir_profiles.display(system, code, lang)`: Finnish
`display`, English the `en` designation); where that gives nothing, the coding's own `display`.
A concept with no display at all is shown by its `text`, else as nothing: a bare code is never
client text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fhir_profiles

Lookup = Callable[[str, str, str], str | None]


def _profiles_lookup() -> Lookup | None:
    found = getattr(fhir_profiles, "display", None)
    return found if callable(found) else None


def coding_display(coding: Any, lang: str) -> str:
    if not isinstance(coding, Mapping):
        return ""
    system, code = coding.get("system"), coding.get("code")
    lookup = _profiles_lookup()
    if lookup is not None and isinstance(system, str) and isinstance(code, str):
        try:
            found = lookup(system, code, lang)
        except (KeyError, LookupError, ValueError):
            found = None
        if found:
            return str(found)
    display = coding.get("display")
    return display.strip() if isinstance(display, str) else ""


def concept_display(concept: Any, lang: str, system: str | None = None) -> str:
    """The first coding's words (of `system` when given), else the concept's text."""
    if not isinstance(concept, Mapping):
        return ""
    for coding in concept.get("coding") or []:
        if system is None or (isinstance(coding, Mapping) and coding.get("system") == system):
            words = coding_display(coding, lang)
            if words:
                return words
    text = concept.get("text")
    return text.strip() if isinstance(text, str) else ""


def has_code(concept: Any, system: str, code: str) -> bool:
    if not isinstance(concept, Mapping):
        return False
    return any(
        isinstance(c, Mapping) and c.get("system") == system and c.get("code") == code
        for c in concept.get("coding") or []
    )
