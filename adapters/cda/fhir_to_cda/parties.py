"""FHIR -> CDA participants: the client (HETU), organisations (SOTE OID as the id root) and
professionals in their roles (Terhikki number, role code, name, organisation). A reference that
does not resolve among the exported resources (hidden by the gate, or absent) writes nothing.
"""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, nodes
from adapters.cda.mapping import Structure, systems
from adapters.cda.parse import child

Element = nodes.Element


class Index:
    """The exported resources by `Type/id` and by `urn:uuid:<id>` (bundles of to_fhir)."""

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.by_key: dict[str, dict[str, Any]] = {}
        for r in resources:
            if isinstance(r, dict) and r.get("resourceType") and r.get("id"):
                self.by_key[f"{r['resourceType']}/{r['id']}"] = r
                self.by_key[f"urn:uuid:{r['id']}"] = r

    def get(self, reference: Any) -> dict[str, Any] | None:
        text = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(text, str):
            return None
        return self.by_key.get(text) or self.by_key.get("/".join(text.split("/")[-2:]))

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        seen = {id(r): r for k, r in self.by_key.items() if r["resourceType"] == resource_type}
        return list(seen.values())


def sote_oid(org: dict[str, Any] | None) -> str | None:
    system = systems()["sote_organisation_system"]
    for ident in (org or {}).get("identifier", ()):
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return None


def write_org_id(s: Structure, parent: Element, org: dict[str, Any]) -> None:
    oid = sote_oid(org)
    if oid:
        child(parent, "id", {"root": oid})
        return
    for ident in org.get("identifier", ()):
        if datatypes.write_identifier(s, parent, "id", ident):
            return
    child(parent, "id", {"root": s.raw["local_id_root"], "extension": f"Organization/{org['id']}"})


def write_org(s: Structure, parent: Element, tag: str, org: dict[str, Any]) -> Element:
    el = child(parent, tag)
    write_org_id(s, el, org)
    if org.get("name"):
        child(el, "name", text=org["name"])
    if tag == "representedOrganization" and org.get("type"):
        datatypes.write_concept(s, el, "standardIndustryClassCode", org["type"][0])
    return el


def write_assigned(s: Structure, idx: Index, parent: Element, tag: str, reference: Any) -> bool:
    """assignedEntity/assignedAuthor for the client, a PractitionerRole or an Organization."""
    target = idx.get(reference)
    if target is None:
        return False
    kind = target["resourceType"]
    if kind == "Patient":
        hetu = _hetu(target)
        if hetu is None:
            return False
        child(child(parent, tag), "id", {"root": systems()["hetu_system"][8:], "extension": hetu})
        return True
    if kind == "Organization":
        el = child(parent, tag)
        child(el, "id", {"nullFlavor": "NA"})
        write_org(s, el, "representedOrganization", target)
        return True
    if kind == "PractitionerRole":
        _write_role(s, idx, child(parent, tag), target)
        return True
    return False


def _write_role(s: Structure, idx: Index, el: Element, role: dict[str, Any]) -> None:
    person = idx.get(role.get("practitioner")) or {}
    written = any(datatypes.write_identifier(s, el, "id", i) for i in person.get("identifier", ()))
    if not written:
        key = f"Practitioner/{person['id']}" if person else f"PractitionerRole/{role['id']}"
        child(el, "id", {"root": s.raw["local_id_root"], "extension": key})
    if role.get("code"):
        datatypes.write_concept(s, el, "code", role["code"][0])
    names = person.get("name") or [{}]
    datatypes.write_name(child(el, "assignedPerson"), names[0] or {"text": ""})
    org = idx.get(role.get("organization"))
    if org:
        write_org(s, el, "representedOrganization", org)


def _hetu(patient: dict[str, Any]) -> str | None:
    system = systems()["hetu_system"]
    return next(
        (i["value"] for i in patient.get("identifier", ()) if i.get("system") == system), None
    )


def hetu(patient: dict[str, Any]) -> str | None:
    return _hetu(patient)
