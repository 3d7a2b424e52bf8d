"""Two real gateways, on both stores: A, the coordinator's side, pushes the Tasks it assigns to
Kela to B, Kela's own gateway, registered at A as Kela's delivery endpoint; Kela's user works on
them at B; A's Task and Aino's plan at A show it.

Kela subscribes at A with fhirpy (a token from A's token endpoint, as Kela's system would);
the coordinator (työkykytiimi) assigns a new responsibility on Aino's plan; A's relay pushes
the full Task to B, which stores its mirror; Kela's user at B (fhirpy and plain JSON Patch, a
token from B) accepts and later completes it; B's relay patches A's Task with a token it gets
from A as client kela. A notification sent to B again changes nothing at B.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from fhirpy import SyncFHIRClient

from tests.conftest import BACKENDS
from tests.e2e.two_gateways import SECRET, Pair, two_gateways

pytestmark = pytest.mark.e2e
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-"
TOPIC = "https://fhir-plan-gateway.example/SubscriptionTopic/task-responsibility"
HEADERS = {"Accept": "application/fhir+json"}
WAIT_S = 30.0
T = TypeVar("T")


@pytest.fixture(scope="module", params=BACKENDS)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[Pair]:
    with two_gateways(request.param, tmp_path_factory, worker_id) as started:
        yield started


def fhir(base: str, token: str) -> SyncFHIRClient:
    return SyncFHIRClient(base, authorization=f"Bearer {token}", extra_headers=HEADERS)


def eventually(probe: Callable[[], T | None], what: str) -> T:
    """Poll `probe` until it gives something (the relays run every 0.25 s)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {WAIT_S}s: {what}")


def subscription(endpoint: str) -> dict[str, Any]:
    return {
        "status": "requested",
        "reason": "Kelan vastuut (Kela's responsibilities), to Kela's own gateway",
        "criteria": TOPIC,
        "_criteria": {
            "extension": [
                {
                    "url": BACKPORT + "filter-criteria",
                    "valueString": "Task?owner=Organization/org-kela",
                }
            ]
        },
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {
                "extension": [{"url": BACKPORT + "payload-content", "valueCode": "full-resource"}]
            },
            "header": [f"Authorization: Bearer {SECRET}"],
        },
    }


def responsibility(description: str) -> dict[str, Any]:
    """A new network responsibility for Kela on Aino's plan, as the coordinator assigns it."""
    return {
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "description": description,
        "basedOn": [{"reference": "CarePlan/aino-plan"}],
        "focus": {"reference": "ServiceRequest/aino-sr-kela"},
        "for": {"reference": "Patient/aino"},
        "requester": {"reference": "PractitionerRole/role-tyokykykoordinaattori"},
        "owner": {"reference": "Organization/org-kela"},
        "restriction": {"period": {"end": "2027-03-31"}},
    }


def test_a_task_goes_to_the_partner_gateway_and_its_work_comes_back(pair: Pair) -> None:
    kela_at_a = fhir(pair.a.base, pair.a.token("kela"))
    sub = kela_at_a.resource("Subscription", **subscription(pair.endpoint))
    sub.save()
    eventually(
        lambda: kela_at_a.reference("Subscription", sub.id).to_resource()["status"] == "active",
        "the handshake at B activates the subscription",
    )

    coordinator = fhir(pair.a.base, pair.a.token("tyokykytiimi"))
    description = f"Kuntoutustarpeen arvio {uuid.uuid4().hex[:8]}"
    task = coordinator.resource("Task", **responsibility(description))
    task.save()

    kela_at_b = fhir(pair.b.base, pair.b.token("kela"))
    identifier = f"{pair.a.base}/Task|{task.id}"
    mirror = eventually(
        lambda: kela_at_b.resources("Task").search(identifier=identifier).first(),
        "B stores its mirror of the new Task",
    )
    assert mirror["status"] == "requested" and mirror["description"] == description
    assert mirror["owner"]["reference"] == "Organization/org-kela"

    mirror["status"] = "accepted"  # Kela's user takes it on, at B (PUT)
    mirror.save()
    eventually(
        lambda: coordinator.reference("Task", task.id).to_resource()["status"] == "accepted",
        "A's Task is accepted",
    )

    done = [
        {"op": "replace", "path": "/status", "value": "completed"},
        {"op": "add", "path": "/note", "value": [{"text": "Selvitys tehty, lausunto lähetetty."}]},
    ]
    patched = httpx.patch(
        f"{pair.b.base}/Task/{mirror.id}",
        json=done,
        headers={
            "Authorization": f"Bearer {pair.b.token('kela')}",
            "Content-Type": "application/json-patch+json",
        },
        timeout=30,
    )
    assert patched.status_code == 200, patched.text
    at_a = eventually(
        lambda: _if(coordinator.reference("Task", task.id).to_resource(), "completed"),
        "A's Task is completed",
    )
    assert at_a["note"] == [{"text": "Selvitys tehty, lausunto lähetetty."}]
    assert at_a["owner"]["reference"] == "Organization/org-kela"  # the requester's, unchanged

    # What the coordinator sees of the plan: the responsibility done.
    plan = httpx.get(
        f"{pair.a.base}/CarePlan/aino-plan/$client-plan?lang=en",
        headers={"Authorization": f"Bearer {pair.a.token('tyokykytiimi')}"},
        timeout=60,
    )
    assert plan.status_code == 200, plan.text
    row = _row_of(plan.text, description)
    assert row.startswith('<tr class="done">') and "Done" in row, row

    # A's completed version comes back to B as A's change: applied, never sent back again.
    eventually(
        lambda: _if(kela_at_b.reference("Task", mirror.id).to_resource(), "completed", a=3),
        "B's mirror holds A's completed version",
    )
    _replay_changes_nothing(pair, kela_at_a, kela_at_b, sub.id, mirror.id)


def _if(resource: Any, status: str, a: int | None = None) -> Any:
    """`resource` when it has `status` (and, for a mirror, A's version `a`)."""
    if resource["status"] != status:
        return None
    if a is not None:
        versions = [
            p["valueInteger"]
            for e in resource.get("extension", [])
            for p in e.get("extension", [])
            if p.get("url") == "version"
        ]
        return resource if versions == [a] else None
    return resource


def _row_of(html: str, description: str) -> str:
    """The plan page's responsibility row that names `description`."""
    at = html.find(description)
    if at < 0:
        return ""
    start, end = html.rfind("<tr", 0, at), html.find("</tr>", at)
    return html[start:end]


def _replay_changes_nothing(
    pair: Pair, kela_at_a: SyncFHIRClient, kela_at_b: SyncFHIRClient, sub_id: str, mirror: str
) -> None:
    """A's events again (its $events answer, as a subscriber recovering a gap would feed them):
    B has every one of them already."""
    before = kela_at_b.reference("Task", mirror).to_resource()["meta"]["versionId"]
    replay = httpx.get(
        f"{pair.a.base}/Subscription/{sub_id}/$events?eventsSinceNumber=1",
        headers={**HEADERS, "Authorization": f"Bearer {pair.a.token('kela')}"},
        timeout=30,
    ).json()
    answer = httpx.post(
        pair.endpoint,
        json=replay,
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert "0 event(s) applied, 3 already had" in answer.text
    after = kela_at_b.reference("Task", mirror).to_resource()["meta"]["versionId"]
    assert after == before
