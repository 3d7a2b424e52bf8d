"""Reference resolution inside a Bundle (http://hl7.org/fhir/R4/http.html#trules,
#conditional-refs): `urn:uuid:`/`urn:oid:` fullUrls become `Type/id`, and conditional references
(`Patient?identifier=s|v`) become the one resource they match.

Rewrites every `reference` string at any depth (extensions and contained resources included),
narrative `div` mentions of fullUrls, and conditional query values. It never writes storage and
never guesses: a placeholder that names no entry, or a condition matching none or several
resources, fails.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import RESOURCE_TYPES
from gateway.fhir_api.interactions.bundle_urls import parse_query

if TYPE_CHECKING:
    from gateway.consent.enforcement import Gate
    from gateway.fhir_api.context import Services
    from gateway.storage.base import Session

PLACEHOLDER = ("urn:uuid:", "urn:oid:")
_PLACEHOLDER_RE = re.compile(r"urn:(?:uuid|oid):[A-Za-z0-9.\-]+")


class References:
    """Resolves references for one session; `mapping` is fullUrl -> `Type/id`."""

    def __init__(
        self,
        svc: Services,
        session: Session,
        base: str,
        mapping: dict[str, str],
        gate: Gate | None = None,
    ):
        self.gate = gate  # conditional references see only what the caller may see
        self.svc = svc
        self.session = session
        self.base = base
        self.mapping = mapping
        self._conditional: dict[str, str] = {}  # one search per distinct condition

    def params(self, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Search/conditional criteria with placeholder values replaced."""
        return [(k, self._value(v)) for k, v in params]

    def _value(self, value: str) -> str:
        # `subject=urn:uuid:…` and also modifiers' values such as `:missing` stay as written.
        return self.mapping.get(value, value)

    def resolve(self, ref: str, where: str) -> str:
        if ref in self.mapping:
            return self.mapping[ref]
        if ref.startswith(PLACEHOLDER):
            raise invalid(f"{where}: '{ref[:80]}' names no entry of this Bundle", where)
        local = ref[len(self.base) + 1 :] if ref.startswith(self.base + "/") else ref
        if "?" in local and "://" not in local and not local.startswith("#"):
            return self._resolve_conditional(local, where)
        return ref

    def _resolve_conditional(self, ref: str, where: str) -> str:
        if ref not in self._conditional:
            self._conditional[ref] = self._match_one(ref, where)
        return self._conditional[ref]

    def _match_one(self, ref: str, where: str) -> str:
        resource_type, _, query = ref.partition("?")
        if resource_type not in RESOURCE_TYPES:
            raise invalid(f"{where}: conditional reference to a type not served here", where)
        params = self.params(parse_query(query, where, required=True))
        matches = self.svc.search.match_keys(self.session, resource_type, params, gate=self.gate)
        if not matches:
            raise invalid(f"{where}: the conditional reference matches no resource", where)
        if len(matches) > 1:
            raise FhirError(
                Category.PRECONDITION_FAILED,
                f"{where}: the conditional reference matches {len(matches)} resources",
                (where,),
            )
        return "/".join(matches[0])

    def rewrite(self, resource: dict[str, Any], where: str) -> bool:
        """Replace, in place, every reference in `resource` (rooted at path `where`); True if a
        placeholder was replaced (its target type could not be checked before)."""
        placed = False
        stack: list[tuple[Any, str]] = [(resource, where)]
        while stack:
            node, path = stack.pop()
            if isinstance(node, list):
                stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node) if _container(v))
                continue
            for key, value in node.items():
                if key == "reference" and isinstance(value, str):
                    node[key] = self.resolve(value, f"{path}.reference")
                    placed = placed or value.startswith(PLACEHOLDER)
                elif key == "div" and isinstance(value, str) and "urn:" in value:
                    node[key] = _PLACEHOLDER_RE.sub(self._mention, value)
                elif _container(value):
                    stack.append((value, f"{path}.{key}"))
        return placed

    def _mention(self, match: re.Match[str]) -> str:
        return self.mapping.get(match.group(0), match.group(0))


def _container(value: Any) -> bool:
    return isinstance(value, dict | list)
