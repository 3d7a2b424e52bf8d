"""CDA participants -> FHIR: organisations (SOTE OIDs), professionals (Terhikki) in their roles,
and the client. Directory resources are conditional creates on their national identifier, so a
document never overwrites the directory; a role is a PUT with an id derived from who, where, what.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from adapters.cda import datatypes, nodes
from adapters.cda.cda_to_fhir.context import Doc, by_identifier
from adapters.cda.errors import CdaError
from adapters.cda.mapping import systems, translate
from adapters.ids import Ids

Element = nodes.Element


def organization(doc: Doc, org: Element | None, path: str) -> str | None:
    """representedOrganization / representedCustodianOrganization -> Organization fullUrl."""
    if org is None:
        return None
    ident = _org_identifier(doc, nodes.first(org, "id"))
    fixed_id = Ids.derived("Organization", ident["system"], ident["value"]) if ident else None
    if fixed_id and f"urn:uuid:{fixed_id}" in doc.entries:  # named before: the first one counts
        return f"urn:uuid:{fixed_id}"
    resource: dict[str, Any] = {"resourceType": "Organization"}
    if ident:
        resource["identifier"] = [ident]
    kind = datatypes.concept(doc.s, nodes.first(org, "standardIndustryClassCode"))
    if kind is None and ident and ident["system"] == systems()["sote_organisation_system"]:
        kind = doc.s.raw["default_organization_type"]
    if kind:
        resource["type"] = [kind]
    name = nodes.text(nodes.first(org, "name"))
    if name:
        resource["name"] = name
    if not ident or not fixed_id:
        resource["id"] = doc.derived(path, "Organization")
        return doc.put(resource, target=False)
    resource["id"] = fixed_id
    return doc.create(resource, by_identifier(ident), fixed_id)


def _org_identifier(doc: Doc, ii: Element | None) -> dict[str, str] | None:
    if ii is None or not ii.get("root"):
        return None
    root = ii.get("root")
    if not ii.get("extension") and root.startswith(doc.s.raw["sote_organisation_prefix"]):
        return {"system": systems()["sote_organisation_system"], "value": root}
    return datatypes.identifier(doc.s, ii)


def assigned(doc: Doc, el: Element | None, path: str) -> str | None:
    """assignedEntity / assignedAuthor -> the fullUrl of the client, a PractitionerRole (a
    person of an organisation) or an Organization (no person); None when nobody is named."""
    if el is None:
        return None
    ii = nodes.first(el, "id")
    if ii is not None and ii.get("root") == systems()["hetu_system"][8:]:
        return _the_client(doc, ii, path)
    org_url = organization(doc, nodes.first(el, "representedOrganization"), path)
    person = nodes.first(el, "assignedPerson")
    if person is None:
        return org_url
    practitioner, prac_key = _practitioner(doc, ii, person, path)
    code = datatypes.concept(doc.s, nodes.first(el, "code"))
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": Ids.derived("PractitionerRole", prac_key, org_url or "", _code_key(code)),
        "practitioner": {"reference": practitioner},
    }
    if org_url:
        role["organization"] = {"reference": org_url}
    if code:
        role["code"] = [code]
    if org_url and doc.is_conditional(practitioner) and doc.is_conditional(org_url):
        # both from the directory: the directory's own role (same person, place and code) is
        # reused; the transaction resolves these fullUrls before this entry (bundle order)
        return doc.create(role, _role_query(practitioner, org_url, code), role["id"])
    return doc.put(role, target=False)


def _the_client(doc: Doc, ii: Element, path: str) -> str:
    """A participant named by HETU is the client only when it is the recordTarget's HETU; any
    other person's HETU in a plan document is refused (never filed as the client)."""
    if not doc.hetu or ii.get("extension") != doc.hetu:
        raise CdaError(
            "invalid-value",
            f"{path}: a participant's id has the HETU root but is not the client's HETU",
            nodes.line(ii),
        )
    return doc.patient


def _role_query(practitioner: str, org_url: str, code: dict[str, Any] | None) -> str:
    query = f"practitioner={practitioner}&organization={org_url}"
    coding = ((code or {}).get("coding") or [{}])[0]
    if coding.get("system") and coding.get("code"):
        query += f"&role={quote(coding['system'], safe=':/.')}|{quote(coding['code'], safe='')}"
    return query


def _practitioner(doc: Doc, ii: Element | None, person: Element, path: str) -> tuple[str, str]:
    resource: dict[str, Any] = {"resourceType": "Practitioner"}
    name = datatypes.human_name(nodes.first(person, "name"))
    if name:
        resource["name"] = [name]
    ident = datatypes.identifier(doc.s, ii)
    if ident is None:
        resource["id"] = doc.derived(path, "Practitioner")
        return doc.put(resource, target=False), resource["id"]
    resource["identifier"] = [ident]
    resource["id"] = Ids.derived("Practitioner", ident["system"], ident["value"])
    return doc.create(resource, by_identifier(ident), resource["id"]), resource["id"]


def _code_key(code: dict[str, Any] | None) -> str:
    coding = (code or {}).get("coding") or [{}]
    return f"{coding[0].get('system', '')}|{coding[0].get('code', '')}"


def patient(doc: Doc, role: Element) -> str:
    """recordTarget/patientRole -> the Patient (conditional create on the HETU)."""
    hetu_root = systems()["hetu_system"][8:]
    ii = next((i for i in nodes.every(role, "id") if i.get("root") == hetu_root), None)
    ii = ii if ii is not None else nodes.first(role, "id")
    ident = datatypes.identifier(doc.s, ii)
    if ident is None or ii is None or not ii.get("extension"):
        raise CdaError("missing-element", "recordTarget/patientRole/id", nodes.line(role))
    person = nodes.first(role, "patient")
    resource: dict[str, Any] = {"resourceType": "Patient", "identifier": [ident]}
    name = datatypes.human_name(nodes.first(person, "name"))
    if name:
        resource["name"] = [name]
    gender_el = nodes.first(person, "administrativeGenderCode")
    if gender_el is not None:
        resource["gender"] = _gender(gender_el)
    birth = datatypes.fhir_time(nodes.first(person, "birthTime"))
    if birth:
        resource["birthDate"] = birth[:10]
    resource["id"] = doc.ids.personal(ident["system"], ident["value"])
    doc.hetu = str(ii.get("extension")) if ii.get("root") == hetu_root else ""
    doc.patient = doc.create(resource, by_identifier(ident), resource["id"])
    return doc.patient


def _gender(el: Element) -> str:
    if el.get("nullFlavor"):
        return "unknown"
    return translate("cda-to-administrative-gender", el.get("code")) or "unknown"
