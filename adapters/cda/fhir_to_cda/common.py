"""What every section writer needs: an entry's clinical statement with its templateId and id,
its code, and its author and performers.
"""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, nodes
from adapters.cda.fhir_to_cda.parties import Index, write_assigned
from adapters.cda.mapping import Structure
from adapters.cda.parse import child

Element = nodes.Element


def head(
    s: Structure, parent: Element, tag: str, name: str, attrs: dict[str, str], rid: str | None
) -> Element:
    el = child(parent, tag, attrs)
    child(el, "templateId", {"root": s.entry_template(name)})
    if rid:
        child(el, "id", {"root": s.raw["local_id_root"], "extension": rid})
    return el


def new_entry(section: Element) -> Element:
    return child(section, "entry")


def entry_code(s: Structure, el: Element, name: str, text: str | None = None) -> None:
    code = s.entry_code(name)
    cd = child(
        el,
        "code",
        {
            "code": code["code"],
            "codeSystem": code["codeSystem"],
            "displayName": code.get("displayName"),
        },
    )
    if text:
        child(cd, "originalText", text=text)


def author(s: Structure, idx: Index, el: Element, who: Any, time: str | None) -> None:
    if idx.get(who) is None:
        return
    author = child(el, "author")
    datatypes.write_time(author, "time", time)
    write_assigned(s, idx, author, "assignedAuthor", who)


def performer(s: Structure, idx: Index, el: Element, who: Any) -> None:
    if idx.get(who) is None:
        return
    write_assigned(s, idx, child(el, "performer", {"typeCode": "PRF"}), "assignedEntity", who)
