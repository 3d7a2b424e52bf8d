"""One StructureDefinition's differential (as SUSHI writes it: no snapshot) compiled into a tree
of element nodes, children by JSON element name and slices under their sliced element, each with
its rules and, for a slice, how an instance item is recognised as belonging to it.

Compiled once per profile; never looks at an instance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.validation.definitions import layout
from gateway.validation.profile_rules import NO_RULES, Rules, compile_rules

# How a slice recognises its items: (path below the item, "fixed" | "pattern" | "key", value).
Matcher = tuple[tuple[tuple[str, ...], str, Any], ...]
_EXTENSION_SLICING = ({"type": "value", "path": "url"},)


@dataclass
class Node:
    name: str  # JSON element name; a choice keeps `[x]`, e.g. `value[x]`
    slice: str | None = None
    element: dict[str, Any] = field(default_factory=dict)
    rules: Rules = NO_RULES
    type_key: str | None = None  # core type of the element (for base cardinality)
    base_max: str = "*"
    children: dict[str, Node] = field(default_factory=dict)
    slices: dict[str, Node] = field(default_factory=dict)
    matcher: Matcher | None = None  # on a slice; None = cannot be recognised (not checked)
    closed: bool = False  # slicing rules closed: every item must fall in a slice

    @property
    def prefix(self) -> str | None:
        """For a choice element, the JSON name prefix (`value` for `value[x]`)."""
        return self.name[:-3] if self.name.endswith("[x]") else None

    def cardinality(self) -> str:
        low = self.rules.min if self.rules.min is not None else 0
        return f"{low}..{self.rules.max if self.rules.max is not None else self.base_max}"


def _segments(element: dict[str, Any]) -> list[tuple[str, str | None]]:
    raw = element.get("id") or element.get("path", "")
    out = []
    for part in raw.split("."):
        name, _, slice_name = part.partition(":")
        out.append((name, slice_name or None))
    return out


def build(sd: dict[str, Any], resource_type_of: Callable[[str], str | None]) -> Node:
    """The tree of `sd`'s differential; the root node is the profiled type itself."""
    root = Node(sd["type"], type_key=sd["type"], base_max="1")
    for element in sd.get("differential", {}).get("element", []):
        node = root
        for name, slice_name in _segments(element)[1:]:
            node = node.children.setdefault(name, Node(name))
            if slice_name is not None:
                node = node.slices.setdefault(slice_name, Node(name, slice_name))
        node.element = element
    _finish(root, resource_type_of)
    return root


def _finish(node: Node, resource_type_of: Callable[[str], str | None]) -> None:
    node.rules = compile_rules(node.element, resource_type_of)
    if node.rules.types and len(node.rules.types) == 1 and node.prefix is not None:
        node.type_key = next(iter(node.rules.types))
    slicing = node.element.get("slicing") or {}
    node.closed = slicing.get("rules") == "closed"
    discriminators = slicing.get("discriminator") or (
        _EXTENSION_SLICING if node.name in ("extension", "modifierExtension") else ()
    )
    for child in node.children.values():
        _place(child, node.type_key)
        _finish(child, resource_type_of)
    for piece in node.slices.values():
        piece.type_key, piece.base_max = node.type_key, node.rules.max or node.base_max
        if node.prefix is not None and piece.slice and piece.slice.startswith(node.prefix):
            piece.type_key = piece.slice[len(node.prefix) :]
        _finish(piece, resource_type_of)
        piece.matcher = _matcher(node, piece, discriminators)


def _place(child: Node, parent_key: str | None) -> None:
    """The core type and base max of `child` from the R4 element tables (when known)."""
    rows = layout().get(parent_key or "", [])
    if child.prefix is not None:
        rows = [r for r in rows if r.name.startswith(child.prefix)]
        child.base_max = "*" if any(r.many for r in rows) else "1"
        return
    for row in rows:
        if row.name == child.name:
            child.type_key, child.base_max = row.type, "*" if row.many else "1"
            return


def _matcher(sliced: Node, piece: Node, discriminators: Any) -> Matcher | None:
    if sliced.prefix is not None and piece.slice:  # value[x]:valueCoding
        return (((), "key", piece.slice),)
    parts = []
    for d in discriminators:
        if d.get("type") not in ("value", "pattern"):
            return None  # type, profile, exists: not supported
        path = d.get("path", "")
        found = _expected(piece, path)
        if found is None:
            return None
        parts.append(found)
    return tuple(parts) or None


def _expected(piece: Node, path: str) -> tuple[tuple[str, ...], str, Any] | None:
    """What the slice fixes at the discriminator path (or the extension url it profiles)."""
    if path == "$this":
        node: Node | None = piece
        steps: tuple[str, ...] = ()
    else:
        steps = tuple(path.split("."))
        node = piece
        for step in steps:
            node = node.children.get(step) if node is not None else None
    if node is not None and node.rules.fixed is not None:
        return (steps, "fixed", node.rules.fixed)
    if node is not None and node.rules.pattern is not None:
        return (steps, "pattern", node.rules.pattern)
    if path == "url" and piece.rules.profiles:
        return (steps, "fixed", piece.rules.profiles[0].split("|", 1)[0])
    return None
