"""Scripted client journeys (samples/journeys/<name>/): which paths are journeys, and replaying
them in-process, as `plan-gateway load` and `plan-gateway serve` do. The step language is in
language.py, the HTTP replay in replay.py.

In-process the bundles go through gateway.samples (the trusted loader, as the sample bundles
do) and the steps through the FastAPI app over httpx's ASGI transport, with tokens from the app's
own token endpoint: the code path of any HTTP client. Never writes to storage directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import anyio
import httpx

from gateway.errors import FhirError
from gateway.fhir_api.context import Services
from gateway.journeys.language import STEPS_FILE, Journey, JourneyError, read_journey
from gateway.journeys.replay import JourneyResult, Report, TokenSource, replay
from gateway.samples import SAMPLES_DIR, describe, json_files, load_file
from gateway.settings import Settings

JOURNEYS_DIR = SAMPLES_DIR.parent / "journeys"
OFFLINE_ROOT = "http://127.0.0.1:8080"  # the root `plan-gateway serve` listens on by default

__all__ = [
    "JOURNEYS_DIR",
    "Journey",
    "JourneyError",
    "JourneyResult",
    "is_journey",
    "read_journey",
    "replay_in_process",
    "sample_journeys",
    "split_paths",
]


def is_journey(path: Path) -> bool:
    return path.is_dir() and (path / STEPS_FILE).is_file()


def sample_journeys() -> list[Path]:
    """The sample journeys, in name order."""
    return _journeys_in(JOURNEYS_DIR)


def _journeys_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if is_journey(p)) if directory.is_dir() else []


def split_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(FHIR files to load, journey directories to replay) for the paths given to `load`:
    a journey directory is replayed; a directory of journeys replays each; a samples directory
    (with bundles/ and journeys/) loads its bundles, then replays its journeys; anything else is
    files, as before."""
    files: list[Path] = []
    journeys: list[Path] = []
    for path in paths:
        if is_journey(path):
            journeys.append(path)
        elif path.is_dir() and (path / "journeys").is_dir():
            files += json_files([path / "bundles"]) if (path / "bundles").is_dir() else []
            journeys += _journeys_in(path / "journeys")
        elif path.is_dir() and _journeys_in(path):
            journeys += _journeys_in(path)
        else:
            files += json_files([path])
    return files, journeys


def replay_in_process(
    settings: Settings, paths: Sequence[Path], report: Report, today: date | None = None
) -> list[JourneyResult]:
    """Replay each journey against the app built from `settings` (its database)."""
    return anyio.run(_replay_all, settings, list(paths), report, today or datetime.now(UTC).date())


async def _replay_all(
    settings: Settings, paths: list[Path], report: Report, today: date
) -> list[JourneyResult]:
    from gateway.app import build_services, create_app

    svc = build_services(settings)
    transport = httpx.ASGITransport(app=create_app(settings, svc))
    results = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url=OFFLINE_ROOT) as client:
            tokens = TokenSource(client, settings.organisations_dir)
            for path in paths:
                results.append(await _replay_one(svc, path, client, tokens, report, today))
    finally:
        if svc.audit is not None:
            svc.audit.close()
        svc.repo.close()
    return results


async def _replay_one(
    svc: Services,
    path: Path,
    client: httpx.AsyncClient,
    tokens: TokenSource,
    report: Report,
    today: date,
) -> JourneyResult:
    report(f"{path}: journey")
    try:
        journey = read_journey(path)
    except JourneyError as e:
        report(f"  {e}")
        return JourneyResult(path.name, "failed", message=str(e))

    def load(bundles: Sequence[Path]) -> bool:
        for bundle in bundles:
            try:
                loaded = load_file(svc, bundle)
            except FhirError as err:
                report(f"  {bundle.name}: failed ({err.status}): {'; '.join(describe(err))}")
                return False
            counts = ", ".join(f"{n} x {s}" for s, n in sorted(loaded.statuses.items()))
            report(f"  {bundle.name}: {loaded.kind}, {counts}")
            if loaded.failed:
                return False
        return True

    try:
        result = await replay(journey, client, tokens, load, today, report)
    except JourneyError as e:
        result = JourneyResult(journey.name, "failed", message=str(e))
    if result.message:
        report(f"  {result.message}")
    return result
