"""FHIR XML on the wire: create, read, search and errors in XML; unsafe XML refused."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from gateway.errors import FhirError
from gateway.fhir_api import xml

NS = {"f": "http://hl7.org/fhir"}
XML_HEADERS = {"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"}

# A Goal with a narrative, a primitive extension and a repeated element.
GOAL_XML = b"""<Goal xmlns="http://hl7.org/fhir">
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Oma tavoite</p></div>
  </text>
  <lifecycleStatus value="active">
    <extension url="http://example.org/x"><valueBoolean value="true"/></extension>
  </lifecycleStatus>
  <category><text value="a"/></category>
  <category><text value="b"/></category>
  <description><text value="Get back to work"/></description>
  <subject><reference value="Patient/p1"/></subject>
</Goal>"""


def _values(body: bytes, path: str) -> list[str]:
    return etree.fromstring(body).xpath(path, namespaces=NS)


def test_create_and_read_in_xml(client: TestClient) -> None:
    r = client.post("/fhir/Goal", content=GOAL_XML, headers=XML_HEADERS)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/fhir+xml")
    gid = _values(r.content, "/f:Goal/f:id/@value")[0]
    as_json = client.get(f"/fhir/Goal/{gid}").json()
    assert as_json["lifecycleStatus"] == "active"
    assert as_json["_lifecycleStatus"]["extension"][0]["valueBoolean"] is True
    assert [c["text"] for c in as_json["category"]] == ["a", "b"]
    assert as_json["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml"><p>')
    r = client.get(f"/fhir/Goal/{gid}?_format=xml")
    assert _values(r.content, "/f:Goal/f:subject/f:reference/@value") == ["Patient/p1"]
    assert _values(r.content, "/f:Goal/f:category/f:text/@value") == ["a", "b"]


def test_search_bundle_in_xml(client: TestClient) -> None:
    client.post("/fhir/Goal", content=GOAL_XML, headers=XML_HEADERS)
    r = client.get("/fhir/Goal", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 200
    assert _values(r.content, "/f:Bundle/f:type/@value") == ["searchset"]
    assert len(_values(r.content, "/f:Bundle/f:entry/f:resource/f:Goal")) == 1


def test_history_bundle_in_xml(client: TestClient) -> None:
    gid = client.post("/fhir/Goal", content=GOAL_XML, headers=XML_HEADERS).headers["location"]
    r = client.get(f"{gid.split('/_history')[0]}/_history?_format=xml&_pretty=true")
    assert r.status_code == 200
    assert _values(r.content, "/f:Bundle/f:type/@value") == ["history"]
    assert _values(r.content, "//f:entry/f:resource/f:Goal/f:meta/f:versionId/@value") == ["1"]
    assert b"<p>Oma tavoite</p></div>" in r.content  # narrative left as sent, not re-indented


def test_error_outcome_in_xml(client: TestClient) -> None:
    body = GOAL_XML.replace(b'"active"', b'"bogus"')
    r = client.post("/fhir/Goal", content=body, headers=XML_HEADERS)
    assert r.status_code == 400
    assert _values(r.content, "//f:issue/f:expression/@value") == ["Goal.lifecycleStatus"]
    assert client.get("/fhir/Goal/_history").json()["total"] == 0


def test_xxe_is_refused_without_reading_the_file(client: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>'
    ).encode()
    r = client.post("/fhir/Patient", content=body, headers=XML_HEADERS)
    assert r.status_code == 400
    assert b"TOPSECRET" not in r.content
    assert client.get("/fhir/Patient/_history").json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"<Patient xmlns='http://hl7.org/fhir'><gender value='male'>", "body"),  # not closed
        (b"<Patient><gender value='male'/></Patient>", "Patient"),  # no FHIR namespace
        (b"<Nope xmlns='http://hl7.org/fhir'/>", "Nope"),  # unknown resource type
        (b"<Patient xmlns='http://hl7.org/fhir'><colour value='x'/></Patient>", "Patient.colour"),
        (b"<Patient xmlns='http://hl7.org/fhir'><active value='yes'/></Patient>", "Patient.active"),
        (b"<Patient xmlns='http://hl7.org/fhir'><gender>male</gender></Patient>", "Patient.gender"),
    ],
)
def test_bad_xml_is_a_400_with_a_path(body: bytes, where: str) -> None:
    with pytest.raises(FhirError) as e:
        xml.parse(body, 64)
    assert e.value.status == 400
    assert e.value.issues[0].expression == (where,)


def test_depth_is_bounded() -> None:
    inner = b"<extension url='u'>" * 40 + b"<valueBoolean value='true'/>" + b"</extension>" * 40
    body = b"<Patient xmlns='http://hl7.org/fhir'>" + inner + b"</Patient>"
    with pytest.raises(FhirError, match="deeper"):
        xml.parse(body, 16)


def test_json_xml_round_trip_keeps_primitive_extensions_and_nulls() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"given": ["Aino", None], "_given": [None, {"id": "g2"}]}],
        "_gender": {"extension": [{"url": "http://e", "valueCode": "x"}]},
        "multipleBirthInteger": 2,
        "contained": [{"resourceType": "Organization", "id": "o", "active": False}],
    }
    assert xml.parse(xml.render(patient, pretty=True), 64) == patient
