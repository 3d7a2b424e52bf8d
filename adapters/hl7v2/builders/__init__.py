"""One builder per target FHIR resource (STYLE habit 3), plus what builders share: code
translation through the ConceptMaps in mappings/hl7v2/codes/ and deterministic resource ids.
Builders are pure: no storage, no logging (a segment holds personal data)."""

from __future__ import annotations

import uuid
from functools import cache

from mappings import load

# fixed once for this project: ids are uuid5(ID_NAMESPACE, "system|value") of a source identifier
ID_NAMESPACE = uuid.UUID("2ef65f7d-4886-4f00-b3a9-e8b236eb565d")


def resource_id(system: str, value: str) -> str:
    """A FHIR id derived from a source identifier: the same identifier always gives the same id,
    and the identifier itself (a HETU) never appears in it. Not a secret: the HETU space is small
    enough to enumerate, so the id is pseudonymous, not anonymous."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{system}|{value}"))


@cache
def _table(concept_map: str) -> tuple[dict[str, str], str | None]:
    """(source code -> first target code, the fixed default for unmapped codes or None)."""
    (group,) = load(f"hl7v2/codes/{concept_map}.json")["group"]
    pairs: dict[str, str] = {}
    for element in group["element"]:
        targets = [t["code"] for t in element.get("target", []) if t["equivalence"] != "unmatched"]
        if targets:
            pairs.setdefault(element["code"], targets[0])
    unmapped = group.get("unmapped", {})
    return pairs, unmapped.get("code") if unmapped.get("mode") == "fixed" else None


def translate(concept_map: str, code: str) -> str | None:
    """`code` translated by mappings/hl7v2/codes/`concept_map`.json; the map's fixed default for
    a code it does not list; None for an empty code or when the map has no default."""
    if not code:
        return None
    pairs, default = _table(concept_map)
    return pairs.get(code, default)
