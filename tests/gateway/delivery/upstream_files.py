"""Upstream files for tests (gateway/delivery/upstreams.py): one JSON file per upstream, signing
with a demo organisation's key (samples/organisations/demo-keys; public test material), and an
upstream-shaped notification Bundle (built by the gateway's own notifications.bundle, as the
upstream gateway sends it)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from gateway.delivery import notifications
from gateway.delivery.outbox import Row
from gateway.security.demo import demo_key_path
from gateway.settings import ORGANISATIONS_DIR

SECRET = "partner-secret"
TOPIC = "https://fhir-plan-gateway.example/SubscriptionTopic/task-responsibility"


def write_upstream(
    folder: Path,
    base: str,
    *,
    name: str = "a",
    client_id: str = "kela",
    organization: str = "org-kela",
    secret: str = SECRET,
    **more: Any,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": name,
        "base": base,
        "client_id": client_id,
        "key": str(demo_key_path(ORGANISATIONS_DIR, client_id)),
        "organization": organization,
        "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(),
        **more,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def notification(
    base: str,
    events: list[tuple[int, dict[str, Any] | None, str]],
    *,
    subscription: str = "sub-1",
    kind: str = "event-notification",
    event_ids: list[str] | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """A full-resource notification of `events`: (event number, the Task version as told or
    None for a delete, its version id)."""
    told = []
    for i, (number, task, version) in enumerate(events):
        row_id = (event_ids or [])[i] if event_ids else str(uuid.uuid4())
        ref = reference or f"Task/{(task or {}).get('id')}"
        focus = f"{ref}/_history/{version}"
        row = Row(i + 1, row_id, "rest-hook", subscription, number, "event", focus, "", "", 0, 0, 1)
        if task is not None:
            task = {**task, "meta": {"versionId": version}}
        told.append(notifications.Event(row, ref, version, task, deleted=task is None))
    return notifications.bundle(
        base=base,
        subscription=subscription,
        topic=TOPIC,
        status="active",
        kind=kind,
        events_total=max((n for n, _, _ in events), default=0),
        events=told,
        payload="full-resource",
    )


def a_task(id: str = "t1", status: str = "requested", **more: Any) -> dict[str, Any]:
    """A network responsibility as the upstream (A) tells it: for Kela, on Aino's plan."""
    return {
        "resourceType": "Task",
        "id": id,
        "status": status,
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "description": "Ammatillisen kuntoutuksen selvitys",
        "basedOn": [{"reference": "CarePlan/aino-plan"}],
        "focus": {"reference": "ServiceRequest/aino-sr-kela"},
        "for": {"reference": "Patient/aino", "display": "Aino Testinen"},
        "requester": {"reference": "PractitionerRole/role-tyokykykoordinaattori"},
        "owner": {"reference": "Organization/org-kela", "display": "Kela"},
        "restriction": {"period": {"end": "2026-12-31"}},
        **more,
    }
