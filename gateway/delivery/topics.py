"""Subscription topics (Subscriptions Backport IG): which writes a topic reports, the filters a
Subscription may narrow it with, and whether one write matches one subscription's filters.

The topics are data (fhir_profiles/topics/*.json, `fhir_profiles.load_topics_data()`); this
module only reads them. `Topic.matches` runs inside the write transaction for every candidate
subscription, so it must never evaluate FHIRPath, touch storage or log resource content: it
walks plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote

import fhir_profiles
from gateway.errors import invalid

EXTENSION = fhir_profiles.CANONICAL + "/StructureDefinition/"
FILTER_ELEMENT = EXTENSION + "filter-element"
FILTER_TYPE = EXTENSION + "filter-type"
TRIGGER_ON_CHANGE = EXTENSION + "trigger-on-change"
REFERENCE, TOKEN = "reference", "token"

# ((parameter name, allowed values), ...): every entry must match (AND), any of its values
# (comma = OR). A name may repeat when a Subscription gives it in several filter extensions.
Filters = tuple[tuple[str, tuple[str, ...]], ...]
Json = Mapping[str, Any]
Expand = Callable[[set[str]], set[str]]


@dataclass(frozen=True)
class FilterDef:
    """One `canFilterBy` of a topic: the parameter name, the element it reads, its kind."""

    name: str
    element: str  # a top-level element of the resource, e.g. "owner", "for", "subject"
    kind: str  # REFERENCE | TOKEN


@dataclass(frozen=True)
class Topic:
    url: str
    id: str
    resource_type: str
    interactions: frozenset[str]  # of "create", "update", "delete"
    # Fires only when `status` differs from the previous version. A create counts as a change
    # (from nothing): a Task created already `accepted` is a status its requester must learn.
    status_change: bool
    filters: Mapping[str, FilterDef] = field(hash=False)

    def matches(
        self,
        interaction: str,
        resource: Json,
        previous: Json | None,
        filters: Filters,
        expand: Expand | None = None,
    ) -> bool:
        """Whether a write (`resource`: the new content; for a delete, the last live content)
        is an event of this topic that passes every filter. `expand` adds what a reference
        also stands for (a PractitionerRole's Organization), so `owner=Organization/x` matches
        a Task owned by one of x's roles."""
        if interaction not in self.interactions:
            return False
        unchanged = previous is not None and previous.get("status") == resource.get("status")
        if self.status_change and unchanged:
            return False
        return all(self._passes(name, allowed, resource, expand) for name, allowed in filters)

    def _passes(
        self, name: str, allowed: tuple[str, ...], resource: Json, expand: Expand | None
    ) -> bool:
        definition = self.filters.get(name)
        if definition is None:  # a stored filter the topic no longer has: match nothing
            return False
        values = _items(resource.get(definition.element))
        if definition.kind == REFERENCE:
            refs = {_relative(v.get("reference")) for v in values if isinstance(v, dict)}
            if expand is not None and refs.isdisjoint(allowed):
                refs |= expand(refs)
            return not refs.isdisjoint(allowed)
        return any(_token_matches(value, wanted) for value in values for wanted in allowed)


@cache
def load_topics() -> dict[str, Topic]:
    """Our topics by canonical URL. Do not mutate."""
    return {url: _topic(doc) for url, doc in fhir_profiles.load_topics_data().items()}


def _topic(doc: Json) -> Topic:
    (trigger,) = doc["resourceTrigger"]  # one resource per topic: say so if that ever changes
    change = _extension(trigger, TRIGGER_ON_CHANGE, "valueString")
    if change not in (None, "status"):
        raise ValueError(f"{doc['url']}: trigger-on-change supports only status")
    filters = {}
    for can in doc.get("canFilterBy", []):
        kind = _extension(can, FILTER_TYPE, "valueCode")
        if kind not in (REFERENCE, TOKEN):
            raise ValueError(f"{doc['url']}: filter {can['filterParameter']} has no filter-type")
        element = _extension(can, FILTER_ELEMENT, "valueString")
        filters[can["filterParameter"]] = FilterDef(can["filterParameter"], element, kind)
    return Topic(
        url=doc["url"],
        id=doc["id"],
        resource_type=trigger["resource"].rsplit("/", 1)[-1],
        interactions=frozenset(trigger["supportedInteraction"]),
        status_change=change == "status",
        filters=filters,
    )


def _extension(element: Json, url: str, value: str) -> Any:
    return next((e.get(value) for e in element.get("extension", []) if e.get("url") == url), None)


def parse_filters(
    topic: Topic, texts: Sequence[str], path: str = "Subscription.criteria"
) -> Filters:
    """The filters of several filter-criteria texts (all ANDed); errors name `path.extension[i]`."""
    out: Filters = ()
    for i, text in enumerate(texts):
        out += parse_filter(topic, text, f"{path}.extension[{i}]")
    return out


def parse_filter(topic: Topic, text: str, path: str) -> Filters:
    """`Task?owner=Organization/org-kela&status=requested,accepted` (or without `Task?`) as
    Filters; FhirError (invalid, at `path`) naming the parameter that cannot be used. Values are
    never echoed: a filter may name a client."""
    query = _query_part(topic, text, path)
    out = []
    for part in query.split("&"):
        name, sep, raw = part.partition("=")
        definition = _definition(topic, name, sep, path)
        values = tuple(unquote(v) for v in raw.split(","))
        if not all(values):
            raise invalid(f"filter parameter '{name}' has an empty value", path)
        if definition.kind == REFERENCE:
            values = tuple(_reference_value(name, v, path) for v in values)
        else:
            _check_tokens(name, values, path)
        out.append((name, values))
    return tuple(out)


def _query_part(topic: Topic, text: str, path: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise invalid("a filter criteria needs a valueString such as 'Task?owner=...'", path)
    resource_type, sep, query = text.strip().partition("?")
    if not sep:
        return resource_type  # a bare "owner=...": the topic's own resource type
    if resource_type != topic.resource_type:
        raise invalid(f"topic {topic.id} filters {topic.resource_type}, not other types", path)
    if not query:
        raise invalid("a filter criteria needs at least one parameter", path)
    return query


def _definition(topic: Topic, name: str, sep: str, path: str) -> FilterDef:
    if ":" in name:
        raise invalid(f"filter parameter '{name[:40]}': modifiers are not supported", path)
    definition = topic.filters.get(name)
    if definition is None:
        known = ", ".join(sorted(topic.filters))
        raise invalid(f"topic {topic.id} cannot filter by '{name[:40]}' (it can by {known})", path)
    if not sep:
        raise invalid(f"filter parameter '{name}' needs a value (name=value)", path)
    return definition


def _reference_value(name: str, value: str, path: str) -> str:
    relative = _relative(value)
    resource_type, _, id_ = relative.partition("/")
    if not (resource_type.isalpha() and resource_type[:1].isupper() and id_):
        raise invalid(f"filter parameter '{name}' needs references such as Type/id", path)
    return relative


def _check_tokens(name: str, values: tuple[str, ...], path: str) -> None:
    for value in values:
        if not value.rpartition("|")[2]:
            raise invalid(f"filter parameter '{name}' needs a code (code or system|code)", path)


def _relative(reference: Any) -> str:
    """`Type/id` of a reference, relative or absolute, without `/_history/n`; "" if none.
    An absolute URL keeps only its last two segments: filters compare what a resource says,
    whichever server base it was written against."""
    if not isinstance(reference, str):
        return ""
    parts = reference.split("/_history/", 1)[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ""


def _token_matches(value: Any, wanted: str) -> bool:
    """`code` matches the code in any system; `system|code` exactly; `|code` only without a
    system (FHIR search token rules). `value` is a code, a Coding or a CodeableConcept."""
    system, sep, code = wanted.rpartition("|")
    if isinstance(value, str):
        return value == code and not (sep and system)
    if not isinstance(value, dict):
        return False
    codings = value.get("coding") if "coding" in value else [value]
    for coding in _items(codings):
        if not isinstance(coding, dict) or coding.get("code") != code:
            continue
        if not sep or coding.get("system", "") == system:
            return True
    return False


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]
