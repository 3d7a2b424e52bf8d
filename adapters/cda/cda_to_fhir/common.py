"""What every section reader needs: the entries of a section, the id an entry's resource derives
from, and an entry's words.
"""

from __future__ import annotations

from adapters.cda import nodes
from adapters.cda.cda_to_fhir.context import Doc

Element = nodes.Element


def statements(section: Element) -> list[tuple[int, Element]]:
    return [
        (i, st)
        for i, entry in enumerate(nodes.every(section, "entry"))
        if (st := nodes.clinical_statement(entry)) is not None
    ]


def entry_key(st: Element, where: str) -> tuple[str, ...]:
    """What an entry's resource id derives from: its own id when it has one, else its place."""
    ii = nodes.first(st, "id")
    if ii is not None and ii.get("root"):
        return (ii.get("root"), ii.get("extension") or "")
    return (where,)


def words(doc: Doc, st: Element) -> str | None:
    """The entry's text: <text>, else a value's text or display, else the code's."""
    found = nodes.text(nodes.first(st, "text"))
    if found:
        return found
    for el in nodes.every(st, "value") + nodes.every(st, "code"):
        found = (
            nodes.text(nodes.first(el, "originalText")) or el.get("displayName") or nodes.text(el)
        )
        if found:
            return found.strip()
    return None
