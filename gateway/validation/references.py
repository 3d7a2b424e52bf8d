"""What resource type a literal reference names (http://hl7.org/fhir/R4/references.html#literal):
relative `Type/id[/_history/v]`, absolute URLs ending so, conditional `Type?query`, contained
`#id`, and `urn:uuid:`/`urn:oid:` (which name no type).

Pure string work: never resolves a reference against storage or the network.
"""

from __future__ import annotations

import re
from typing import Any

_ID = r"[A-Za-z0-9\-\.]{1,64}"
_TAIL = re.compile(rf"(?:^|/)([A-Za-z]+)/{_ID}(?:/_history/{_ID})?$")
_RELATIVE = re.compile(rf"([A-Za-z]+)/{_ID}(?:/_history/{_ID})?")


class BadReference(ValueError):
    """The reference is malformed or does not resolve inside its resource; the message says how."""


def referenced_type(ref: str, contained: dict[str, str]) -> str | None:
    """The type `ref` names, None when it names none; BadReference when it is malformed.

    `contained` maps the ids of the container's contained resources to their types.
    """
    if ref.startswith("#"):
        if ref == "#":
            return None  # the container itself
        if ref[1:] not in contained:
            raise BadReference("'#…' does not resolve to a contained resource")
        return contained[ref[1:]]
    if ref.startswith("urn:"):
        return None
    if "://" in ref:
        m = _TAIL.search(ref.split("?", 1)[0])
        return m.group(1) if m else None
    if "?" in ref:
        return ref.split("?", 1)[0]  # conditional reference, resolved in transactions
    if not _RELATIVE.fullmatch(ref):
        raise BadReference("a relative reference must look like Type/id")
    return ref.split("/", 1)[0]


def contained_index(resource: dict[str, Any]) -> dict[str, str]:
    """Contained resource id -> resourceType, for resolving `#id` references."""
    contained = resource.get("contained")
    if not isinstance(contained, list):
        return {}
    return {
        c["id"]: str(c.get("resourceType"))
        for c in contained
        if isinstance(c, dict) and isinstance(c.get("id"), str)
    }
