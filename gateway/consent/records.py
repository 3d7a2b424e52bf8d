"""Reading the consent tables against one resource: its client ids, its holders, its labels.

Pure functions over plain dicts. Only literal relative references (`Type/id`, optionally
`/_history/n`) count; absolute, contained (`#x`) and identifier-only references tie a resource
to nobody, so a non-custodian is denied rather than guessed at (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gateway.consent.vocabulary import (
    CLIENT_LINKS,
    CUSTODIAN_EXTENSION,
    HOLDERS,
    PROTECTED_LABELS,
    SELF,
    Coding,
    Path,
)

Key = tuple[str, str]  # (resource type, id)


def reference_key(ref: Any) -> Key | None:
    """`{"reference": "Patient/x"}` -> ("Patient", "x"); None for anything else."""
    text = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(text, str):
        return None
    parts = text.split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) != 2 or not parts[0].isalpha() or not parts[0][:1].isupper() or not parts[1]:
        return None
    return parts[0], parts[1]


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def has_coding(concepts: Any, coding: Coding) -> bool:
    """Whether a CodeableConcept (or a list of them, or of Codings) carries (system, code)."""
    for concept in _items(concepts):
        if not isinstance(concept, dict):
            continue
        for c in _items(concept.get("coding", concept)):
            if isinstance(c, dict) and (c.get("system"), c.get("code")) == coding:
                return True
    return False


def references_at(resource: Mapping[str, Any], path: Path) -> Iterator[Key]:
    """The keys of the literal references at `path` in `resource`."""
    for item in _items(resource.get(path.element)):
        if not isinstance(item, dict):
            continue
        if path.coded and not has_coding(item.get(path.coded[0]), path.coded[1]):
            continue
        for ref in _items(item.get(path.reference) if path.reference else item):
            key = reference_key(ref)
            if key:
                yield key


def client_links(resource: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[Key]]:
    """(client ids referenced directly, other resources whose client counts) of a plan resource."""
    clients: set[str] = set()
    via: set[Key] = set()
    for path in CLIENT_LINKS.get(str(resource.get("resourceType")), ()):
        if path is SELF:
            clients.add(str(resource.get("id")))
            continue
        for rtype, rid in references_at(resource, path):
            if rtype == "Patient":
                clients.add(rid)
            elif rtype in CLIENT_LINKS:
                via.add((rtype, rid))
    return frozenset(clients), frozenset(via)


def holder_refs(resource: Mapping[str, Any]) -> frozenset[Key]:
    """Organization/PractitionerRole keys naming who holds this record (table + extension)."""
    found = set(_custodian_extension(resource))
    for path in HOLDERS.get(str(resource.get("resourceType")), ()):
        found.update(references_at(resource, path))
    return frozenset(k for k in found if k[0] in ("Organization", "PractitionerRole"))


def _custodian_extension(resource: Mapping[str, Any]) -> Iterator[Key]:
    for ext in _items(resource.get("extension")):
        if isinstance(ext, dict) and ext.get("url") == CUSTODIAN_EXTENSION:
            key = reference_key(ext.get("valueReference"))
            if key:
                yield key


def holder_orgs(refs: frozenset[Key], role_orgs: Mapping[str, str | None]) -> frozenset[str]:
    """Organisation ids of holder references; a PractitionerRole counts as its organization."""
    orgs = {rid for rtype, rid in refs if rtype == "Organization"}
    for rtype, rid in refs:
        org = role_orgs.get(rid) if rtype == "PractitionerRole" else None
        if org:
            orgs.add(org)
    return frozenset(orgs)


def role_organization(role: Mapping[str, Any]) -> str | None:
    """The organisation id of a PractitionerRole, if it names one literally."""
    key = reference_key(role.get("organization"))
    return key[1] if key and key[0] == "Organization" else None


def is_protected(patient: Mapping[str, Any]) -> bool:
    """TURVAKIELTO: the Patient's meta.security carries one of PROTECTED_LABELS."""
    labels = (patient.get("meta") or {}).get("security")
    return any(has_coding(labels, label) for label in PROTECTED_LABELS)
