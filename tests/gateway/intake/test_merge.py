"""ADT^A40 through the pipeline, on the sample network (both stores): Aino's sample identity
(Patient/aino, HETU 150390-902D) is merged into a newly registered one; her plan, network, tasks
and consent follow; the same merge twice merges once (same or new MSH-10)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from adapters.hl7v2.builders.patient import HETU_SYSTEM
from gateway.fhir_api.context import Services
from gateway.intake.hl7v2 import handle
from gateway.samples import load_samples
from tests.gateway.intake.acks import code, segments
from tests.gateway.intake.test_hl7v2 import MSH, state

RETIRED = "150390-902D"  # Patient/aino of the samples
SURVIVOR = "150390-904F"
NEVER_REPOINTED = ("AuditEvent", "Provenance")


def a04(hetu: str, control: str) -> bytes:
    msh = MSH.format(event="ADT^A04^ADT_A01", control=control)
    return f"{msh}PID|1||{hetu}^^^&1.2.246.21&ISO^NNFIN||Testinen^Aino||19900315|F\r".encode()


def a40(control: str, target: str = SURVIVOR, source: str = RETIRED) -> bytes:
    msh = MSH.format(event="ADT^A40^ADT_A39", control=control)
    return (
        f"{msh}EVN|A40\rPID|1||{target}^^^&1.2.246.21&ISO^NNFIN||Testinen^Aino\r"
        f"MRG|{source}^^^&1.2.246.21&ISO^NNFIN\r"
    ).encode()


def referrers(svc: Services, patient_id: str) -> set[tuple[str, str]]:
    """(type, id) of every live resource whose references name Patient/`patient_id`."""
    with svc.repo.reader() as session:
        rows = session.query(
            "SELECT DISTINCT r.res_type, r.res_id FROM sp_reference r JOIN resources s "
            "ON s.res_type = r.res_type AND s.res_id = r.res_id AND s.deleted = 0 "
            "WHERE r.target_type = 'Patient' AND r.target_id = ?",
            (patient_id,),
        )
    return {(str(t), str(i)) for t, i in rows}


def current(svc: Services, resource_type: str, id: str) -> dict:
    with svc.repo.reader() as session:
        return orjson.loads(session.current(resource_type, id).body)


@pytest.fixture
def network(intake: Services) -> Services:
    load_samples(intake)
    assert code(handle(intake, a04(SURVIVOR, "REG1"), None)) == "AA"
    return intake


def test_the_merge_repoints_every_plan_resource_and_links_both_patients(network) -> None:
    survivor = network.ids.personal(HETU_SYSTEM, SURVIVOR)
    before = referrers(network, "aino")
    types = {t for t, _ in before}
    assert {"CarePlan", "CareTeam", "Task", "Consent", "ServiceRequest", "Goal"} <= types

    assert code(handle(network, a40("MRG1"), None)) == "AA"

    left = {k for k in referrers(network, "aino") if k[0] not in NEVER_REPOINTED}
    assert left == {("Patient", survivor)}  # only the survivor's `replaces` link
    moved = {k for k in before if k[0] not in (*NEVER_REPOINTED, "Patient")}
    assert moved <= referrers(network, survivor)
    retired = current(network, "Patient", "aino")
    assert retired["active"] is False
    assert {"other": {"reference": f"Patient/{survivor}"}, "type": "replaced-by"} in retired["link"]
    kept = current(network, "Patient", survivor)
    assert {"other": {"reference": "Patient/aino"}, "type": "replaces"} in kept["link"]
    plan = current(network, "CarePlan", "aino-plan")
    assert plan["subject"]["reference"] == f"Patient/{survivor}"


def test_the_same_merge_twice_merges_once(network) -> None:
    first = handle(network, a40("MRG1"), None)
    after = state(network)
    assert handle(network, a40("MRG1"), None) == first  # same MSH-10: the stored ACK
    assert state(network) == after
    again = handle(network, a40("MRG2"), None)  # new MSH-10, already merged: a logged no-op
    assert code(again) == "AA"
    versions, log = state(network)
    assert versions == after[0]
    assert [c for _, c in log] == ["MRG1", "MRG2", "REG1"]


def test_a_merge_of_an_unknown_patient_is_ae_naming_the_field_and_changes_nothing(
    network,
) -> None:
    before = state(network)
    seg = segments(handle(network, a40("MRG3", source="010101-999X"), None))
    assert seg["MSA"][1:] == ["AE", "MRG3"]
    assert seg["ERR"][2:4] == ["MRG^1^1", "204^^HL70357"]  # unknown key identifier
    seg = segments(handle(network, a40("MRG4", target="010101-999X"), None))
    assert seg["ERR"][2] == "PID^1^3"
    assert state(network) == before


def test_a_merge_of_a_patient_into_itself_is_ae(network) -> None:
    seg = segments(handle(network, a40("MRG5", source=SURVIVOR), None))
    assert seg["MSA"][1] == "AE" and seg["ERR"][2] == "MRG^1^1"


def test_a_merge_without_mrg_is_ae_naming_the_segment(network) -> None:
    raw = a40("MRG6").split(b"\rMRG")[0] + b"\r"
    seg = segments(handle(network, raw, None))
    assert seg["MSA"][1] == "AE" and seg["ERR"][2] == "MRG^1"


def test_an_update_of_a_retired_identity_is_ae_naming_pid_3_and_changes_nothing(
    network,
) -> None:
    """A PID has no merge state: an A08 of a retired identity must not undo its merge; the rule
    is to update the surviving patient."""
    duplicate = "010101-999X"  # registered over HL7 v2, so its Patient id is its pseudonym
    assert code(handle(network, a04(duplicate, "REG2"), None)) == "AA"
    assert code(handle(network, a40("MRG7", source=duplicate), None)) == "AA"
    before = state(network)
    for event, control in (("ADT^A08^ADT_A01", "UPD1"), ("ADT^A04^ADT_A01", "UPD2")):
        update = a04(duplicate, control).replace(b"ADT^A04^ADT_A01", event.encode())
        update = update.replace(b"Testinen^Aino", b"Testinen^Aino^Uusi")  # PID-5: a real change
        seg = segments(handle(network, update, None))
        assert seg["MSA"][1:] == ["AE", control]
        assert seg["ERR"][2:4] == ["PID^1^3", "206^^HL70357"]
    assert state(network) == before
    # the samples' Patient/aino (not under its pseudonym) is found by HETU just the same
    assert code(handle(network, a40("MRG8"), None)) == "AA"
    seg = segments(handle(network, a04(RETIRED, "UPD3"), None))
    assert seg["MSA"][1] == "AE" and seg["ERR"][2] == "PID^1^3"
    assert current(network, "Patient", "aino")["active"] is False


def test_a_merge_into_a_retired_patient_is_ae_naming_pid_3(network) -> None:
    """A -> B, then B -> A (a loop) or C -> A (a chain onto a retired identity): refused."""
    assert code(handle(network, a40("MRG1"), None)) == "AA"
    third = "010101-999X"
    assert code(handle(network, a04(third, "REG3"), None)) == "AA"
    before = state(network)
    seg = segments(handle(network, a40("MRG9", target=RETIRED, source=SURVIVOR), None))
    assert seg["MSA"][1:] == ["AE", "MRG9"]
    assert seg["ERR"][2:4] == ["PID^1^3", "206^^HL70357"]
    seg = segments(handle(network, a40("MRG10", target=RETIRED, source=third), None))
    assert seg["ERR"][2] == "PID^1^3"
    assert state(network) == before
    assert current(network, "Patient", "aino")["active"] is False
    survivor = network.ids.personal(HETU_SYSTEM, SURVIVOR)
    assert current(network, "Patient", survivor).get("active") is not False


def test_a_patient_merged_into_another_is_not_merged_again_ae_naming_mrg_1(network) -> None:
    assert code(handle(network, a40("MRG1"), None)) == "AA"
    third = "010101-999X"
    assert code(handle(network, a04(third, "REG3"), None)) == "AA"
    before = state(network)
    seg = segments(handle(network, a40("MRG11", target=third), None))  # aino again, elsewhere
    assert seg["MSA"][1:] == ["AE", "MRG11"]
    assert seg["ERR"][2:4] == ["MRG^1^1", "206^^HL70357"]
    assert state(network) == before
    assert code(handle(network, a40("MRG12"), None)) == "AA"  # the same pair: the no-op


def test_concurrent_copies_of_one_merge_get_the_same_aa(network) -> None:
    raw = a40("MRG13")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: handle(network, raw, None), range(8)))
    assert {code(a) for a in answers} == {"AA"}
    assert len(set(answers)) == 1
    assert current(network, "Patient", "aino")["meta"]["versionId"] == "2"
