"""Reading CDA elements without importing lxml: namespaced paths, attributes, templateIds.
Elements come from parse.py; only their own methods (find, get, iter) are used here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

NS = "{urn:hl7-org:v3}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

Element = Any  # an lxml element handed over by parse.py


@cache
def q(path: str) -> str:
    """'a/b' -> '{urn:hl7-org:v3}a/{urn:hl7-org:v3}b' (ElementPath in the CDA namespace)."""
    return "/".join(part if part in (".", "..") else NS + part for part in path.split("/"))


@cache
def _steps(path: str) -> tuple[str, ...]:
    return tuple(NS + step for step in path.split("/"))


# Child steps with iterchildren (lxml's C iteration) rather than find/findall (its Python
# ElementPath): the mapping asks a few hundred such questions per document.
def first(el: Element | None, path: str) -> Element | None:
    """The first element at a child path ('a/b'), None when there is none."""
    for tag in _steps(path):
        if el is None:
            return None
        el = next(el.iterchildren(tag), None)
    return el


def every(el: Element | None, path: str) -> list[Element]:
    """Every element at a child path ('a/b': each b under each a), in document order."""
    found = [] if el is None else [el]
    for tag in _steps(path):
        found = [c for parent in found for c in parent.iterchildren(tag)]
    return found


def attr(el: Element | None, path: str, name: str) -> str | None:
    target = first(el, path) if path else el
    return None if target is None else target.get(name)


def local(el: Element) -> str:
    tag = el.tag
    return tag[len(NS) :] if isinstance(tag, str) and tag.startswith(NS) else str(tag)


def template_ids(el: Element) -> list[str]:
    return [t.get("root") for t in el.iterchildren(NS + "templateId") if t.get("root")]


def text(el: Element | None) -> str | None:
    """The text of a leaf element as written (no whitespace trimming), None when empty."""
    if el is None:
        return None
    value = "".join(el.itertext())
    return value if value.strip() else None


def line(el: Element | None) -> int | None:
    return None if el is None else el.sourceline


def clinical_statement(entry: Element) -> Element | None:
    """The one act/observation/organizer/... inside an entry or entryRelationship."""
    for child in entry:
        if isinstance(child.tag, str) and child.tag.startswith(NS):
            return child
    return None
