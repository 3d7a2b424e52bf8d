"""Replaying a scripted client journey over FHIR HTTP: each step is sent as its organisation, with
a token from the gateway's own token endpoint (demo keys, as a partner system gets one), so the
steps take exactly the path of any HTTP client. In-process the same requests go to the app
through httpx's ASGI transport; the e2e tests send them to a real server.

Reports step numbers, titles, statuses and the gateway's OperationOutcome diagnostics (rules and
paths); never resource content. Stops at the first unexpected answer.

Idempotence: a journey whose `done` search finds its final effect is skipped ("already"); one
whose client exists without that effect stopped part-way earlier and is left alone ("partial":
its bundles would undo what its steps did, its steps would make duplicates). Otherwise the
bundles are loaded (PUT, fixed ids) and the steps run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from gateway.journeys.language import Journey, JourneyError, capture, problems, substitute
from gateway.security.demo import client_assertion, load_demo_key
from gateway.security.registry import load_registry
from gateway.security.token_endpoint import ASSERTION_TYPE, GRANT_TYPE

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
TOKEN_REUSE_S = 200  # tokens live 300 s; a new one well before that
Report = Callable[[str], None]


@dataclass
class StepResult:
    number: int
    title: str
    status: int | None = None
    problems: list[str] = field(default_factory=list)
    outcome: list[str] = field(default_factory=list)  # diagnostics of an OperationOutcome answer

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class JourneyResult:
    """`state`: replayed, already (done before), partial (stopped part-way before), failed."""

    name: str
    state: str = "replayed"
    steps: list[StepResult] = field(default_factory=list)
    message: str = ""


class TokenSource:
    """Bearer tokens per demo organisation, from the token endpoint the client reaches (SMART
    Backend Services: discovery, a client assertion signed with the demo key, the token request)."""

    def __init__(self, client: httpx.AsyncClient, organisations_dir: str | Path) -> None:
        self.client = client
        self.directory = Path(organisations_dir)
        self.registry = load_registry(self.directory)
        self.cache: dict[str, tuple[str, float]] = {}

    async def token(self, name: str) -> str:
        cached = self.cache.get(name)
        if cached and time.monotonic() - cached[1] < TOKEN_REUSE_S:
            return cached[0]
        org = self.registry.find(name)
        if org is None:
            raise JourneyError(f"'{name}' is not a registered demo organisation")
        conf = await self.client.get("/.well-known/smart-configuration")
        url = str(conf.json()["token_endpoint"])
        key, alg = load_demo_key(self.directory, org.client_id)
        form = {
            "grant_type": GRANT_TYPE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(key, alg, org.client_id, url),
            "scope": " ".join(org.scope_text),
        }
        resp = await self.client.post(url, data=form)
        if resp.status_code != 200:
            raise JourneyError(f"no token for '{name}': HTTP {resp.status_code}")
        self.cache[name] = (str(resp.json()["access_token"]), time.monotonic())
        return self.cache[name][0]


async def _send(
    client: httpx.AsyncClient,
    tokens: TokenSource,
    who: dict[str, Any],
    method: str,
    url: str,
    body: Any = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {await tokens.token(who['as'])}", "Accept": FHIR_JSON}
    if who.get("actingRole"):
        headers["X-Acting-Practitioner-Role"] = who["actingRole"]
    if who.get("purpose"):
        headers["X-Purpose-Of-Use"] = who["purpose"]
    content = None
    if body is not None:
        patch = method == "PATCH" and isinstance(body, list)
        headers["Content-Type"] = JSON_PATCH if patch else FHIR_JSON
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return await client.request(method, f"/fhir/{url}", content=content, headers=headers)


def _json(resp: httpx.Response) -> Any:
    if "json" not in resp.headers.get("content-type", ""):
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _outcome(body: Any) -> list[str]:
    """The diagnostics of an OperationOutcome (the gateway names rules and paths, not data)."""
    if not (isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"):
        return []
    return [
        f"{', '.join(i.get('expression') or [])}: {i.get('diagnostics', '')}".lstrip(": ")
        for i in body.get("issue") or []
    ]


async def run_step(
    client: httpx.AsyncClient,
    tokens: TokenSource,
    step: dict[str, Any],
    number: int,
    variables: dict[str, str],
    today: date,
) -> StepResult:
    """Send one step and check its answer; captured values go into `variables`."""
    where = f"steps[{number - 1}]"
    result = StepResult(number, step["title"])
    request = substitute(step["request"], variables, today, f"{where}.request")
    resp = await _send(client, tokens, step, request["method"], request["url"], request.get("body"))
    body = _json(resp)
    result.status, result.outcome = resp.status_code, _outcome(body)
    result.problems = problems(resp.status_code, resp.text, body, step.get("expect", {}), where)
    if result.ok:
        try:
            variables.update(capture(body, step.get("capture", {}), where))
        except JourneyError as e:
            result.problems.append(str(e))
    return result


async def _found(
    client: httpx.AsyncClient, tokens: TokenSource, who: dict[str, Any], url: str
) -> bool:
    resp = await _send(client, tokens, who, "GET", url)
    body = _json(resp)
    if resp.status_code != 200 or not isinstance(body, dict):
        return False
    if body.get("resourceType") != "Bundle":
        return True
    return bool(body.get("total") or body.get("entry"))


async def replay(
    journey: Journey,
    client: httpx.AsyncClient,
    tokens: TokenSource,
    load_bundles: Callable[[Sequence[Path]], bool],
    today: date,
    report: Report,
) -> JourneyResult:
    """Replay one journey: skip it when done or partly done, else load its bundles and run its
    steps in order, stopping at the first unexpected answer."""
    result = JourneyResult(journey.name)
    if await _found(client, tokens, journey.done, journey.done["search"]):
        result.state, result.message = "already", "already replayed: its final effect is there"
        return result
    if await _found(client, tokens, journey.done, journey.client):
        result.state = "partial"
        result.message = (
            "replayed part-way before (its client exists, its final effect does not); left as "
            "it is: replay it into an empty database"
        )
        return result
    if not load_bundles(journey.bundles):
        result.state, result.message = "failed", "its bundles did not load"
        return result
    variables: dict[str, str] = {}
    for number, step in enumerate(journey.steps, start=1):
        try:
            outcome = await run_step(client, tokens, step, number, variables, today)
        except JourneyError as e:
            outcome = StepResult(number, step["title"], problems=[str(e)])
        result.steps.append(outcome)
        report(_line(outcome, len(journey.steps)))
        if not outcome.ok:
            result.state = "failed"
            for line in outcome.problems + outcome.outcome:
                report(f"      {line}")
            break
    return result


def _line(step: StepResult, total: int) -> str:
    mark = "ok  " if step.ok else "FAIL"
    status = step.status if step.status is not None else "---"
    return f"  {mark} [{step.number:>2}/{total}] {status}  {step.title}"
