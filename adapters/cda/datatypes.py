"""CDA R2 data types (II, CD, TS, IVL_TS, PN, ON) <-> FHIR data types, both ways. Reading uses
nodes.py, writing parse.child; a value that cannot be converted is a CdaError invalid-value that
names the element, never the value.
"""

from __future__ import annotations

from typing import Any

from adapters.cda import nodes, timestamps
from adapters.cda.errors import CdaError
from adapters.cda.mapping import Structure
from adapters.cda.parse import child

Element = nodes.Element
URI_SYSTEM = "urn:ietf:rfc:3986"

# --- reading


def fhir_time(el: Element | None, name: str = "value") -> str | None:
    raw = None if el is None else el.get(name)
    if not raw:
        return None
    try:
        return timestamps.to_fhir(raw)
    except ValueError:
        raise CdaError("invalid-value", f"{nodes.local(el)} is not a TS", nodes.line(el)) from None


def period(el: Element | None) -> dict[str, str]:
    """IVL_TS -> Period (low/high; a single value is the start)."""
    if el is None:
        return {}
    out = {"start": fhir_time(nodes.first(el, "low")) or fhir_time(el)}
    out["end"] = fhir_time(nodes.first(el, "high"))
    return {k: v for k, v in out.items() if v}


def identifier(s: Structure, ii: Element | None) -> dict[str, str] | None:
    """II -> Identifier: root+extension -> system+value; a root alone -> urn:oid value."""
    if ii is None or not ii.get("root"):
        return None
    root, ext = ii.get("root"), ii.get("extension")
    if ext:
        return {"system": s.system(root), "value": ext}
    return {"system": URI_SYSTEM, "value": f"urn:oid:{root}"}


def coding(s: Structure, cd: Element | None) -> dict[str, str] | None:
    if cd is None or not cd.get("code") or not cd.get("codeSystem"):
        return None
    out = {"system": s.system(cd.get("codeSystem")), "code": cd.get("code")}
    if cd.get("displayName"):
        out["display"] = cd.get("displayName")
    return out


def concept(s: Structure, cd: Element | None) -> dict[str, Any] | None:
    """CD -> CodeableConcept: the code, then its translations; originalText -> text."""
    if cd is None:
        return None
    codings = [c for c in [coding(s, cd)] + [coding(s, t) for t in nodes.every(cd, "translation")]]
    out: dict[str, Any] = {"coding": [c for c in codings if c]}
    text = nodes.text(nodes.first(cd, "originalText"))
    if text:
        out["text"] = text
    return {k: v for k, v in out.items() if v} or None


def human_name(pn: Element | None) -> dict[str, Any] | None:
    if pn is None:
        return None
    family = nodes.text(nodes.first(pn, "family"))
    given = [g for g in (nodes.text(e) for e in nodes.every(pn, "given")) if g]
    out: dict[str, Any] = {}
    if family:
        out["family"] = family
    if given:
        out["given"] = given
    if not out and (whole := nodes.text(pn)):
        out["text"] = whole.strip()
    return out or None


# --- writing


def write_time(parent: Element, tag: str, value: str | None) -> Element:
    if value is None:
        return child(parent, tag, {"nullFlavor": "UNK"})
    return child(parent, tag, {"value": timestamps.from_fhir(value)})


def write_period(parent: Element, tag: str, value: dict[str, str] | None) -> Element | None:
    if not value or not (value.get("start") or value.get("end")):
        return None
    el = child(parent, tag)
    if value.get("start"):
        write_time(el, "low", value["start"])
    if value.get("end"):
        write_time(el, "high", value["end"])
    return el


def write_identifier(s: Structure, parent: Element, tag: str, ident: dict[str, Any]) -> bool:
    """Identifier -> II; False (nothing written) when its system has no OID."""
    system, value = ident.get("system"), ident.get("value")
    if not value:
        return False
    if system == URI_SYSTEM and str(value).startswith("urn:oid:"):
        child(parent, tag, {"root": value[8:]})
        return True
    oid = s.oid(system)
    if oid is None:
        return False
    child(parent, tag, {"root": oid, "extension": value})
    return True


def _cd_attrs(s: Structure, c: dict[str, Any]) -> dict[str, str] | None:
    oid = s.oid(c.get("system"))
    if oid is None or not c.get("code"):
        return None
    return {"code": c["code"], "codeSystem": oid, "displayName": c.get("display")}


def write_coding(
    s: Structure, parent: Element, tag: str, c: dict[str, Any] | None, extra: dict | None = None
) -> Element | None:
    attrs = _cd_attrs(s, c or {})
    if attrs is None:
        return None
    return child(parent, tag, {**(extra or {}), **attrs})


def write_concept(
    s: Structure, parent: Element, tag: str, cc: dict[str, Any] | None, extra: dict | None = None
) -> Element | None:
    """CodeableConcept -> CD: the first coding with an OID, the rest as translations, text as
    originalText; a concept of text only is a CD with nullFlavor OTH and the originalText."""
    if not cc:
        return None
    writable = [a for a in (_cd_attrs(s, c) for c in cc.get("coding", ())) if a]
    attrs = writable[0] if writable else {"nullFlavor": "OTH"}
    el = child(parent, tag, {**(extra or {}), **attrs})
    if cc.get("text"):
        child(el, "originalText", text=cc["text"])
    for more in writable[1:]:
        child(el, "translation", more)
    return el


def write_name(parent: Element, name: dict[str, Any] | None) -> None:
    if not name:
        return
    pn = child(parent, "name")
    if not name.get("family") and not name.get("given"):
        pn.text = name.get("text", "")
        return
    for given in name.get("given", ()):
        child(pn, "given", text=given)
    if name.get("family"):
        child(pn, "family", text=name["family"])
