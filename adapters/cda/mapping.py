"""The CDA structure as read from mappings/cda/ (kinds, sections, code systems, concept maps,
details), indexed for lookups both ways. Data in, lookups out: no document is read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mappings import load

LOINC = "2.16.840.1.113883.6.1"


@dataclass(frozen=True)
class Section:
    """One section of a kind: the builder that reads/writes it and how it is recognised."""

    builder: str
    code: dict[str, str]
    template_id: str | None = None
    title: str = ""


@dataclass(frozen=True)
class Kind:
    name: str
    template_ids: tuple[str, ...]
    code: dict[str, str] | None
    title: str
    set_id_root: str | None
    plan: bool
    export: bool
    sections: tuple[Section, ...]


@dataclass
class Structure:
    """Everything mappings/cda says, with the reverse indexes import needs."""

    raw: dict[str, Any]
    kinds: dict[str, Kind]
    by_template: dict[str, str] = field(default_factory=dict)
    oid_of: dict[str, str] = field(default_factory=dict)
    system_of: dict[str, str] = field(default_factory=dict)
    details: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    generic: dict[tuple[str, str], str] = field(default_factory=dict)
    raw_details_system: str = ""

    def section_of(self, kind: Kind, template_ids: list[str], code: tuple[str, str]) -> str | None:
        """The builder for a section of a document of `kind`, None when not recognised."""
        for section in kind.sections:
            if section.template_id in template_ids or (
                (section.code["codeSystem"], section.code["code"]) == code
            ):
                return section.builder
        return self.generic.get(code)

    def oid(self, system: str | None) -> str | None:
        """The OID CDA carries for a FHIR system URI; None when it has none."""
        if not system:
            return None
        if system.startswith("urn:oid:"):
            return system[8:]
        return self.oid_of.get(system)

    def system(self, oid: str) -> str:
        """The FHIR system URI for an OID (urn:oid:<oid> when the tables do not name it)."""
        return self.system_of.get(oid, f"urn:oid:{oid}")

    def entry_template(self, name: str) -> str:
        return str(self.raw["entry_templates"][name])

    def entry_code(self, name: str) -> dict[str, str]:
        return dict(self.raw["entry_codes"][name])


def _section(row: dict[str, Any]) -> Section:
    return Section(row["builder"], row["code"], row.get("templateId"), row.get("title", ""))


def _kind(name: str, row: dict[str, Any]) -> Kind:
    return Kind(
        name=name,
        template_ids=tuple(t["root"] for t in row["templateIds"]),
        code=row.get("code"),
        title=row.get("title", ""),
        set_id_root=row.get("set_id_root"),
        plan=bool(row.get("plan")),
        export=bool(row.get("export")),
        sections=tuple(_section(s) for s in row.get("sections", ())),
    )


@cache
def structure() -> Structure:
    raw = load("cda/kinds.json")
    systems = load("cda/code-systems.json")
    kinds = {name: _kind(name, row) for name, row in raw["kinds"].items()}
    s = Structure(raw=raw, kinds=kinds)
    for kind in kinds.values():
        for root in kind.template_ids:
            s.by_template[root] = kind.name
    for row in systems["code_systems"] + systems["identifier_systems"]:
        s.oid_of[row["fhir"]] = row["oid"]
        s.system_of[row["oid"]] = row["fhir"]
    details = load("cda/details.json")
    s.details, s.raw_details_system = details["kinds"], details["detail_code_system"]
    for row in raw["generic_sections"]:
        s.generic[(row["code"]["codeSystem"], row["code"]["code"])] = row["builder"]
    return s


def systems() -> dict[str, Any]:
    return dict(load("cda/code-systems.json"))


@cache
def concept_map(name: str) -> tuple[dict[str, str], str | None]:
    """A ConceptMap of mappings/cda/codes as {source code: target code} and its unmapped code."""
    group = load(f"cda/codes/{name}.json")["group"][0]
    table = {row["code"]: row["target"][0]["code"] for row in group["element"]}
    return table, (group.get("unmapped") or {}).get("code")


def translate(name: str, code: str | None) -> str | None:
    table, unmapped = concept_map(name)
    if code is None:
        return unmapped
    return table.get(code, unmapped)
