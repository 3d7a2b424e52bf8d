"""REF^I12 -> responsibility (parse + read + build ServiceRequest/Task, no storage) and RRI^I12
out (build, and hl7apy's validation the relay runs before sending), msgs/s on one core, against
the ER7 parse alone of the same referral samples (samples/hl7v2/ref-*.hl7), in alternating rounds.

    .venv/bin/python bench/hl7v2_referral.py [--rounds 5] [--seconds 1.0]

Read the ratios: the machine is shared, absolute numbers move from run to run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.hl7v2.builders import referral, rri
from adapters.hl7v2.message import parse
from adapters.hl7v2.parse import validate_outbound
from adapters.ids import EXAMPLE_KEY, Ids
from bench.rates import rate

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "samples" / "hl7v2").glob("ref-*.hl7"))
MESSAGES = [p.read_text(encoding="utf-8").replace("\n", "\r") for p in SAMPLES]
IDS = Ids(EXAMPLE_KEY)
NOW = datetime(2026, 10, 14, 7, 0, tzinfo=UTC)
ANSWER = rri.Answer(
    status="accepted",
    control_id="PGS002001",
    referral_id="LAH20261012-1",
    receiver=("PEGASOS", "1.2.246.10.2345678.10.0"),
    referring=rri.Party("Esimerkkilän sote-keskus", "1.2.246.10.99990001.10.0"),
    referred_to=rri.Party("Esimerkkilän sote-keskus, työkykytiimi", "1.2.246.10.99990001.10.17"),
    hetu="150390-902D",
    family="Testinen",
    given="Aino",
)


def parse_only(text: str) -> Any:
    return parse(text)


def referral_in(text: str) -> Any:
    found = referral.read(parse(text))
    return referral.resources(
        found,
        ids=IDS,
        sender="org-sote-keskus",
        patient="Patient/aino",
        plan="CarePlan/aino-plan",
        owner="Organization/org-tyokykytiimi",
        now="2026-10-14T10:00:00+03:00",
    )


def rri_out(text: str) -> Any:
    return rri.build(ANSWER, "RRI1", NOW)


def rri_validated(text: str) -> Any:
    return validate_outbound(rri.build(ANSWER, "RRI1", NOW))


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=5)
    args.add_argument("--seconds", type=float, default=1.0)
    opts = args.parse_args()
    cases = {
        "ER7 parse": parse_only,
        "REF -> SR+Task": referral_in,
        "RRI build": rri_out,
        "RRI + hl7apy": rri_validated,
    }
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(opts.rounds):
        for name, fn in cases.items():
            runs[name].append(rate(fn, MESSAGES, opts.seconds))
    base = statistics.median(runs["ER7 parse"])
    print(f"REF^I12 / RRI^I12 ({len(MESSAGES)} samples): {opts.rounds} rounds x {opts.seconds} s")
    print(f"{'case':<16}{'msgs/s':>12}{'x parse':>10}")
    for name, values in runs.items():
        median = statistics.median(values)
        print(f"{name:<16}{median:>12,.0f}{median / base:>10.2f}")


if __name__ == "__main__":
    main()
