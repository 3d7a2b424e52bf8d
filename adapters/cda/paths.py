"""Getting and setting a FHIR element by a small path ('a.b', 'a[0].b', 'extension(url).valueX'),
for the detail observations of mappings/cda/details.json. Dicts and lists only.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

_SEGMENT = re.compile(r"extension\(([^)]*)\)|([A-Za-z]+)(\[0\])?")


@cache
def _segments(path: str) -> tuple[tuple[str, str, bool], ...]:
    out = []
    for m in _SEGMENT.finditer(path):
        if m.group(1) is not None:
            out.append(("ext", m.group(1), False))
        else:
            out.append(("key", m.group(2), bool(m.group(3))))
    return tuple(out)


def get(resource: dict[str, Any], path: str) -> Any:
    node: Any = resource
    for kind, name, first in _segments(path):
        if not isinstance(node, dict):
            return None
        if kind == "ext":
            node = next((e for e in node.get("extension", ()) if e.get("url") == name), None)
        else:
            node = node.get(name)
            if first:
                node = node[0] if isinstance(node, list) and node else None
    return node


def put(resource: dict[str, Any], path: str, value: Any) -> None:
    segments = _segments(path)
    node = resource
    for i, (kind, name, first) in enumerate(segments):
        last = i == len(segments) - 1
        if kind == "ext":
            items = node.setdefault("extension", [])
            found = next((e for e in items if e.get("url") == name), None)
            if found is None:
                found = {"url": name}
                items.append(found)
            node = found
        elif last:
            node[name] = [value] if first else value
        elif first:
            items = node.setdefault(name, [{}])
            node = items[0]
        else:
            node = node.setdefault(name, {})
