"""HL7 v2 -> FHIR without storage, msgs/s on one core: parse + map (adapters/hl7v2: our ER7
parser, then to_bundle with the keyed pseudonymous Patient id) of the ADT^A04/A08 samples
(samples/hl7v2), against two baselines in alternating rounds of the same run: our parser alone
(parse only: what mapping adds) and hl7apy's parse_message (the library we do not use inbound).
Goal (issue 5): >= 1,000 msgs/s, aim 5,000.

    .venv/bin/python bench/hl7v2_map.py [--rounds 5] [--seconds 1.0]

Read the ratios: the machine is shared, absolute numbers move from run to run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hl7apy.parser import parse_message  # noqa: E402  (a baseline: bench/ may import it)

from adapters.hl7v2.convert import to_bundle  # noqa: E402
from adapters.hl7v2.message import parse  # noqa: E402
from adapters.ids import EXAMPLE_KEY, Ids  # noqa: E402
from bench.rates import rate  # noqa: E402

NAMES = ("adt-a04", "adt-a08", "adt-a04-duplicate")
MESSAGES = [
    (ROOT / "samples" / "hl7v2" / f"{n}.hl7").read_text(encoding="utf-8").replace("\n", "\r")
    for n in NAMES
]
IDS = Ids(EXAMPLE_KEY)


def parse_and_map(text: str) -> Any:
    return to_bundle(parse(text), IDS)


def parse_only(text: str) -> Any:
    return parse(text)


def hl7apy(text: str) -> Any:
    return parse_message(text)  # default (tolerant) validation level


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=5)
    args.add_argument("--seconds", type=float, default=1.0)
    opts = args.parse_args()
    runs: dict[str, list[float]] = {"parse + map": [], "parse only": [], "hl7apy parse": []}
    parse_and_map(MESSAGES[0])  # mapping files and code maps loaded before timing
    for _ in range(opts.rounds):  # alternating rounds
        runs["hl7apy parse"].append(rate(hl7apy, MESSAGES, opts.seconds))
        runs["parse only"].append(rate(parse_only, MESSAGES, opts.seconds))
        runs["parse + map"].append(rate(parse_and_map, MESSAGES, opts.seconds))
    mapped = statistics.median(runs["parse + map"])
    print(f"HL7 v2 -> FHIR of {', '.join(NAMES)}: {opts.rounds} rounds x {opts.seconds} s, medians")
    print(f"{'':<14}{'msgs/s':>10}{'map / this':>12}")
    for name, values in runs.items():
        median = statistics.median(values)
        print(f"{name:<14}{median:>10,.0f}{mapped / median:>12.2f}")
    print(f"goal 1,000 msgs/s: {'met' if mapped >= 1000 else 'NOT met'} ({mapped / 1000:.1f}x)")


if __name__ == "__main__":
    main()
