"""The pieces BALP patterns share: Codings, agents, the source, entities and the event frame.

Pure functions from an `AuditContext` and references to plain AuditEvent JSON. They must never
put anything but ids, codes and the redacted request into an event: no names, no HETU, no
display text taken from a record.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from gateway.audit import codes
from gateway.audit.context import AuditContext

Json = dict[str, Any]
# A Finnish personal identity code (HETU): six digits, century sign, three digits, check mark.
_HETU = re.compile(r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]")
_NAME_SEGMENTS = re.compile(r"[.:]")


def coding(code: codes.Code) -> Json:
    system, value, display = code
    out = {"system": system, "code": value}
    if display:
        out["display"] = display
    return out


def concept(code: codes.Code) -> Json:
    return {"coding": [coding(code)]}


def gateway_ref(ctx: AuditContext) -> Json:
    """This gateway, named by identifier (it is no stored Device)."""
    return {"identifier": {"system": codes.GATEWAY_SYSTEM, "value": ctx.server}, "type": "Device"}


def client_ref(ctx: AuditContext) -> Json:
    return {
        "identifier": {"system": codes.CLIENT_ID_SYSTEM, "value": ctx.client_id},
        "type": "Device",
    }


def _network(address: str, kind: str) -> Json:
    return {"address": address, "type": kind}


def client_agent(ctx: AuditContext, role: codes.Code) -> Json:
    """The calling application (the OAuth client), with its network address when known."""
    agent: Json = {"type": concept(role), "who": client_ref(ctx), "requestor": False}
    if ctx.address:
        agent["network"] = _network(ctx.address, codes.NETWORK_IP)
    return agent


def server_agent(ctx: AuditContext, role: codes.Code) -> Json:
    """This gateway as a participant; `who` equals source.observer (BALP val-audit-source)."""
    return {
        "type": concept(role),
        "who": gateway_ref(ctx),
        "requestor": False,
        "network": _network(ctx.server, codes.NETWORK_URI),
    }


def requestor_agents(ctx: AuditContext, user_role: codes.Code) -> list[Json]:
    """The calling organisation and, when named, its acting PractitionerRole; the most specific
    of them is the requestor and carries the purpose of use."""
    agents: list[Json] = []
    if ctx.organization_id:
        who = {"reference": f"Organization/{ctx.organization_id}"}
        agents.append({"type": concept(codes.PROVIDER_ORG), "who": who, "requestor": False})
    if ctx.practitioner_role_id:
        who = {"reference": f"PractitionerRole/{ctx.practitioner_role_id}"}
        agents.append({"type": concept(user_role), "who": who, "requestor": False})
    if agents:
        agents[-1]["requestor"] = True
        if ctx.purpose_of_use:
            agents[-1]["purposeOfUse"] = purposes(ctx)
    return agents


def purposes(ctx: AuditContext) -> list[Json]:
    return [concept((codes.PURPOSE_OF_USE, p, "")) for p in ctx.purpose_of_use]


def source(ctx: AuditContext, kind: codes.Code) -> Json:
    return {"site": ctx.server, "observer": gateway_ref(ctx), "type": [coding(kind)]}


def patient_entity(patient_id: str) -> Json:
    """BALP entity[patient]: found by `AuditEvent?patient=` (entity.what is a Patient)."""
    return {
        "what": {"reference": f"Patient/{patient_id}"},
        "type": coding(codes.PERSON),
        "role": coding(codes.PATIENT_ROLE),
    }


def patient_entities(patient_ids: Sequence[str]) -> list[Json]:
    return [patient_entity(p) for p in dict.fromkeys(patient_ids)]  # once each, in order


def data_entity(reference: str, role: codes.Code = codes.RESOURCE_ROLE) -> Json:
    return {
        "what": {"reference": reference},
        "type": coding(codes.SYSTEM_OBJECT),
        "role": coding(role),
    }


def query_entity(path: str, params: Sequence[tuple[str, str]]) -> Json:
    """BALP entity[query]: the request, base64, with personal values redacted."""
    text = path + (
        "?" + urlencode([redact(k, v) for k, v in params], safe="/:|,") if params else ""
    )
    return {
        "type": coding(codes.SYSTEM_OBJECT),
        "role": coding(codes.QUERY_ROLE),
        "query": base64.b64encode(text.encode()).decode("ascii"),
    }


def redact(name: str, value: str) -> tuple[str, str]:
    """(name, value), the value replaced when it names or identifies a person."""
    personal = any(s in codes.PERSONAL_PARAMS for s in _NAME_SEGMENTS.split(name))
    return (name, codes.REDACTED if personal or _HETU.search(value) else value)


def request_entity(ctx: AuditContext) -> list[Json]:
    """BALP entity[transaction] (X-Request-Id), when the request carried one."""
    if not ctx.request_id:
        return []
    return [
        {
            "what": {"identifier": {"value": ctx.request_id}},
            "type": coding(codes.REQUEST_ID_TYPE),
        }
    ]


def _with_requestor(ctx: AuditContext, agents: list[Json]) -> list[Json]:
    """R4 needs agent.requestor on every agent; with no organisation known (a refused login
    with an unknown issuer) the calling application is the requestor."""
    if not any(a["requestor"] for a in agents):
        for a in agents:
            if a["who"] == client_ref(ctx):
                a["requestor"] = True
    return agents


def event(
    ctx: AuditContext,
    type_: codes.Code,
    subtypes: Sequence[codes.Code],
    action: str,
    agents: list[Json],
    entities: list[Json],
    source_kind: codes.Code = codes.APPLICATION_SERVER,
    outcome: str | None = None,
    outcome_desc: str | None = None,
) -> Json:
    """The AuditEvent frame; `outcome` overrides the context's (a decision sets its own)."""
    out: Json = {"resourceType": "AuditEvent", "type": coding(type_)}
    if subtypes:
        out["subtype"] = [coding(s) for s in subtypes]
    out |= {"action": action, "recorded": ctx.recorded, "outcome": outcome or ctx.outcome.value}
    if outcome_desc:
        out["outcomeDesc"] = outcome_desc
    if ctx.purpose_of_use:
        out["purposeOfEvent"] = purposes(ctx)
    out |= {"agent": _with_requestor(ctx, agents), "source": source(ctx, source_kind)}
    entities = entities + request_entity(ctx)
    if entities:
        out["entity"] = entities
    return out
