"""`CarePlan/{id}/$export-cda?kind=hosu|social-plan`: a stored plan out as a CDA R2 document.

The plan graph (plan, client, networks, goals, responsibilities, the directory entries they
name) is gathered through the caller's disclosure gate (the same gathering as `$client-plan`):
what the caller may not see is absent from the document, a masked identity stays masked. The
pure adapter writes the document (adapters.cda.convert.from_fhir); the disclosure is recorded
(Gate.note_export) of exactly the resources handed to it. It never writes anything.
"""

from __future__ import annotations

from typing import Any

from adapters.cda.convert import EXPORT_KINDS, from_fhir
from gateway.coordination import common
from gateway.coordination.client_plan import gather
from gateway.coordination.common import Params, where
from gateway.coordination.visible import key
from gateway.documents.errors import translated
from gateway.errors import FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

MEDIA_TYPE = "application/xml; charset=utf-8"


def _kind(params: Params) -> str:
    kind = params.str("kind") or "hosu"
    if kind not in EXPORT_KINDS:
        raise invalid(f"kind must be one of {', '.join(EXPORT_KINDS)}", where("kind"))
    return kind


def _author(svc: Services, req: FhirRequest, directory: dict[str, Any]) -> dict[str, Any]:
    """The exporting organisation (the document's author): the caller's Organization; without
    a caller (auth off) the plan's own organisation as far as the directory names one."""
    if req.caller is not None:
        try:
            return common.read_visible(svc, req, "Organization", req.caller.organization)
        except FhirError:
            raise invalid(
                "the calling organisation has no Organization in the directory", "Organization"
            ) from None
    orgs = [r for k, r in directory.items() if k.startswith("Organization/")]
    if not orgs:
        raise invalid("the plan names no organisation to author the document", "CarePlan")
    return orgs[0]


def export_cda(svc: Services, req: FhirRequest) -> FhirResponse:
    params = Params.of(req, allowed=("kind",))
    kind = _kind(params)
    assert req.id is not None  # an instance-level operation
    res = gather(svc, req, req.id)
    author = _author(svc, req, res.directory)
    resources = [*res.all(), *res.directory.values()]
    with translated():
        document = from_fhir(resources, kind, author_org=author, now=common.now(req))
    subject = str((res.plan.get("subject") or {}).get("reference") or "")
    patient_id = subject.split("/", 1)[1] if subject.startswith("Patient/") else ""
    req.gate.note_export(patient_id, [key(r) for r in resources])
    headers = {
        "Content-Type": MEDIA_TYPE,
        "Cache-Control": "no-store",  # personal data: never kept by a proxy
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="plan-{req.id}-{kind}.xml"',
    }
    return FhirResponse(200, body=document, headers=headers)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "export-cda",
        export_cda,
        resource_types=("CarePlan",),
        instance=True,
        affects_state=False,
        produces=("application/xml",),
        scope=("CarePlan", "r"),
        title="Export a plan as a CDA document",
        description=(
            "The plan as a CDA R2 document of our Kanta-style structure: kind=hosu (health and "
            "care plan, default) or social-plan (social-welfare client plan). Contains only "
            "what the caller may see (a hidden resource is absent, a protected client's "
            "identity stays masked); recorded as a disclosure. Answers application/xml."
        ),
        parameters=(
            Param("kind", "code", documentation="hosu (default) or social-plan"),
            Param("return", "Binary", use="out", min=1, documentation="application/xml"),
        ),
    ),
)
