"""CareTeam -> the network organizer, one member act per participant."""

from __future__ import annotations

from typing import Any

from adapters.cda import datatypes, details, nodes
from adapters.cda.fhir_to_cda.common import entry_code, head, new_entry, performer
from adapters.cda.fhir_to_cda.parties import Index
from adapters.cda.mapping import Structure, translate
from adapters.cda.parse import child

Element = nodes.Element


def network(s: Structure, idx: Index, section: Element, plan: dict[str, Any]) -> list[str]:
    lines = []
    for team in filter(None, (idx.get(t) for t in plan.get("careTeam", ()))):
        org = head(
            s,
            new_entry(section),
            "organizer",
            "network",
            {"classCode": "CLUSTER", "moodCode": "EVN"},
            f"CareTeam/{team['id']}",
        )
        entry_code(s, org, "network", team.get("name"))
        child(
            org,
            "statusCode",
            {"code": translate("care-team-status-to-act-status", team.get("status"))},
        )
        datatypes.write_period(org, "effectiveTime", team.get("period"))
        for manager in team.get("managingOrganization", ()):
            performer(s, idx, org, manager)
        for member in team.get("participant", ()):
            lines += _member(s, idx, org, member)
        details.write(s, org, "network", team, wrapper="component")
        details.write_notes(s, org, team.get("note"), wrapper="component")
    return lines


def _member(s: Structure, idx: Index, organizer: Element, member: dict[str, Any]) -> list[str]:
    if idx.get(member.get("member")) is None:
        return []
    act = head(
        s,
        child(organizer, "component"),
        "act",
        "member",
        {"classCode": "ACT", "moodCode": "EVN"},
        None,
    )
    role = (member.get("role") or [None])[0]
    if datatypes.write_concept(s, act, "code", role) is None:
        child(act, "code", {"nullFlavor": "UNK"})
    datatypes.write_period(act, "effectiveTime", member.get("period"))
    performer(s, idx, act, member.get("member"))
    details.write(s, act, "member", member)
    return [
        (role or {}).get("text") or ((role or {}).get("coding") or [{}])[0].get("display") or "?"
    ]
