"""Detail observations and comments inside an entry (mappings/cda/details.json): the FHIR
elements CDA R2 has no element for travel exactly, one typed observation each; notes travel as
comment acts (LOINC 48767-8). Both directions, driven by the table.
"""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, nodes, paths
from adapters.cda.mapping import Structure
from adapters.cda.parse import child

Element = nodes.Element


def write(
    s: Structure,
    act: Element,
    kind: str,
    resource: dict[str, Any],
    wrapper: str = "entryRelationship",
) -> None:
    """One observation per present element of `kind` (inside `wrapper`: entryRelationship of an
    act or observation, component of an organizer)."""
    system = s.raw_details_system
    for spec in s.details.get(kind, ()):
        value = paths.get(resource, spec["path"])
        if value is None or value == {} or value == [] or value == spec.get("default"):
            continue
        rel = child(act, wrapper, {"typeCode": "COMP"} if wrapper == "entryRelationship" else None)
        obs = child(rel, "observation", {"classCode": "OBS", "moodCode": "EVN"})
        child(obs, "templateId", {"root": s.entry_template("detail")})
        child(obs, "code", {"code": spec["code"], "codeSystem": system})
        _write_value(s, obs, spec, value)


def _write_value(s: Structure, obs: Element, spec: dict[str, str], value: Any) -> None:
    kind = spec["type"]
    if kind == "code":
        datatypes.write_coding(s, obs, "value", {"system": spec["system"], "code": value}, _CD)
    elif kind == "Coding":
        datatypes.write_coding(s, obs, "value", value, _CD)
    elif kind == "CodeableConcept":
        datatypes.write_concept(s, obs, "value", value, _CD)
    elif kind in ("date", "dateTime"):
        datatypes.write_time(obs, "value", value).set(nodes.XSI_TYPE, "TS")
    elif kind == "boolean":
        child(obs, "value", {"xsi:type": "BL", "value": "true" if value else "false"})
    else:
        child(obs, "value", {"xsi:type": "ST"}, str(value))


_CD = {"xsi:type": "CD"}


def read(
    s: Structure,
    act: Element,
    kind: str,
    resource: dict[str, Any],
    wrapper: str = "entryRelationship",
) -> None:
    specs = {spec["code"]: spec for spec in s.details.get(kind, ())}
    system = s.raw_details_system
    for obs in nodes.every(act, f"{wrapper}/observation"):
        code = nodes.first(obs, "code")
        if code is None or code.get("codeSystem") != system:
            continue
        spec = specs.get(code.get("code") or "")
        value_el = nodes.first(obs, "value")
        if spec is None or value_el is None:
            continue
        value = _read_value(s, value_el, spec)
        if value is not None:
            paths.put(resource, spec["path"], value)


def _read_value(s: Structure, el: Element, spec: dict[str, str]) -> Any:
    kind = spec["type"]
    if kind == "code":
        return el.get("code")
    if kind == "Coding":
        return datatypes.coding(s, el)
    if kind == "CodeableConcept":
        return datatypes.concept(s, el)
    if kind in ("date", "dateTime"):
        return datatypes.fhir_time(el)
    if kind == "boolean":
        return {"true": True, "false": False}.get(el.get("value") or "")
    return nodes.text(el)


def write_notes(
    s: Structure,
    act: Element,
    notes: list[dict[str, Any]] | None,
    wrapper: str = "entryRelationship",
) -> None:
    """Annotation.text -> a comment act (C-CDA Comment Activity shape)."""
    for note in notes or ():
        if not note.get("text"):
            continue
        attrs = (
            {"typeCode": "SUBJ", "inversionInd": "true"} if wrapper == "entryRelationship" else None
        )
        rel = child(act, wrapper, attrs)
        comment = child(rel, "act", {"classCode": "ACT", "moodCode": "EVN"})
        child(comment, "templateId", {"root": s.entry_template("comment")})
        datatypes.write_coding(s, comment, "code", _coding(s.entry_code("comment")))
        child(comment, "text", text=note["text"])


def read_notes(
    s: Structure, act: Element, wrapper: str = "entryRelationship"
) -> list[dict[str, str]]:
    code = s.entry_code("comment")
    out = []
    for comment in nodes.every(act, f"{wrapper}/act"):
        c = nodes.first(comment, "code")
        if c is not None and c.get("code") == code["code"]:
            text = nodes.text(nodes.first(comment, "text"))
            if text:
                out.append({"text": text})
    return out


def _coding(code: dict[str, str]) -> dict[str, str]:
    return {
        "system": "urn:oid:" + code["codeSystem"],
        "code": code["code"],
        "display": code.get("displayName"),
    }
