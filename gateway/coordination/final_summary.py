"""The final summary (loppuyhteenveto, seed 002): at the end of the period the coordinator's
organisation records a document built from the plan into the client register, and anyone it may
be shown to reads it back as a FHIR document (http://hl7.org/fhir/R4/documents.html).

`$final-summary` builds a Composition (profile final-summary) from what the caller sees of the
plan, stores it with a DocumentReference holding the document Bundle and a Provenance in ONE
transaction, and closes the plan with its lasting solution. `Composition/{id}/$document`
rebuilds the document through the gate, entry by entry (the stored Composition is
custodian-only: `common.read_document`). Both record the disclosure (`Gate.note_export`). The
builders are pure (summary_composition.py, summary_document.py, summary_text.py); nothing here
reads around the gate or writes outside `common.apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.coordination import common
from gateway.coordination.common import Params
from gateway.coordination.participation_summary import ref_of
from gateway.coordination.standing import PLAN_HOLDER, PlanAction, our_coding, target_plan
from gateway.coordination.summary_composition import (
    LOINC,
    PlanRecord,
    closed_plan,
    composition,
)
from gateway.coordination.summary_document import (
    document,
    document_reference,
    referenced,
    shown_to_reader,
)
from gateway.coordination.summary_record import gather, plan_custodian
from gateway.coordination.summary_text import SOLUTION_SYSTEM
from gateway.coordination.visible import key, visible
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

Resource = Mapping[str, Any]

# Who may write the summary, and of which plans (a completed plan gets a new summary replacing
# the earlier one).
SUMMARISE = PlanAction(
    PLAN_HOLDER,
    "write the final summary",
    ("active", "on-hold", "completed"),
    "plan-summarisable",
    "only an active, on-hold or completed plan gets a final summary",
)


def _exported(req: FhirRequest, doc: Resource) -> None:
    """Record that the document left the gateway (BALP PrivacyDisclosure)."""
    entries = doc.get("entry") or []
    subject = ref_of(entries[0]["resource"].get("subject")) or ""
    patient = subject.split("/", 1)[1] if subject.startswith("Patient/") else ""
    req.gate.note_export(patient, [key(e["resource"]) for e in entries])


# -- $final-summary -------------------------------------------------------------------------
def _document(
    svc: Services, req: FhirRequest, comp: Resource, record: PlanRecord, closed: Resource
) -> dict[str, Any]:
    """The new document: what the record holds as it is (the plan as closed), the rest read."""
    known = {key(r): r for r in (*record.goals, *record.requests, *record.tasks, *record.feedback)}
    known[key(record.plan)] = closed
    included = visible(svc, req, referenced(comp), known)
    return document(comp, included, req.base, common.new_id(), common.now(req))


def _previous(svc: Services, req: FhirRequest, plan: Resource) -> list[dict[str, Any]]:
    """The plan's current final-summary DocumentReferences, which the new one replaces."""
    found = [("related", key(plan)), ("type", f"{LOINC}|34133-9"), ("status", "current")]
    return common.search_visible(svc, req, "DocumentReference", found)


def _superseded(old: Resource) -> dict[str, Any]:
    return {**{k: v for k, v in old.items() if k != "meta"}, "status": "superseded"}


def _writes(
    req: FhirRequest, plan: dict[str, Any], stored: list[dict[str, Any]], previous: list[Any]
) -> list[dict[str, Any]]:
    """The transaction: Composition, DocumentReference, the closed plan, the superseded
    summaries, and a Provenance naming the plan version the summary was built from."""
    comp, doc_ref, closed = stored
    entries = [common.put(comp), common.put(doc_ref), common.put(closed, common.version_of(plan))]
    entries += [common.put(_superseded(d), common.version_of(d)) for d in previous]
    targets = [f"{key(comp)}/_history/1", f"{key(doc_ref)}/_history/1", common.next_version(plan)]
    targets += [common.next_version(d) for d in previous]
    provenance = common.provenance_entry(req, targets, common.CREATE)
    source = f"{key(plan)}/_history/{common.version_of(plan)}"
    provenance["resource"]["entity"] = [{"role": "source", "what": {"reference": source}}]
    return [*entries, provenance]


def final_summary(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/{id}/$final-summary`: build, store and answer the final summary document."""
    params = Params.of(req, allowed=("solution", "note", "date"))
    solution = our_coding(
        params.coding("solution", required=True) or {}, SOLUTION_SYSTEM, "solution"
    )
    note, when = params.str("note"), params.date("date") or common.now(req)
    plan = target_plan(svc, req, SUMMARISE)
    record = gather(svc, req, plan)
    custodian = plan_custodian(svc, req, plan)
    author = common.acting_role(req) or common.caller_org(req) or custodian
    ids = (common.new_id(), common.new_id())
    comp = composition(record, solution, note, ids, when, author, custodian)
    closed = closed_plan(plan, solution, when)
    doc = _document(svc, req, comp, record, closed)
    previous = _previous(svc, req, plan)
    replaces = [key(d) for d in previous]
    doc_ref = document_reference(doc, comp, common.new_id(), replaces, common.now(req))
    writes = _writes(req, plan, [comp, doc_ref, closed], previous)
    common.apply(svc, req, writes, authority=PLAN_HOLDER)
    _exported(req, doc)
    return common.ok(doc)


# -- Composition/{id}/$document -------------------------------------------------------------
def _unsupported(params: Params) -> None:
    if params.boolean("persist"):
        raise FhirError(
            Category.NOT_SUPPORTED,
            "persist is not supported: $final-summary files the document",
            (common.where("persist"),),
        )
    if params.str("graph"):
        raise FhirError(Category.NOT_SUPPORTED, "graph is not supported", (common.where("graph"),))


def rebuild_document(svc: Services, req: FhirRequest) -> FhirResponse:
    """`Composition/{id}/$document` (composition-operation-document.html): the document Bundle
    of the stored Composition, with the current versions of what it references that the caller
    may see; what it may not see is left out (and the sections written from it withheld)."""
    _unsupported(Params.of(req, allowed=("persist", "graph")))
    comp = common.read_document(svc, req, str(req.id))  # documents are custodian-only
    included = visible(svc, req, referenced(comp), {})
    shown = shown_to_reader(comp, {key(r) for r in included})
    doc = document(shown, included, req.base, common.new_id(), common.now(req))
    _exported(req, doc)
    return common.ok(doc)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "final-summary",
        final_summary,
        resource_types=("CarePlan",),
        instance=True,
        scope=("Composition", "c"),
        title="Final summary (loppuyhteenveto)",
        description=(
            "Builds the final-summary Composition from the plan (goals and how far they were "
            "reached in the client's own words, services used, responsibilities fulfilled or "
            "not, the lasting solution, client feedback), files it with a DocumentReference "
            "holding the document Bundle (replacing an earlier summary of the plan) and a "
            "Provenance, and completes the plan with its lasting-solution extension: one "
            "transaction. Answers the document Bundle. Who may: a holder of the plan (its "
            "custodian organisation, or a custodian of its client; rule plan-holder)."
        ),
        parameters=(
            Param("solution", "Coding", min=1, documentation="lasting-solution code"),
            Param("note", "string", documentation="free text for the ratkaisu section"),
            Param("date", "dateTime", documentation="the summary's date; default now"),
            Param("return", "Bundle", use="out", min=1, documentation="the document Bundle"),
        ),
    ),
    Operation(
        "document",
        rebuild_document,
        resource_types=("Composition",),
        instance=True,
        affects_state=False,
        title="Generate a document",
        description=(
            "The document Bundle of a stored Composition (FHIR R4 Composition $document): the "
            "Composition, then its subject, authors, custodian, event details and section "
            "entries as the caller may see them; a hidden one is left out and a section "
            "written from it shows only that it is withheld. persist and graph are not "
            "supported."
        ),
        parameters=(
            Param("persist", "boolean", documentation="only false (not stored again)"),
            Param("return", "Bundle", use="out", min=1),
        ),
    ),
)
