"""Validation on write against our profiles (fhir_profiles/profiles, compiled by SUSHI): which
profiles a resource must conform to, and the issues the StructureDefinition walker finds.

No Python library validates against FHIR profiles well (fhir.resources checks base structure
only; the HL7 validator is Java), so this is a small StructureDefinition walker of our own over
the differential: profile_tree.py compiles it, profile_walk.py walks the instance,
profile_rules.py checks cardinality, fixed[x], pattern[x], required bindings, type and Reference
target restrictions, extension slices and error-severity FHIRPath invariants (fhirpathpy).
Everything is compiled once per process. Profile URLs we do not define are ignored, as most
servers do by default. Never changes the resource; never puts an instance value in a message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import fhir_profiles
from gateway.errors import Issue
from gateway.validation.profile_rules import (
    Codes,
    Context,
    Invariant,
    compiled_fhirpath,
    truthy,
)
from gateway.validation.profile_tree import build
from gateway.validation.profile_walk import Tree, Walk
from gateway.validation.references import contained_index

log = logging.getLogger(__name__)
_CORE = "http://hl7.org/fhir/StructureDefinition/"


class Catalog:
    """Our StructureDefinitions, ValueSet expansions and the selection table, compiled lazily
    and kept (one per process in production: `default_catalog()`)."""

    def __init__(
        self,
        definitions: Iterable[dict[str, Any]],
        expand: Callable[[str], Codes | None],
        selection: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.definitions = {sd["url"]: sd for sd in definitions}
        self.expand = expand
        self.selection: list[tuple[str, Invariant, str]] = [
            (row["resourceType"], compiled_fhirpath(row["when"]), row["profile"])
            for row in selection
        ]
        self._trees: dict[str, Tree] = {}
        self._codes: dict[str, Codes | None] = {}

    def resource_type_of(self, url: str) -> str | None:
        """The resource type a (target) profile URL stands for; None when unknown."""
        if url in self.definitions:
            return str(self.definitions[url]["type"])
        return url[len(_CORE) :] if url.startswith(_CORE) else None

    def tree(self, url: str) -> Tree | None:
        """`("profile Name (url)", compiled tree)` of one of our definitions, else None."""
        if url not in self._trees:
            sd = self.definitions.get(url)
            if sd is None:
                return None
            kind = "extension" if sd["type"] == "Extension" else "profile"
            label = f"{kind} {sd.get('name', sd.get('id'))} ({url})"
            self._trees[url] = (label, build(sd, self.resource_type_of))
        return self._trees[url]

    def codes(self, url: str) -> Codes | None:
        if url not in self._codes:
            self._codes[url] = self.expand(url)
        return self._codes[url]

    def applicable(self, resource: dict[str, Any]) -> tuple[list[str], list[Issue]]:
        """Profile URLs `resource` must conform to (selected or claimed, with our base profiles),
        and issues for claims that cannot hold (a profile of another resource type)."""
        rtype = resource.get("resourceType")
        urls: list[str] = []
        issues: list[Issue] = []
        for row_type, when, url in self.selection:
            if row_type == rtype and url in self.definitions and _selected(when, resource):
                urls.append(url)
        meta = resource.get("meta")
        claimed = meta.get("profile") if isinstance(meta, dict) else None
        for i, raw in enumerate(claimed if isinstance(claimed, list) else []):
            url = raw.split("|", 1)[0] if isinstance(raw, str) else ""
            sd = self.definitions.get(url)
            if sd is None or sd.get("kind") != "resource":
                continue  # not ours: ignored
            if sd["type"] != rtype:
                where = f"{rtype}.meta.profile[{i}]"
                rule = f"profile {sd.get('name')} ({url}) is for {sd['type']}, not {rtype}"
                issues.append(Issue(f"{where}: {rule}", (where,), code="invalid"))
            else:
                urls.append(url)
        return self._with_bases(urls), issues

    def _with_bases(self, urls: list[str]) -> list[str]:
        out: list[str] = []
        for url in urls:
            while url in self.definitions and url not in out:
                out.append(url)
                url = str(self.definitions[url].get("baseDefinition", "")).split("|", 1)[0]
        return out


def _selected(when: Invariant, resource: dict[str, Any]) -> bool:
    try:
        return truthy(when(resource, {"resource": resource}))
    except Exception as e:  # fhirpathpy raises many types; fail closed, never log the instance
        log.warning("a profile selection rule could not be evaluated (%s)", type(e).__name__)
        return True  # the profile's own rules then say what is wrong


def profile_issues(resource: dict[str, Any], catalog: Catalog | None = None) -> list[Issue]:
    """Every way `resource` fails the profiles that apply to it (empty: it conforms)."""
    catalog = catalog or default_catalog()
    urls, issues = catalog.applicable(resource)
    if not urls:
        return issues
    walk = Walk(Context(resource, contained_index(resource), catalog.codes), catalog.tree)
    for url in urls:
        if (tree := catalog.tree(url)) is not None:  # applicable() names only ours
            walk.elements(tree[1], [(resource, str(resource["resourceType"]), "")], tree[0])
    return issues + walk.issues


def _expand(url: str) -> Codes | None:
    try:
        return fhir_profiles.expand(url)
    except (KeyError, LookupError, ValueError):
        return None  # not a ValueSet we can expand (filters, external systems): not checked


@cache
def default_catalog() -> Catalog:
    """Our compiled profiles, ValueSets and selection table (fhir_profiles), compiled once."""
    catalog = Catalog(
        fhir_profiles.structure_definitions().values(), _expand, fhir_profiles.selection()
    )
    for url in catalog.definitions:  # all at once: a broken definition fails the first write
        catalog.tree(url)
    return catalog
