"""Inbound HL7 v2 parsing, msgs/s on one core: our parser (adapters/hl7v2/message.py), alone and
with the dozen field reads a mapper makes, against hl7apy's parse_message on the same sample
messages (tests/adapters/hl7v2/samples), in alternating rounds of the same run.

    .venv/bin/python bench/hl7v2_parse.py [--rounds 5] [--seconds 1.0]

Read the ratios: the machine is shared, absolute numbers move from run to run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hl7apy.parser import parse_message

from adapters.hl7v2.message import parse
from bench.rates import rate
from tests.adapters.hl7v2.samples import NAMES, load

MESSAGES = [load(name) for name in NAMES]


def ours(text: str) -> Any:
    return parse(text)


def ours_and_reads(text: str) -> Any:
    """Parse plus the reads a mapper makes: header, HETU, name, birth date, sex, address."""
    msg = parse(text)
    values = [msg.control_id, msg.event, msg.version, msg.get("MSH", 7)]
    for rep in range(len(msg.segment("PID").repetitions(3))):
        values += [msg.get("PID", 3, rep), msg.get("PID", 3, rep, 4, 2), msg.get("PID", 3, rep, 5)]
    values += [msg.get("PID", 5, component=c) for c in (1, 2)]
    values += [msg.get("PID", 7), msg.get("PID", 8), msg.get("PID", 11), msg.get("PID", 11, 0, 3)]
    return values


def hl7apy(text: str) -> Any:
    return parse_message(text)  # default (tolerant) validation level, groups found


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=5)
    args.add_argument("--seconds", type=float, default=1.0)
    opts = args.parse_args()
    runs: dict[str, list[float]] = {"ours": [], "ours + reads": [], "hl7apy": []}
    for _ in range(opts.rounds):  # alternating: hl7apy, ours, ours + reads, hl7apy, ...
        runs["hl7apy"].append(rate(hl7apy, MESSAGES, opts.seconds))
        runs["ours"].append(rate(ours, MESSAGES, opts.seconds))
        runs["ours + reads"].append(rate(ours_and_reads, MESSAGES, opts.seconds))
    base = statistics.median(runs["hl7apy"])
    samples = ", ".join(NAMES)
    print(f"HL7 v2 inbound parse of {samples}: {opts.rounds} rounds x {opts.seconds} s, medians")
    print(f"{'parser':<14}{'msgs/s':>12}{'x hl7apy':>10}")
    for name, values in runs.items():
        median = statistics.median(values)
        print(f"{name:<14}{median:>12,.0f}{median / base:>10.1f}")


if __name__ == "__main__":
    main()
