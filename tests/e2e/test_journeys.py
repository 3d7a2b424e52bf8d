"""The three sample journeys replayed end to end over real HTTP against a real gateway (uvicorn,
SQLite and PostgreSQL): bundles loaded as `plan-gateway serve` loads samples, every step sent by
its organisation with a token from the server's token endpoint; then what each journey must have
left behind, read back over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from gateway.app import build_services
from gateway.journeys import read_journey, sample_journeys
from gateway.journeys.replay import JourneyResult, TokenSource, replay
from gateway.samples import load_file
from gateway.settings import ORGANISATIONS_DIR, Settings
from tests.e2e.server import Gateway

pytestmark = pytest.mark.e2e
JOURNEYS = [read_journey(p) for p in sample_journeys()]
FHIR_JSON = "application/fhir+json"
HEALTH_STATION = "PractitionerRole/role-tampere-tyokykykoordinaattori"
DESIGNATED_WORKER = "PractitionerRole/role-tampere-omatyontekija"


async def _replay_all(gateway: Gateway, lines: list[str]) -> list[JourneyResult]:
    settings = Settings(
        database_url=gateway.database_url,
        token_key_file=str(gateway.log.parent / "loader-token-key.json"),
    )
    svc = build_services(settings)

    def load(bundles: Any) -> bool:
        return not any(load_file(svc, path).failed for path in bundles)

    today = datetime.now(UTC).date()
    try:
        async with httpx.AsyncClient(base_url=gateway.root, timeout=60) as client:
            tokens = TokenSource(client, ORGANISATIONS_DIR)
            return [await replay(j, client, tokens, load, today, lines.append) for j in JOURNEYS]
    finally:
        if svc.audit is not None:
            svc.audit.close()
        svc.repo.close()


@pytest.fixture(scope="module")
def replayed(gateway: Gateway) -> dict[str, JourneyResult]:
    lines: list[str] = []
    results = anyio.run(_replay_all, gateway, lines)
    assert [r.state for r in results] == ["replayed"] * len(JOURNEYS), "\n".join(lines)
    return {r.name: r for r in results}


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base, timeout=60) as client:
        yield client


def get(http: httpx.Client, gateway: Gateway, who: str, url: str) -> dict[str, Any]:
    headers = {
        "Authorization": f"Bearer {gateway.token(who)}",
        "Accept": FHIR_JSON,
        "X-Purpose-Of-Use": "CAREMGT",
    }
    resp = http.get(url, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def coordinator(answer: dict[str, Any]) -> str:
    (found,) = [p for p in answer["parameter"] if p["name"] == "coordinator"]
    return found["valueReference"]["reference"]


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])]


def lasting_solution(composition: dict[str, Any]) -> str:
    (ext,) = [e for e in composition["extension"] if e["url"].endswith("/lasting-solution")]
    return ext["valueCoding"]["code"]


def test_every_step_answered_as_scripted(replayed: dict[str, JourneyResult]) -> None:
    for journey in JOURNEYS:
        steps = replayed[journey.name].steps
        assert len(steps) == len(journey.steps) and all(s.ok for s in steps), journey.name


def test_tampere_coordinator_before_and_after_the_escorted_handover(
    replayed: dict[str, JourneyResult], gateway: Gateway, http: httpx.Client
) -> None:
    url = "CareTeam/tampere-joni-careteam/$coordinator"
    june = get(http, gateway, "tampere-terveysasema", f"{url}?date=2026-06-01")
    assert coordinator(june) == HEALTH_STATION
    before_joint_appointment = get(http, gateway, "tampere-terveysasema", f"{url}?date=2026-02-20")
    assert not [p for p in before_joint_appointment["parameter"] if p["name"] == "coordinator"]
    now = get(http, gateway, "tampere-aikuissosiaalityo", url)
    assert coordinator(now) == DESIGNATED_WORKER
    history = [p["part"] for p in now["parameter"] if p["name"] == "history"]
    assert [part[0]["valueReference"]["reference"] for part in history] == [
        HEALTH_STATION,  # the first coordinator, named at the joint appointment
        DESIGNATED_WORKER,
    ]
    assert history[0][1]["valuePeriod"]["start"] == "2026-03-02T10:00:00+02:00"
    handovers = get(
        http,
        gateway,
        "tampere-aikuissosiaalityo",
        "Task?patient=Patient/tampere-joni"
        "&code=https://fhir-plan-gateway.example/CodeSystem/task-type|coordinator-handover",
    )
    assert [t["status"] for t in entries(handovers)] == ["completed"]
    (summary,) = entries(
        get(http, gateway, "tampere-terveysasema", "Composition?subject=Patient/tampere-joni")
    )
    assert lasting_solution(summary) == "muu-palvelu"


def test_pori_overlap_found_then_resolved(
    replayed: dict[str, JourneyResult], gateway: Gateway, http: httpx.Client
) -> None:
    titles = [s.title for s in replayed["pori"].steps]
    found = next(n for n, t in enumerate(titles) if "an overlap: two coachings" in t)
    resolved = next(n for n, t in enumerate(titles) if "no overlap is left" in t)
    assert found < resolved  # $overlaps answered the overlap before the resolution step
    now = get(http, gateway, "pori-tyokykytiimi", "CarePlan/pori-sanna-plan/$overlaps")
    assert not [p for p in now.get("parameter", []) if p["name"] == "overlap"]
    tasks = entries(get(http, gateway, "pori-tyokykytiimi", "Task?patient=Patient/pori-sanna"))
    by_owner = {(t["owner"]["reference"], t["status"]) for t in tasks}
    assert ("Organization/org-pori-tyollisyys", "cancelled") in by_owner
    assert ("Organization/org-kela-pori", "accepted") in by_owner
    team = get(http, gateway, "pori-tyokykytiimi", "CareTeam/pori-sanna-careteam/$coordinator")
    assert coordinator(team) == "PractitionerRole/role-pori-tyokykykoordinaattori"


def test_eura_long_path_ends_in_a_lasting_solution(
    replayed: dict[str, JourneyResult], gateway: Gateway, http: httpx.Client
) -> None:
    (summary,) = entries(
        get(http, gateway, "eura-tyokykytiimi", "Composition?subject=Patient/eura-pertti")
    )
    assert lasting_solution(summary) == "palkkatuettu-tyo"
    tasks = entries(get(http, gateway, "rauma-tyollisyys", "Task?patient=Patient/eura-pertti"))
    assert [t["status"] for t in tasks] and all(t["status"] == "completed" for t in tasks)
    feedback = get(
        http, gateway, "eura-tyokykytiimi", "QuestionnaireResponse?subject=Patient/eura-pertti"
    )
    assert len(entries(feedback)) == 2  # at the plan (bundle) and at follow-up (step)


def test_a_second_replay_over_http_changes_nothing(
    replayed: dict[str, JourneyResult], gateway: Gateway
) -> None:
    lines: list[str] = []
    again = anyio.run(_replay_all, gateway, lines)
    assert [r.state for r in again] == ["already"] * len(JOURNEYS), "\n".join(lines)
    assert not any("Created" in line or "OK" in line for line in lines)


def test_nothing_personal_reached_the_server_log(
    replayed: dict[str, JourneyResult], gateway: Gateway
) -> None:
    log = Path(gateway.log).read_text(errors="replace")
    for word in ("040671-937Y", "211188-948P", "080295-915T", "Harjoitus", "Testilä", "Mallinen"):
        assert word not in log
