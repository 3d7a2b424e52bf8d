"""The committed JSON in fhir_profiles/profiles/ is what SUSHI compiles from fhir_profiles/fsh/
(a real SUSHI run, ~10 s), and the check names every file that differs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fhir_profiles import build_profiles

ROOT = Path(__file__).parents[2]


def test_committed_json_equals_a_fresh_sushi_compile() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fhir_profiles.build_profiles", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fhir_profiles/profiles/" not in run.stdout  # the check prints nothing else


def test_committed_json_is_sorted_pretty_and_ends_with_a_newline() -> None:
    for name, text in build_profiles.committed().items():
        assert text == build_profiles.render(json.loads(text)), name


def test_differences_lists_missing_stale_and_changed_files() -> None:
    fresh = {"a.json": "1\n", "b.json": "2\n", "c.json": "3\n"}
    current = {"b.json": "2\n", "c.json": "changed\n", "old.json": "4\n"}
    assert build_profiles.differences(fresh, current) == [
        "fhir_profiles/profiles/a.json: missing",
        "fhir_profiles/profiles/old.json: not produced by the FSH",
        "fhir_profiles/profiles/c.json: differs",
    ]
    assert build_profiles.differences(fresh, dict(fresh)) == []


def test_render_keeps_finnish_letters_and_sorts_keys() -> None:
    assert build_profiles.render({"b": "ä", "a": [2, 1]}) == (
        '{\n  "a": [\n    2,\n    1\n  ],\n  "b": "ä"\n}\n'
    )


def test_selection_json_is_not_taken_for_compiled_output() -> None:
    assert "selection.json" not in build_profiles.committed()
    assert (build_profiles.OUTPUT / "selection.json").exists()
