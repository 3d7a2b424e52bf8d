"""One builder per target FHIR resource (STYLE habit 3), plus what builders share: code
translation through the ConceptMaps in mappings/hl7v2/codes/. Resource ids come from the
caller's `adapters.ids.Ids` (a keyed pseudonym for a person's HETU). Builders are pure: no
storage, no logging (a segment holds personal data)."""

from __future__ import annotations

from functools import cache

from mappings import load


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
