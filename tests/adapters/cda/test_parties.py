"""CDA participants (adapters/cda/cda_to_fhir/parties.py): a participant named by HETU is the
client only when it is the recordTarget's HETU; another person's HETU is refused with
CdaError invalid-value naming where (never filed as the client, never quoting the value)."""

from __future__ import annotations

import pytest

from adapters.cda.convert import to_fhir
from adapters.cda.errors import CdaError
from tests.adapters.cda.helpers import IDS, SAMPLES

AINO = (SAMPLES / "hosu-aino.xml").read_bytes()
TERHIKKI = b'<id root="1.2.246.537.26" extension="10099990011"/>'  # a professional's id


def test_a_participant_with_another_persons_hetu_is_refused() -> None:
    data = AINO.replace(TERHIKKI, b'<id root="1.2.246.21" extension="010101-123N"/>')
    assert data != AINO
    with pytest.raises(CdaError) as err:
        to_fhir(data, IDS)
    assert err.value.code == "invalid-value"
    assert "010101-123N" not in str(err.value) and err.value.line


def test_a_participant_with_the_clients_hetu_is_the_client() -> None:
    data = AINO.replace(TERHIKKI, b'<id root="1.2.246.21" extension="150390-902D"/>')
    imported = to_fhir(data, IDS)
    team = next(
        e["resource"]
        for e in imported.bundle["entry"]
        if e["resource"]["resourceType"] == "CareTeam"
    )
    members = [p["member"]["reference"] for p in team["participant"]]
    assert imported.patient_fullurl in members
