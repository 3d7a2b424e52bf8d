"""FHIR XML (http://hl7.org/fhir/R4/xml.html) to and from the JSON form the gateway works on,
driven by the R4 core element layout (gateway.validation.definitions).

Parsing must stay safe: never resolve entities, load a DTD, touch the network or accept a
DOCTYPE, and never nest deeper than the configured limit. Malformed input is a 400
OperationOutcome naming the path, never an lxml exception.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import orjson
from lxml import etree

from gateway.errors import Category, FhirError, invalid
from gateway.validation.definitions import Row, layout, primitive_types, resource_types

NS = "http://hl7.org/fhir"
XHTML = "http://www.w3.org/1999/xhtml"
_INT = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTEGERS = ("integer", "positiveInt", "unsignedInt")
_PRIMITIVE_ROWS = {
    "id": Row("id", "string", False, True),
    "extension": Row("extension", "Extension", True, False),
}


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


@cache
def _rows() -> dict[str, dict[str, Row]]:
    return {key: {r.name: r for r in rows} for key, rows in layout().items()}


# ---- XML -> JSON -------------------------------------------------------------------------


def parse(raw: bytes, max_depth: int) -> dict[str, Any]:
    """The JSON form of one FHIR XML resource; FhirError (400) for anything unsafe or invalid."""
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise invalid("XML with a DOCTYPE or entity declarations is not accepted", "body")
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as e:
        raise invalid(f"the body is not well-formed XML: {e.msg}", "body") from None
    except ValueError as e:
        raise invalid(f"the body is not well-formed XML: {e}", "body") from None
    if root.getroottree().docinfo.doctype:
        raise invalid("XML with a DOCTYPE is not accepted", "body")
    return _Reader(max_depth).resource(root, "", 1)


class _Reader:
    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.rows = _rows()
        self.primitives = primitive_types()
        self.resources = resource_types()

    def resource(self, el: Any, path: str, depth: int) -> dict[str, Any]:
        ns, name = _qname(el)
        where = f"{path}.{name}" if path else name
        if ns != NS or name not in self.resources or name not in self.rows:
            raise invalid(f"'{name[:60]}' is not a FHIR resource element", where or "body")
        if el.attrib:
            raise invalid("a resource element carries no attributes", where)
        out: dict[str, Any] = {"resourceType": name}
        out.update(self.complex(el, name, path or name, depth))
        return out

    def complex(self, el: Any, key: str, path: str, depth: int) -> dict[str, Any]:
        if depth > self.max_depth:
            raise invalid(f"the body nests deeper than {self.max_depth} levels", path)
        rows = self.rows[key] if key != "Element" else _PRIMITIVE_ROWS
        out: dict[str, Any] = {}
        for attr, value in el.attrib.items():
            if attr == "value" and key == "Element":
                continue
            row = rows.get(attr)
            if row is None or not row.attr:
                raise invalid(f"unknown attribute '{attr[:40]}'", path)
            out[attr] = value
        _no_text(el, path)
        counts: dict[str, int] = {}
        for child in el:
            self.child(child, rows, out, counts, path, depth)
        _drop_empty_lists(out)
        return out

    def child(
        self, child: Any, rows: dict[str, Row], out: dict, counts: dict, path: str, depth: int
    ) -> None:
        ns, name = _qname(child)
        row = rows.get(name)
        if row is None or row.attr or ns != (XHTML if row.type == "xhtml" else NS):
            raise invalid(f"unknown element '{name[:40]}'", f"{path}.{name[:40]}")
        index = counts.get(name, 0)
        counts[name] = index + 1
        if index and not row.many:
            raise invalid("the element repeats but allows one value", f"{path}.{name}")
        where = f"{path}.{name}[{index}]" if row.many else f"{path}.{name}"
        if row.type == "xhtml":
            out[name] = etree.tostring(child, encoding="unicode", with_tail=False)
        elif row.type in self.primitives:
            value, ext = self.primitive(child, row.type, where, depth + 1)
            _put_primitive(out, row, index, value, ext)
        else:
            value = self.value(child, row.type, where, depth + 1)
            if row.many:
                out.setdefault(name, []).append(value)
            else:
                out[name] = value

    def value(self, el: Any, type_: str, path: str, depth: int) -> dict[str, Any]:
        if type_ != "Resource":
            return self.complex(el, type_, path, depth)
        inner = [c for c in el]
        _no_text(el, path)
        if len(inner) != 1 or el.attrib:
            raise invalid("the element must hold exactly one resource", path)
        return self.resource(inner[0], path, depth + 1)

    def primitive(self, el: Any, type_: str, path: str, depth: int) -> tuple[Any, Any]:
        attrs = dict(el.attrib)
        raw = attrs.pop("value", None)
        value = None if raw is None else _typed(raw, type_, path)
        # A primitive's own id and extensions go to the `_name` twin (R4 json.html#primitive).
        ext = self.complex(el, "Element", path, depth) if (attrs or len(el)) else None
        if value is None and not ext:
            raise invalid("a primitive element needs a value or extensions", path)
        return value, ext


def _qname(el: Any) -> tuple[str | None, str]:
    if not isinstance(el.tag, str):
        return None, "#node"
    q = etree.QName(el)
    return q.namespace, q.localname


def _no_text(el: Any, path: str) -> None:
    if (el.text and el.text.strip()) or any(c.tail and c.tail.strip() for c in el):
        raise invalid("text content is not allowed here (values go in @value)", path)


def _typed(raw: str, type_: str, path: str) -> Any:
    if type_ == "boolean":
        if raw not in ("true", "false"):
            raise invalid("a boolean must be 'true' or 'false'", path)
        return raw == "true"
    if type_ in _INTEGERS:
        if not _INT.fullmatch(raw):
            raise invalid("not an integer", path)
        return int(raw)
    if type_ == "decimal":
        if not _DECIMAL.fullmatch(raw):
            raise invalid("not a decimal", path)
        return int(raw) if _INT.fullmatch(raw) else float(raw)
    return raw


def _put_primitive(out: dict, row: Row, index: int, value: Any, ext: Any) -> None:
    name = row.name
    if not row.many:
        if value is not None:
            out[name] = value
        if ext:
            out["_" + name] = ext
        return
    values = out.setdefault(name, [])
    values.append(value)
    if ext or "_" + name in out:
        exts = out.setdefault("_" + name, [None] * index)
        exts.append(ext or None)


def _drop_empty_lists(out: dict[str, Any]) -> None:
    """Primitive arrays whose items all carry only extensions appear only as `_name`."""
    for name in [k for k, v in out.items() if isinstance(v, list) and all(x is None for x in v)]:
        del out[name]


# ---- JSON -> XML -------------------------------------------------------------------------


def render(resource: dict[str, Any], pretty: bool) -> bytes:
    """FHIR XML bytes of one resource (a Bundle, OperationOutcome, ... included)."""
    try:
        writer = _Writer()
        root = writer.resource(resource, None)
        if pretty:
            etree.indent(root, space="  ")
        writer.insert_divs()  # after indenting: narrative whitespace is content, left unchanged
        return etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    except (ValueError, TypeError, AttributeError, etree.LxmlError) as e:
        raise FhirError(
            Category.NOT_ACCEPTABLE, f"the resource cannot be written as XML ({e}); ask for JSON"
        ) from None


class _Writer:
    def __init__(self) -> None:
        self.layout = {**layout(), "Element": list(_PRIMITIVE_ROWS.values())}
        self.known = _known()
        self.primitives = primitive_types()
        self.divs: list[tuple[Any, Any]] = []

    def insert_divs(self) -> None:
        for placeholder, div in self.divs:
            div.tail = placeholder.tail
            placeholder.getparent().replace(placeholder, div)

    def resource(self, res: dict[str, Any], parent: Any) -> Any:
        rtype = res.get("resourceType")
        if not isinstance(rtype, str) or rtype not in self.layout:
            raise ValueError(f"unknown resourceType '{str(rtype)[:40]}'")
        tag = f"{{{NS}}}{rtype}"
        el = (
            etree.Element(tag, nsmap={None: NS})
            if parent is None
            else etree.SubElement(parent, tag)
        )
        self.fill(el, rtype, res)
        return el

    def fill(self, el: Any, key: str, obj: dict[str, Any]) -> None:
        unknown = obj.keys() - self.known[key]
        if unknown:
            raise ValueError(f"{key} has no R4 element '{sorted(unknown)[0][:40]}'")
        for row in self.layout[key]:
            value, ext = obj.get(row.name), obj.get("_" + row.name)
            if value is None and ext is None:
                continue
            if row.attr:
                el.set(row.name, _text(value))
            elif row.type == "xhtml":
                div = etree.fromstring(value.encode(), _parser())
                self.divs.append((etree.SubElement(el, "div"), div))
            elif row.many:
                values = value if isinstance(value, list) else []
                exts = ext if isinstance(ext, list) else []
                for i in range(max(len(values), len(exts))):
                    v = values[i] if i < len(values) else None
                    x = exts[i] if i < len(exts) else None
                    self.element(el, row, v, x)
            else:
                self.element(el, row, value, ext)

    def element(self, parent: Any, row: Row, value: Any, ext: Any) -> None:
        child = etree.SubElement(parent, f"{{{NS}}}{row.name}")
        if row.type in self.primitives:
            if value is not None:
                child.set("value", _text(value))
            if isinstance(ext, dict):
                self.fill(child, "Element", ext)
        elif row.type == "Resource":
            self.resource(value, child)
        else:
            self.fill(child, row.type, value)


@cache
def _known() -> dict[str, frozenset[str]]:
    known = {
        key: frozenset(["resourceType"] + [p + r.name for r in rows for p in ("", "_")])
        for key, rows in layout().items()
    }
    known["Element"] = frozenset(["id", "extension"])
    return known


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return orjson.dumps(value).decode()
    return str(value)
