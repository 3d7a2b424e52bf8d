"""Overlapping services (päällekkäisyydet) in the client's words: each finding of
gateway/coordination/overlaps.py as one sentence naming the service and the organisations,
never a code or a reference.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.coordination.overlap_finder import DUPLICATE, Overlap
from gateway.coordination.render import texts
from gateway.coordination.render.codes import coding_display
from gateway.coordination.render.people import organization_name
from gateway.coordination.render.resources import PlanResources, day


def organization_of(res: PlanResources) -> dict[str, str]:
    """ "PractitionerRole/x" -> "Organization/y" for the roles gathered, as overlaps() wants."""
    out = {}
    for ref, role in res.directory.items():
        org = (role.get("organization") or {}).get("reference")
        if ref.startswith("PractitionerRole/") and isinstance(org, str):
            out[ref] = org
    return out


def _period(lang: str, start: str | None, end: str | None) -> str:
    first, last = texts.format_date(lang, day(start)), texts.format_date(lang, day(end))
    if first and last:
        return f" ({first}\N{EN DASH}{last})"
    return f" ({first}\N{EN DASH})" if first else ""


def overlap_text(res: PlanResources, finding: Overlap, lang: str) -> str:
    names = [
        organization_name(res, {"reference": o}) or texts.text(lang, "other_org")
        for o in finding.organizations
    ]
    joined = f" {texts.text(lang, 'and')} ".join(names)
    key = "overlap_duplicate" if finding.kind == DUPLICATE else "overlap_several"
    return texts.text(
        lang,
        key,
        service=coding_display(finding.service, lang),
        organizations=joined,
        period=_period(lang, finding.start, finding.end),
    )


def overlap_texts(res: PlanResources, findings: Sequence[Overlap], lang: str) -> list[str]:
    return [overlap_text(res, f, lang) for f in findings]
