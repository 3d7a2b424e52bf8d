"""The walk of one instance along one compiled profile tree: each differential element is found
in the instance by its JSON name (choices by prefix, through arrays: a rule on `A.b.c` applies
within each `A.b` item present), counted per parent item (cardinality, per slice too), and each
value found is checked against the element's rules; extensions are checked against their own
definitions when those are ours.

Reads the instance only; messages name profile, instance path and rule, never instance values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.errors import Issue
from gateway.validation.profile_rules import Context, choice_type_issue, contains, value_issues
from gateway.validation.profile_tree import Matcher, Node

Item = tuple[Any, str, str]  # value, instance path, JSON name it was found under
Tree = tuple[str, Node]  # label ("profile Name (url)"), compiled tree


def found(parent: dict[str, Any], node: Node, parent_path: str) -> list[Item]:
    """The values of `node`'s element inside `parent`, each with its instance path."""
    prefix = node.prefix
    if prefix is None:
        keys = [node.name] if node.name in parent else []
    else:
        keys = [
            k for k in parent if k.startswith(prefix) and k[len(prefix) : len(prefix) + 1].isupper()
        ]
    items: list[Item] = []
    for key in keys:
        value = parent[key]
        if isinstance(value, list):
            items += [
                (v, f"{parent_path}.{key}[{i}]", key) for i, v in enumerate(value) if v is not None
            ]
        elif value is not None:
            items.append((value, f"{parent_path}.{key}", key))
    return items


def _at(value: Any, steps: tuple[str, ...]) -> list[Any]:
    values = [value]
    for step in steps:
        nxt: list[Any] = []
        for v in values:
            got = v.get(step) if isinstance(v, dict) else None
            nxt += got if isinstance(got, list) else [] if got is None else [got]
        values = nxt
    return values


def matches(matcher: Matcher, item: Item) -> bool:
    """Whether `item` belongs to the slice `matcher` describes (every discriminator agrees)."""
    for steps, kind, expected in matcher:
        if kind == "key":
            if item[2] != expected:
                return False
        elif kind == "fixed":
            if not any(v == expected for v in _at(item[0], steps)):
                return False
        elif not any(contains(v, expected) for v in _at(item[0], steps)):
            return False
    return True


class Walk:
    """One instance against one or more profiles, collecting issues."""

    def __init__(self, ctx: Context, extension_tree: Callable[[str], Tree | None]) -> None:
        self.ctx = ctx
        self.extension_tree = extension_tree
        self.issues: list[Issue] = []

    def elements(self, node: Node, items: list[Item], label: str) -> None:
        for value, path, key in items:
            self.check(node, value, path, key, label)
            if isinstance(value, dict):
                for child in node.children.values():
                    self.child(child, value, path, label)

    def child(self, node: Node, parent: dict[str, Any], parent_path: str, label: str) -> None:
        items = found(parent, node, parent_path)
        where = f"{parent_path}.{node.name}"
        self.count(node, len(items), where, label, "")
        claimed: set[int] = set()
        for name, piece in node.slices.items():
            if piece.matcher is None:
                continue
            mine = [it for it in items if matches(piece.matcher, it)]
            claimed |= {id(it) for it in mine}
            self.count(piece, len(mine), where, label, f"slice {name} ")
            self.elements(piece, mine, label)
        if node.closed:
            for it in items:
                if id(it) not in claimed:
                    self.fail(label, it[1], "slicing closed: the item fits no slice", "structure")
        self.elements(node, items, label)

    def count(self, node: Node, n: int, where: str, label: str, what: str) -> None:
        low, high = node.rules.min, node.rules.max
        if (low is not None and n < low) or (high not in (None, "*") and n > int(high)):
            rule = f"{what}cardinality {node.cardinality()} (found {n})"
            self.fail(label, where, rule, "required" if n < (low or 0) else "structure")

    def check(self, node: Node, value: Any, path: str, key: str, label: str) -> None:
        if node.prefix is not None and (rule := choice_type_issue(node.rules, key, node.prefix)):
            self.fail(label, path, rule, "structure")
        for code, rule in value_issues(node.rules, value, self.ctx):
            self.fail(label, path, rule, code)
        for url in node.rules.profiles:
            url = url.split("|", 1)[0]
            if not isinstance(value, dict) or ("url" in value and value["url"] != url):
                continue  # an extension slice's items carry its url; others are not its items
            if (tree := self.extension_tree(url)) is not None:
                self.elements(tree[1], [(value, path, key)], f"{label}, {tree[0]}")

    def fail(self, label: str, path: str, rule: str, code: str) -> None:
        self.issues.append(Issue(f"{label}: {path}: {rule}", (path,), code=code))
