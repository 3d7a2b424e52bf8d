"""The DocumentReference that files an imported document (gateway/documents/filed.py)."""

from __future__ import annotations

import base64
import hashlib

from adapters.cda.convert import to_fhir
from adapters.ids import EXAMPLE_KEY, Ids
from gateway.documents.filed import document_reference, master_identifier
from tests.gateway.documents.helpers import CDA_SAMPLES


def test_identifiers_of_oid_and_uuid_roots() -> None:
    assert master_identifier("1.2.3^x") == {"system": "urn:oid:1.2.3", "value": "x"}
    assert master_identifier("1.2.3") == {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3"}
    uuid = "AE920268-1184-5b51-80f1-d74858065d81"
    assert master_identifier(uuid)["value"] == f"urn:uuid:{uuid.lower()}"


def test_the_same_document_gives_the_same_resource() -> None:
    data = (CDA_SAMPLES / "hosu-aino.xml").read_bytes()
    imported = to_fhir(data, Ids(EXAMPLE_KEY))
    first = document_reference(imported, data, "org-a")
    assert first == document_reference(to_fhir(data, Ids(EXAMPLE_KEY)), data, "org-a")
    attachment = first["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]) == data
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert first["custodian"] == {"reference": "Organization/org-a"}
    assert first["subject"] == {"reference": imported.patient_fullurl}
    assert "custodian" not in document_reference(imported, data, None)
