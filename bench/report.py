"""The printed table and bench/results/latest.json. Figures are ratios to baselines measured in
the same run, with absolute numbers beside them (absolute numbers alone mean little on a shared
2-core machine)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {"read": 0.5, "create": 0.75}
READ_P99_GOAL_MS = 25.0


def _n(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.0f}{unit}"


def _lat(side: dict[str, Any] | None) -> str:
    return "—" if not side else f"{side['p50_ms']:.1f} / {side['p99_ms']:.1f}"


def _cpu(side: dict[str, Any], per: int = 1) -> str:
    """CPU ms per request (per resource for transactions): server + database."""
    return f"{(side['server_cpu_ms'] + side['db_cpu_ms']) / per:.2f}"


def _verdict(name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return "FAILED"
    goal, ratio = GOALS.get(name), r.get("ratio")
    notes = []
    if goal is not None and ratio is not None:
        notes.append(f"{'ok' if ratio >= goal else 'BELOW'} (goal ≥ {goal})")
    if name == "read":
        p99 = r["gateway"]["p99_ms"]
        notes.append(f"p99 {'ok' if p99 <= READ_P99_GOAL_MS else 'ABOVE'} (goal ≤ 25 ms)")
    return ", ".join(notes) or "(no goal set)"


def _row(name: str, label: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{label:<19} FAILED: {r['error']}"
    g, b = r.get("gateway"), r.get("baseline")
    unit = " res/s" if name == "transaction" else "/s"
    g_rate = g.get("resources_per_s", g["rate"])
    ratio = "—" if r.get("ratio") is None else f"{r['ratio']:.2f}"
    cpu_ratio = "—" if r.get("cpu_ratio") is None else f"{r['cpu_ratio']:.2f}"
    cpu = _cpu(g, r.get("gateway", {}).get("entries", 1)) + (f" / {_cpu(b)}" if b else "")
    cells = [
        f"{label:<19}", f"{_n(g_rate, unit):>11}", f"{_n(b and b['rate'], unit):>11}",
        f"{ratio:>5}", f"{_lat(g):>13}", f"{_lat(b if b and 'p50_ms' in b else None):>13}",
        f"{cpu:>13}", f"{cpu_ratio:>5}",
    ]  # fmt: skip
    return " ".join(cells) + "  " + _verdict(name, r)


LABELS = {
    "read": "read by id",
    "create": "create (validated)",
    "search": "search + _include",
    "transaction": "transaction ingest",
}


def print_database(kind: str, res: dict[str, Any]) -> None:
    print(f"\n=== {kind} ===")
    if "error" in res:
        print(f"FAILED: {res['error']}")
        return
    load = res["load"]
    via = ", ".join(f"{n:,} via {how}" for how, n in load["via"].items())
    note = f" [{load['note']}]" if load["note"] else ""
    print(f"loaded {load['resources']:,} resources in {load['seconds']:.1f}s "
          f"({load['rate']:,.0f}/s): {via}{note}")  # fmt: skip
    ceiling = res["ceiling"]
    if "error" in ceiling:
        print(f"load generator ceiling: FAILED: {ceiling['error']}")
    else:
        t = ceiling["trivial"]
        print(f"load generator ({res['client']}) on a trivial endpoint, 2 workers: "
              f"{t['rate']:,.0f} req/s, generator CPU {t['client_cpu']:.2f} cores")  # fmt: skip
    print(f"{'phase':<19} {'gateway':>11} {'baseline':>11} {'ratio':>5} {'gw p50/p99ms':>13} "
          f"{'bl p50/p99ms':>13} {'CPU ms gw/bl':>13} {'cpu x':>5}  verdict on ratio")  # fmt: skip
    for name, label in LABELS.items():
        print(_row(name, label, res[name]))


def write_json(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "latest.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
