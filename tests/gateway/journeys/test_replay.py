"""Replaying a journey in-process: steps over plain REST as an organisation, captures, stopping at
the first unexpected answer, idempotence (done / part-way), and which paths are journeys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from gateway import cli
from gateway.cli import main
from gateway.journeys import JOURNEYS_DIR, replay_in_process, split_paths
from gateway.samples import SAMPLES_DIR
from gateway.settings import Settings

CLIENT = "Patient/journey-test"


def task(client: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "description": "Soita asiakkaalle (call the client)",
        "for": {"reference": client},
        "requester": {"reference": "Organization/org-sote-keskus"},
        "owner": {"reference": "Organization/org-sote-keskus"},
    }


def rest_steps(client: str = CLIENT) -> list[dict[str, Any]]:
    return [
        {
            "title": "luo tehtävä / create a task",
            "as": "sote-keskus",
            "request": {"method": "POST", "url": "Task", "body": task(client)},
            "expect": {"status": 201},
            "capture": {"task": "Task.id"},
        },
        {
            "title": "aloita / start",
            "as": "sote-keskus",
            "request": {
                "method": "PATCH",
                "url": "Task/{{task}}",
                "body": [{"op": "replace", "path": "/status", "value": "in-progress"}],
            },
        },
        {
            "title": "tarkista / check",
            "as": "sote-keskus",
            "request": {"method": "GET", "url": "Task/{{task}}"},
            "expect": {"status": 200, "holds": ["Task.status = 'in-progress'"]},
        },
    ]


def make_journey(root: Path, steps: list[dict[str, Any]], client: str = CLIENT) -> Path:
    path = root / "testi"
    patient = {
        "resourceType": "Patient",
        "id": client.split("/")[1],
        "managingOrganization": {"reference": "Organization/org-sote-keskus"},
    }
    (path / "bundles").mkdir(parents=True)
    shutil.copy(SAMPLES_DIR / "00-network.json", path / "bundles" / "00-network.json")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient, "request": {"method": "PUT", "url": client}}],
    }
    (path / "bundles" / "10-client.json").write_text(json.dumps(bundle))
    doc = {
        "title": "testi / test",
        "client": client,
        "done": {"as": "sote-keskus", "search": f"Task?patient={client}&status=in-progress"},
        "steps": steps,
    }
    (path / "steps.json").write_text(json.dumps(doc))
    return path


def test_steps_run_as_the_organisation_over_rest_and_a_second_replay_is_skipped(
    settings: Settings, tmp_path: Path
) -> None:
    path = make_journey(tmp_path, rest_steps())
    lines: list[str] = []
    (result,) = replay_in_process(settings, [path], lines.append)
    assert result.state == "replayed", lines
    assert [(s.number, s.status, s.ok) for s in result.steps] == [
        (1, 201, True),
        (2, 200, True),
        (3, 200, True),
    ]
    assert any("[ 2/3] 200  aloita / start" in line for line in lines)
    assert not any("Soita" in line for line in lines)  # titles and statuses, never content
    again: list[str] = []
    (second,) = replay_in_process(settings, [path], again.append)
    assert (second.state, second.steps) == ("already", [])
    assert not any("Created" in line for line in again)  # the bundles were not loaded again


def test_an_unexpected_answer_stops_the_replay_and_a_part_way_journey_is_left_alone(
    settings: Settings, tmp_path: Path
) -> None:
    steps = rest_steps()
    steps.insert(
        1,
        {
            "title": "puuttuu / missing",
            "as": "sote-keskus",
            "request": {"method": "GET", "url": "Task/no-such-task"},
        },
    )
    path = make_journey(tmp_path, steps)
    lines: list[str] = []
    (result,) = replay_in_process(settings, [path], lines.append)
    assert result.state == "failed"
    assert [(s.number, s.status) for s in result.steps] == [(1, 201), (2, 404)]  # 3, 4 not run
    assert any("FAIL [ 2/4] 404" in line for line in lines)
    assert any("steps[1].status: expected 200 or 201, got 404" in line for line in lines)
    (second,) = replay_in_process(settings, [path], lines.append)
    assert second.state == "partial" and second.steps == []


def test_load_replays_a_journey_and_fails_on_one_left_part_way(
    settings: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PLAN_GATEWAY_TOKEN_KEY_FILE", str(settings.token_key_file))
    path = make_journey(tmp_path / "ok", rest_steps())
    args = ["load", str(path), "--database", settings.database_url]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "[ 3/3] 200  tarkista / check" in first.output
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0 and "already replayed" in second.output
    other = "Patient/journey-test-2"
    steps = rest_steps(client=other)
    steps[0]["expect"] = {"status": 200}  # it answers 201
    broken = make_journey(tmp_path / "broken", steps, other)
    args = ["load", str(broken), "--database", settings.database_url]
    assert CliRunner().invoke(main, args).exit_code == 1  # stopped at step 1
    assert CliRunner().invoke(main, args).exit_code == 1  # part-way: left alone


def test_split_paths_tells_journeys_from_files(tmp_path: Path) -> None:
    journeys = sorted(p for p in JOURNEYS_DIR.iterdir() if (p / "steps.json").is_file())
    assert [p.name for p in journeys] == ["eura", "pori", "tampere"]
    samples = SAMPLES_DIR.parent
    files, found = split_paths([samples])  # samples/: its bundles, then its journeys
    assert files == sorted(SAMPLES_DIR.glob("*.json")) and found == journeys
    assert split_paths([JOURNEYS_DIR]) == ([], journeys)
    assert split_paths([journeys[0]]) == ([], [journeys[0]])
    bundles = journeys[0] / "bundles"
    assert split_paths([bundles]) == (sorted(bundles.glob("*.json")), [])


def test_serve_loads_the_samples_then_replays_the_journeys_once(
    settings: Settings, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PLAN_GATEWAY_TOKEN_KEY_FILE", str(settings.token_key_file))
    monkeypatch.setattr(cli, "run_server", lambda *args: None)  # everything before uvicorn
    args = ["serve", "--database", settings.database_url]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "00-network.json: transaction" in first.output  # the sample bundles first
    for name in ("eura", "pori", "tampere"):
        assert f"journeys/{name}: journey" in first.output
    assert "FAIL" not in first.output and "WARNING" not in first.output
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0 and second.output.count("already replayed") == 3
