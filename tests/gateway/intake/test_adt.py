"""ADT^A04/A08 of a Patient stored under another id (the samples' Patient/aino, HETU
150390-902D, created over REST): found by its HETU, updated in place with only what the PID
says replaced; merge state, security labels and other organisations' elements are kept; a
concurrent change is AE (If-Match), a retired identity is AE naming PID-3 (test_merge.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

import gateway.intake.adt as adt
from adapters.hl7v2.builders.patient import HETU_SYSTEM
from gateway.consent import records
from gateway.consent.vocabulary import CUSTODIAN_EXTENSION
from gateway.fhir_api.context import Services
from gateway.intake.hl7v2 import handle
from gateway.samples import load_samples
from tests.gateway.intake.acks import code, segments
from tests.gateway.intake.test_hl7v2 import MSH, state

AINO = "150390-902D"  # Patient/aino of the samples
RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
OTHER_ID = {"system": "urn:oid:1.2.246.10.2345678.10.1", "value": "MR-1"}
KELA = "Organization/org-kela"  # holds the hidden client, shares nothing with the sender
EXTENSION = {"url": "https://example.org/StructureDefinition/x", "valueString": "kept"}


def a08(control: str, pid_tail: str = "||Testinen^Aino^Uusi||19900315|F") -> bytes:
    msh = MSH.format(event="ADT^A08^ADT_A01", control=control)
    return f"{msh}EVN|A08\rPID|1||{AINO}^^^&1.2.246.21&ISO^NNFIN{pid_tail}\r".encode()


def current(svc: Services, id: str = "aino") -> dict:
    with svc.repo.reader() as session:
        return orjson.loads(session.current("Patient", id).body)


def store(svc: Services, resource: dict) -> None:
    """A write outside the intake (as a REST client or another message would make it)."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    if resource.get("meta"):
        meta = {k: v for k, v in resource["meta"].items() if k not in ("versionId", "lastUpdated")}
        body["meta"] = meta
    with svc.repo.writer() as session:
        session.write("Patient", resource["id"], body, "PUT")


@pytest.fixture
def aino(intake: Services) -> Services:
    """The samples, Patient/aino turvakielto-labelled (R) with an identifier and an extension
    that no PID carries."""
    load_samples(intake)
    patient = current(intake)
    patient["meta"]["security"] = [RESTRICTED]
    patient["identifier"].append(OTHER_ID)
    patient["extension"] = [EXTENSION]
    store(intake, patient)
    return intake


def test_an_a08_updates_the_stored_patient_found_by_hetu_and_keeps_what_no_pid_says(
    aino,
) -> None:
    before = current(aino)
    assert code(handle(aino, a08("U1"), None)) == "AA"
    after = current(aino)
    assert after["name"] == [{"family": "Testinen", "given": ["Aino", "Uusi"]}]
    assert after["birthDate"] == "1990-03-15"
    assert after["meta"]["versionId"] == str(int(before["meta"]["versionId"]) + 1)
    # everything the PID does not map is as stored: the label, tags, the record's other facts
    assert after["meta"]["security"] == [RESTRICTED]
    assert after["meta"].get("tag") == before["meta"].get("tag")
    assert records.is_protected(after)
    for kept in ("active", "managingOrganization", "communication", "extension"):
        assert after[kept] == before[kept], kept
    assert after["identifier"] == before["identifier"]  # the HETU entry and MR-1
    assert after["address"] == before["address"]  # PID-11 empty: the stored value stays
    # no second Patient under the pseudonym of the HETU
    with aino.repo.reader() as session:
        assert session.current("Patient", aino.ids.personal(HETU_SYSTEM, AINO)) is None


def test_an_a08_replaces_the_elements_the_pid_carries(aino) -> None:
    tail = "||Testinen^Aino||19900315|F|||Uusi katu 2^^Pori^^28100^FI||0401234567^PRN^PH"
    assert code(handle(aino, a08("U2", tail), None)) == "AA"
    after = current(aino)
    assert after["address"] == [
        {"line": ["Uusi katu 2"], "city": "Pori", "postalCode": "28100", "country": "FI"}
    ]
    assert after["telecom"] == [{"system": "phone", "value": "0401234567", "use": "home"}]
    assert after["meta"]["security"] == [RESTRICTED]


def test_a_change_between_the_read_and_the_write_is_ae_and_changes_nothing_more(
    aino, monkeypatch
) -> None:
    read = adt._stored

    def read_then_changed(*args, **kwargs):
        stored = read(*args, **kwargs)
        store(aino, {**current(aino), "gender": "other"})  # a concurrent writer
        return stored

    monkeypatch.setattr(adt, "_stored", read_then_changed)
    ack = handle(aino, a08("U3"), None)
    seg = segments(ack)
    assert seg["MSA"][1:] == ["AE", "U3"]
    assert seg["ERR"][3] == "206^^HL70357"  # conflict: the sender resends
    monkeypatch.undo()
    changed = state(aino)
    assert current(aino)["gender"] == "other"  # the concurrent write stands
    assert code(handle(aino, a08("U3"), None)) == "AA"  # the resend applies
    assert state(aino) != changed


def test_concurrent_copies_of_one_update_get_the_same_aa_and_apply_once(aino) -> None:
    version = int(current(aino)["meta"]["versionId"])
    raw = a08("U4")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: handle(aino, raw, None), range(8)))
    assert {code(a) for a in answers} == {"AA"}
    assert len(set(answers)) == 1  # every copy gets the ACK of the one that applied
    assert current(aino)["meta"]["versionId"] == str(version + 1)


def test_a_patient_hidden_from_the_sender_is_refused_never_duplicated(intake) -> None:
    """Another organisation's client with the same HETU: AE naming PID-3, no second Patient."""
    hidden = {
        "resourceType": "Patient",
        "id": "hidden",
        "identifier": [{"system": HETU_SYSTEM, "value": AINO}],
        "extension": [{"url": CUSTODIAN_EXTENSION, "valueReference": {"reference": KELA}}],
    }
    store(intake, hidden)
    before = state(intake)
    seg = segments(handle(intake, a08("U5"), None))
    assert seg["MSA"][1:] == ["AE", "U5"]
    assert seg["ERR"][2] == "PID^1^3"
    assert state(intake) == before
