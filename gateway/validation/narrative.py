"""Narrative.div must be one XHTML <div> (http://hl7.org/fhir/R4/narrative.html#xhtml): checked on
write so stored narratives render in both JSON and XML.

Parses with a safe lxml parser only (no entities, DTDs or network); never keeps or logs the text.
"""

from __future__ import annotations

from lxml import etree

XHTML_DIV = "{http://www.w3.org/1999/xhtml}div"
_FORBIDDEN = ("script", "form", "iframe", "object", "embed", "base", "link", "style")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def div_problem(div: str) -> str | None:
    """Why `div` is not an acceptable narrative, or None when it is."""
    if "<!DOCTYPE" in div or "<!ENTITY" in div:
        return "the narrative must not declare a DOCTYPE or entities"
    try:
        root = etree.fromstring(div.encode("utf-8"), _parser())
    except (etree.XMLSyntaxError, ValueError):
        return "the narrative is not well-formed XHTML"
    if root.tag != XHTML_DIV:
        return "the narrative must be a <div> in the XHTML namespace"
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname in _FORBIDDEN:
            return "the narrative holds active content (script, form, ...), not allowed by txt-1"
    return None
