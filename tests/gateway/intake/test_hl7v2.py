"""gateway/intake/hl7v2.handle: ADT^A04/A08 through the pipeline on both stores; ACKs for every
outcome (AA/AE/AR, MSA-2 = MSH-10, ERR naming segment/field); repeats and rejects change nothing."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from adapters.hl7v2.builders.patient import HETU_SYSTEM
from adapters.hl7v2.parse import validate_outbound
from gateway.fhir_api.context import Services
from gateway.intake.hl7v2 import handle
from tests.gateway.intake.acks import code, segments
from tests.gateway.intake.conftest import sample

# hl7apy lists "HL70357" as not in its table 0396 (see tests/adapters/hl7v2/test_ack.py)
HL7APY_0396 = "warning: value not in table HL70396 in element ERR_3.CWE_3"
AINO = "010190-900P"
MSH = (
    "MSH|^~\\&|PEGASOS|SATSHP^1.2.246.10.2345678.10.0^ISO|PLAN_GATEWAY|TYK|20250314093000||"
    "{event}|{control}|P|2.5.1\r"
)
PID = "PID|1||010190-900P^^^&1.2.246.21&ISO^NNFIN||Virtanen^Aino||19900101|F"


def message(event: str = "ADT^A04^ADT_A01", control: str = "C1", body: str = PID) -> bytes:
    return (MSH.format(event=event, control=control) + body + "\r").encode()


def state(svc: Services) -> tuple:
    """What a message may change: every stored version but the AuditEvents (a refusal is
    audited as a denial), and the message log."""
    with svc.repo.reader() as session:
        versions = session.query(
            "SELECT res_type, res_id, version FROM history WHERE res_type <> 'AuditEvent' "
            "ORDER BY res_type, res_id, version"
        )
        log = session.query("SELECT sender, control_id FROM hl7v2_messages ORDER BY control_id")
    return tuple(versions), tuple(log)


def patient(svc: Services, hetu: str) -> dict | None:
    with svc.repo.reader() as session:
        sv = session.current("Patient", svc.ids.personal(HETU_SYSTEM, hetu))
    return orjson.loads(sv.body) if sv is not None else None


def test_a04_creates_the_patient_under_its_pseudonymous_id_and_answers_aa(intake) -> None:
    ack = handle(intake, sample("adt-a04"), "127.0.0.1:5000")
    seg = segments(ack)
    assert seg["MSA"] == ["MSA", "AA", "PGS000123"]  # MSA-2 = MSH-10
    assert seg["MSH"][8] == "ACK^A04^ACK"
    assert [p for p in validate_outbound(ack.decode()) if p != HL7APY_0396] == []
    stored = patient(intake, AINO)
    assert stored["identifier"][0]["value"] == AINO
    assert AINO not in stored["id"]
    # the record system created it, so it holds it (custodian stamp of the write rules)
    assert "org-sote-keskus" in orjson.dumps(stored.get("extension", [])).decode()


def test_a_repeated_message_gets_the_same_ack_and_changes_nothing(intake) -> None:
    first = handle(intake, sample("adt-a04"), None)
    before = state(intake)
    again = handle(intake, sample("adt-a04"), None)
    assert again == first
    assert state(intake) == before


def test_a08_updates_the_same_patient(intake) -> None:
    assert code(handle(intake, sample("adt-a04"), None)) == "AA"
    update = message("ADT^A08^ADT_A01", "C2", PID.replace("Virtanen^Aino", "Virtanen^Aino^Maija"))
    assert code(handle(intake, update, None)) == "AA"
    stored = patient(intake, AINO)
    assert stored["meta"]["versionId"] == "2"
    assert stored["name"][0]["given"] == ["Aino", "Maija"]


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_lf_and_crlf_segment_ends_are_read_as_cr(intake, ending: str) -> None:
    raw = sample("adt-a04").decode().replace("\r", ending).encode()
    assert code(handle(intake, raw, None)) == "AA"
    assert patient(intake, AINO) is not None


def test_an_unknown_sender_is_rejected_and_nothing_is_written(intake) -> None:
    before = state(intake)
    raw = sample("adt-a04").replace(b"PEGASOS", b"OTHERSYS", 1)
    seg = segments(handle(intake, raw, None))
    assert seg["MSA"][1:] == ["AR", "PGS000123"]
    assert seg["ERR"][2] == "MSH^1^4"
    assert state(intake) == before


def test_a_registered_sender_from_an_address_it_did_not_register_is_refused(intake) -> None:
    """MLLP authenticates nobody: the sample record system registered loopback peers only, so
    the same MSH-3/MSH-4 from another address is an unknown sender (AR, nothing written)."""
    before = state(intake)
    seg = segments(handle(intake, sample("adt-a04"), "192.0.2.10:40000"))
    assert seg["MSA"][1:] == ["AR", "PGS000123"] and seg["ERR"][2] == "MSH^1^4"
    assert state(intake) == before
    assert code(handle(intake, sample("adt-a04"), "127.0.0.1:40000")) == "AA"
    assert code(handle(intake, sample("adt-a08"), "::1:40001")) == "AA"


def test_an_unknown_sender_is_audited_as_a_refusal_without_message_content(intake) -> None:
    raw = sample("adt-a04").replace(b"PEGASOS", b"OTHERSYS", 1)
    handle(intake, raw, "10.1.2.3:40000")
    with intake.repo.reader() as session:
        bodies = [
            r[0]
            for r in session.query("SELECT body FROM resources WHERE res_type = ?", ("AuditEvent",))
        ]
    (event,) = [orjson.loads(b) for b in bodies]
    assert event["outcome"] == "8" and event["outcomeDesc"] == "unknown-sender"
    text = orjson.dumps(event).decode()
    assert "10.1.2.3" in text
    for content in ("OTHERSYS", AINO, "Virtanen", "PGS000123"):
        assert content not in text


def test_an_unsupported_event_is_ar_naming_msh_9(intake) -> None:
    seg = segments(handle(intake, message("ORU^R01^ORU_R01"), None))
    assert seg["MSA"][1] == "AR"
    assert seg["ERR"][2:4] == ["MSH^1^9", "201^^HL70357"]  # unsupported event code


def test_a_content_error_is_ae_naming_segment_and_field(intake) -> None:
    before = state(intake)
    no_hetu = PID.replace("^^^&1.2.246.21&ISO^NNFIN", "^^^SATSHP^MR")
    seg = segments(handle(intake, message(body=no_hetu), None))
    assert seg["MSA"][1:] == ["AE", "C1"]
    assert seg["ERR"][2:4] == ["PID^1^3", "101^^HL70357"]  # required field missing
    assert state(intake) == before


def test_a_rejected_message_is_processed_again_when_resent(intake) -> None:
    bad = message(body=PID.replace("19900101", "19901301"))  # PID-7 no date
    assert code(handle(intake, bad, None)) == "AE"
    assert code(handle(intake, message(), None)) == "AA"  # same MSH-10, now valid


@pytest.mark.parametrize(
    "raw, msa2",
    [
        (b"", ""),
        (b"garbage", ""),
        (b"MSH|^~\\&", ""),  # too short for MSH-1/MSH-2 and MSH-10
        (b"MSH|^~\\&|PEGASOS|X|||20250101||ADT^A04|C9|P\r", "C9"),  # MSH-12 missing
        (b"\xff\xfe\x00MSH", ""),
    ],
)
def test_unreadable_input_is_ar_with_the_control_id_when_readable(intake, raw, msa2) -> None:
    seg = segments(handle(intake, raw, None))
    assert seg["MSA"][1:] == ["AR", msa2]
    assert seg["ERR"][3].endswith("^^HL70357")


def test_a_registration_allow_list_narrows_the_events(intake) -> None:
    registry = intake.security.registry
    org = registry.find("sote-keskus")
    narrowed = type(org.hl7v2)(org.hl7v2.application, org.hl7v2.facility, events=("ADT^A08",))
    registry.by_hl7v2[(org.hl7v2.application, org.hl7v2.facility)] = type(org)(
        **{**org.__dict__, "hl7v2": narrowed}
    )
    assert code(handle(intake, sample("adt-a04"), None)) == "AR"
    assert code(handle(intake, message("ADT^A08^ADT_A01"), None)) == "AA"


def test_concurrent_copies_of_one_message_apply_once(intake) -> None:
    raw = sample("adt-a04")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: handle(intake, raw, None), range(8)))
    assert {code(a) for a in answers} == {"AA"}
    assert len(set(answers)) == 1  # every copy gets the ACK of the one that applied
    assert patient(intake, AINO)["meta"]["versionId"] == "1"


def test_nothing_personal_reaches_the_log(intake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    handle(intake, sample("adt-a04"), None)
    handle(intake, message(body=PID.replace("19900101", "1990x")), "10.0.0.1:1")
    handle(intake, sample("adt-a04").replace(b"PEGASOS", b"X", 1), None)
    text = caplog.text
    for personal in (AINO, "Virtanen", "Aino", "19900101", "1990x"):
        assert personal not in text


def test_a_different_message_reusing_a_control_id_is_ae_naming_msh_10(intake) -> None:
    assert code(handle(intake, message(control="C7"), None)) == "AA"
    before = state(intake)
    other = message("ADT^A08^ADT_A01", "C7", PID.replace("Virtanen^Aino", "Virtanen^Aino^Maija"))
    seg = segments(handle(intake, other, None))
    assert seg["MSA"][1:] == ["AE", "C7"]
    assert seg["ERR"][2:4] == ["MSH^1^10", "207^^HL70357"]
    assert seg["ERR"][7].startswith("duplicate-control-id:")
    assert state(intake) == before
    assert patient(intake, AINO)["name"][0]["given"] == ["Aino"]  # not silently applied
    assert code(handle(intake, message("ADT^A08^ADT_A01", "C8", PID), None)) == "AA"


def test_the_same_message_framed_differently_still_gets_the_stored_ack(intake) -> None:
    first = handle(intake, message(control="C9"), None)
    before = state(intake)
    for copy in (message(control="C9").replace(b"\r", b"\r\n"), b"\n" + message(control="C9")):
        assert handle(intake, copy, None) == first
    restamped = message(control="C9").replace(b"|20250314093000|", b"|20250314093500|", 1)
    assert restamped != message(control="C9")
    assert handle(intake, restamped, None) == first  # a resend stamped anew (MSH-7)
    assert state(intake) == before


def test_a_message_logged_without_a_digest_counts_as_the_same(intake) -> None:
    """Rows logged before migration 4 have no digest: unknown, answered as a repeat."""
    first = handle(intake, message(control="C10"), None)
    with intake.repo.writer() as session:
        session.execute("UPDATE hl7v2_messages SET digest = NULL")
    other = message("ADT^A08^ADT_A01", "C10", PID.replace("Virtanen^Aino", "Virtanen^Aino^Maija"))
    assert handle(intake, other, None) == first
