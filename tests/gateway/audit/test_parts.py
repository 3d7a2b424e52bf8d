"""What an AuditEvent must never carry, and the context's own checks."""

from __future__ import annotations

import base64
from datetime import datetime

import orjson
import pytest

from gateway.audit import builders as b
from gateway.audit import parts
from gateway.audit.context import AuditContext

HETU = "010181-900C"  # a test HETU (sample series), never a real person's


def _query(event: dict) -> str:
    (q,) = [e for e in event["entity"] if "query" in e]
    return base64.b64decode(q["query"]).decode()


def test_personal_search_values_are_redacted(ctx: AuditContext) -> None:
    params = [
        ("name", "Virtanen"),  # a name
        ("subject:Patient.identifier", f"urn:oid:1.2.246.21|{HETU}"),  # chained identifier
        ("_has:Task:focus:description", f"about {HETU}"),  # a HETU under any name
        ("subject", "Patient/p1"),  # a reference by id is kept
        ("code:text", "Äino's plan"),  # free text
    ]
    sent = _query(b.query_page(ctx, "CarePlan", params, ["p1"]))
    assert "Virtanen" not in sent and HETU not in sent and "Äino" not in sent
    assert sent == (
        "CarePlan?name=%2A&subject:Patient.identifier=%2A&_has:Task:focus:description=%2A"
        "&subject=Patient/p1&code:text=%2A"
    )


def test_no_event_holds_names_or_hetu(ctx: AuditContext) -> None:
    events = [
        b.read(ctx, "Patient/p1", ["p1"]),
        b.query_page(ctx, "Patient", [("identifier", f"urn:oid:1.2.246.21|{HETU}")], ["p1"]),
        b.consent_decision(ctx, "p1", b.Decision.DENY, ["c1"], reason="no permit"),
    ]
    text = b"".join(orjson.dumps(e) for e in events)
    assert HETU.encode() not in text
    assert b'"name"' not in text and b'"display":"Virtanen' not in text


def test_redact_keeps_ordinary_values() -> None:
    assert parts.redact("status", "active") == ("status", "active")
    assert parts.redact("patient.family", "Korhonen") == ("patient.family", "*")


def test_context_needs_an_aware_time_and_ids() -> None:
    with pytest.raises(ValueError):
        AuditContext(client_id="c", server="s", when=datetime(2025, 1, 1))  # naive
    with pytest.raises(ValueError):
        AuditContext(client_id="c", server="s", organization_id="bad id!")
    with pytest.raises(ValueError):
        AuditContext(client_id="", server="s")


def test_builders_do_not_share_mutable_parts(ctx: AuditContext) -> None:
    first = b.read(ctx, "CarePlan/cp1")
    first["type"]["code"] = "changed"
    assert b.read(ctx, "CarePlan/cp1")["type"]["code"] == "rest"
