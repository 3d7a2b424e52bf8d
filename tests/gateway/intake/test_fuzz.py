"""10,000 seeded mutants of the ADT samples through `handle`, on each store: every one answered
with a well-formed ACK echoing its MSH-10; AE/AR change nothing (no version, no log row); AA only
for a mutant that is still a valid message, and then it is applied completely; no exception and
no "internal" failure. FUZZ_COUNT / FUZZ_SEED change the run (defaults: 10,000, 5)."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter

import orjson

from adapters.hl7v2.ack import best_control_id
from adapters.hl7v2.builders import merge
from adapters.hl7v2.convert import to_bundle
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.escape import Delimiters, unescape
from adapters.hl7v2.message import Message, decode, parse
from gateway.fhir_api.context import Services
from gateway.intake.hl7v2 import handle
from tests.gateway.intake.acks import segments
from tests.gateway.intake.conftest import sample
from tests.gateway.intake.mutants import mutants

COUNT = int(os.environ.get("FUZZ_COUNT", "10000"))
SEED = int(os.environ.get("FUZZ_SEED", "5"))
SEEDS = ("adt-a04", "adt-a08", "adt-a04-duplicate", "adt-a40")


def counts(svc: Services) -> tuple[int, int]:
    """(versions stored but AuditEvents, message-log rows): what any write of a message changes
    (a new version is a new history row). A refusal may add AuditEvents (denials), nothing else.
    One statement: this runs after each of the 10,000 mutants."""
    with svc.repo.reader(consistent=False) as session:
        ((versions, logged),) = session.query(
            "SELECT (SELECT COUNT(*) FROM history WHERE res_type <> 'AuditEvent'), "
            "(SELECT COUNT(*) FROM hl7v2_messages)"
        )
    return int(versions), int(logged)


def current(svc: Services, resource_type: str, id: str) -> dict | None:
    with svc.repo.reader() as session:
        sv = session.current(resource_type, id)
    return orjson.loads(sv.body) if sv is not None and not sv.deleted else None


def applied_completely(svc: Services, message: Message) -> bool:
    """What an AA promised is in the store: the mapped Patient's fields, or both merged."""
    if message.event in ("ADT^A04", "ADT^A08"):
        (entry,) = to_bundle(message, svc.ids)["entry"]  # raises if the mutant is not valid
        mapped = entry["resource"]
        stored = current(svc, "Patient", mapped["id"])
        return stored is not None and all(stored.get(k) == v for k, v in mapped.items())
    if message.event == "ADT^A40":
        target, source = merge.hetus(message)
        ids = [svc.ids.personal("urn:oid:1.2.246.21", h) for h in (source, target)]
        stored = [current(svc, "Patient", i) for i in ids]
        return None not in stored and merge.is_merged(stored[0], stored[1])
    return False


def ack_of(raw: bytes, ack: bytes) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, ERR-7) of a well-formed ACK; MSA-2 checked against the mutant's MSH-10."""
    answer = segments(ack)  # not parse(): an AR to unreadable input may lack MSH-9.2
    assert ack.startswith(b"MSH|^~\\&|") and answer["MSH"][8].startswith("ACK^")
    msa_code, msa_control = answer["MSA"][1], unescape(answer["MSA"][2], Delimiters())
    try:
        expected = parse(raw).control_id
    except Hl7Error:
        expected = best_control_id(decode(raw))
    assert msa_control == expected
    return msa_code, msa_control, answer["ERR"][7] if "ERR" in answer else ""


def test_ten_thousand_mutants_are_answered_and_never_half_applied(intake, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="gateway")
    seeds = [sample(name).decode() for name in SEEDS]
    for raw in seeds:  # the originals, so that updates and the merge have patients to work on
        assert segments(handle(intake, raw.encode(), None))["MSA"][1] == "AA"
    outcomes: Counter[str] = Counter()
    applied = {parse(raw).control_id for raw in seeds}
    started = time.perf_counter()
    before = counts(intake)
    for raw in mutants(seeds, COUNT, SEED):
        ack = handle(intake, raw, None)  # never raises (a raise fails the test here)
        code, control, diagnostic = ack_of(raw, ack)
        after = counts(intake)
        assert not diagnostic.startswith("internal"), raw
        if code == "AA" and control in applied:  # a mutated MSH-10 hit an earlier one: repeat
            assert after == before, raw
        elif code == "AA":
            applied.add(control)
            message = parse(raw)
            assert applied_completely(intake, message), raw
            assert after[1] == before[1] + 1  # logged with its writes
        else:
            assert code in ("AE", "AR"), raw
            assert after == before, raw  # nothing written: no version, no log row
        outcomes[code] += 1
        before = after
    elapsed = time.perf_counter() - started
    print(f"\nfuzz {COUNT} mutants: {dict(outcomes)} in {elapsed:.1f} s")
    assert sum(outcomes.values()) == COUNT
    assert min(outcomes["AA"], outcomes["AE"], outcomes["AR"]) > COUNT // 50  # all three seen
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
