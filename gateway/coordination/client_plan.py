"""`CarePlan/{id}/$client-plan` (issue 4, workflow 8): the shared plan rendered for the client,
in plain Finnish (or English), as an HTML page or a printable PDF, with the network picture.

Everything it shows is read through the caller's disclosure gate (common.read_visible /
search_visible): a resource the caller may not see is left out, a hidden plan is a 404. The
rendering is recorded as a disclosure (Gate.note_export) of exactly the resources shown. It
never writes anything.
"""

from __future__ import annotations

from typing import Any

from gateway.coordination import visible
from gateway.coordination.common import Params, read_visible, search_visible, where
from gateway.coordination.overlap_finder import overlaps
from gateway.coordination.render.build import build_view
from gateway.coordination.render.html import render_html
from gateway.coordination.render.overlaps import organization_of, overlap_texts
from gateway.coordination.render.pdf import render_pdf
from gateway.coordination.render.resources import PlanResources, references
from gateway.coordination.render.texts import LANGUAGES
from gateway.errors import invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

FORMATS = {"html": "html", "text/html": "html", "pdf": "pdf", "application/pdf": "pdf"}
MEDIA = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
# The page runs no script and loads nothing: its style and picture are inline.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
DIRECTORY = ("PractitionerRole", "Practitioner", "Organization")


def _format(req: FhirRequest) -> str:
    asked = (req.param("_format") or "html").strip().lower()
    if asked not in FORMATS:
        raise invalid("_format must be html or pdf for $client-plan", "_format")
    return FORMATS[asked]


def _lang(params: Params) -> str:
    lang = (params.str("lang") or "fi").lower()
    if lang not in LANGUAGES:
        raise invalid("lang must be fi or en", where("lang"))
    return lang


def _by_id(svc: Services, req: FhirRequest, rtype: str, refs: set[str]) -> list[dict[str, Any]]:
    """The visible resources of `rtype` among `refs` ("Type/id"), in audited `_id` searches."""
    return [dict(r) for r in visible.by_ids(svc, req, rtype, visible.ids_of(refs, rtype)).values()]


def gather(svc: Services, req: FhirRequest, plan_id: str) -> PlanResources:
    """The plan and what it names, as far as the caller may see them."""
    plan = read_visible(svc, req, "CarePlan", plan_id)
    named = references(plan)
    subject = references(plan.get("subject"))
    target = [("based-on", f"CarePlan/{plan_id}")]
    res = PlanResources(
        plan=plan,
        patient=next(iter(_by_id(svc, req, "Patient", subject)), None),
        care_teams=_by_id(svc, req, "CareTeam", named),
        goals=_by_id(svc, req, "Goal", named),
        requests=search_visible(svc, req, "ServiceRequest", target),
        tasks=search_visible(svc, req, "Task", target),
    )
    named = references(res.all())
    for rtype in DIRECTORY:  # roles first: they name their Practitioner and Organization
        for found in _by_id(svc, req, rtype, named - set(res.directory)):
            res.directory[f"{rtype}/{found['id']}"] = found
        named |= references(list(res.directory.values()))
    return res


def client_plan(svc: Services, req: FhirRequest) -> FhirResponse:
    params = Params.of(req, allowed=("lang",))
    lang, fmt = _lang(params), _format(req)
    assert req.id is not None  # an instance-level operation
    res = gather(svc, req, req.id)
    findings = overlaps(res.requests, res.tasks, organization_of(res))
    view = build_view(
        res, lang, today=req.gate.now.date(), overlaps=overlap_texts(res, findings, lang)
    )
    subject = str((res.plan.get("subject") or {}).get("reference") or "")
    patient_id = subject.split("/", 1)[1] if subject.startswith("Patient/") else ""
    req.gate.note_export(patient_id, view.refs)
    body = render_pdf(view) if fmt == "pdf" else render_html(view).encode("utf-8")
    headers = {
        "Content-Type": MEDIA[fmt],
        "Content-Language": lang,
        "Cache-Control": "no-store",  # personal data: never kept by a proxy or the browser
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CSP,
    }
    if fmt == "pdf":
        headers["Content-Disposition"] = f'inline; filename="plan-{req.id}-{lang}.pdf"'
    return FhirResponse(200, body=body, headers=headers)


OPERATIONS = (
    Operation(
        name="client-plan",
        handler=client_plan,
        resource_types=("CarePlan",),
        instance=True,
        affects_state=False,
        produces=("text/html", "application/pdf"),
        title="Client-readable plan (asiakkaan suunnitelma)",
        description=(
            "The plan for the client in plain Finnish (lang=en: English): who drives the process "
            "and how to reach them, the client's goal in their own words, who does what by when, "
            "when we return to this, feedback, peer support, overlaps and a picture of the "
            "network. _format=html (default) or pdf (A4). Shows only what the caller may see; "
            "recorded as a disclosure."
        ),
        parameters=(
            Param("lang", "code", documentation="fi (default) or en"),
            Param("_format", "string", documentation="html (default) or pdf"),
            Param("return", "Binary", use="out", min=1, documentation="text/html or PDF"),
        ),
    ),
)
