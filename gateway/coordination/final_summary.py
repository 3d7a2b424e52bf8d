"""The final summary (loppuyhteenveto, seed 002): at the end of the period the coordinator's
organisation records a document built from the plan into the client register, and anyone it may
be shown to reads it back as a FHIR document (http://hl7.org/fhir/R4/documents.html).

`$final-summary` builds a Composition (profile final-summary) from what the caller sees of the
plan, stores it with a DocumentReference holding the document Bundle and a Provenance in ONE
transaction, and closes the plan with its lasting solution. `Composition/{id}/$document`
rebuilds the document through the gate. Both record the disclosure (`Gate.note_export`). The
narrative and Composition builders are pure (`summary.py`-style functions below); nothing here
reads around the gate or writes outside `common.apply`.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.consent.vocabulary import CANONICAL, CUSTODIAN_EXTENSION
from gateway.coordination import common
from gateway.coordination.common import Params
from gateway.coordination.follow_up import by_ids, ids_of, is_responsibility
from gateway.coordination.participation import (
    FEEDBACK_STAGES,
    PEER_SUPPORT_ANSWERS,
    PLAN_HOLDER,
    check_standing,
    participation_summary,
    ref_of,
    with_extension,
)
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param

Resource = Mapping[str, Any]

LOINC = "http://loinc.org"
SUMMARY_TYPE = {"system": LOINC, "code": "34133-9", "display": "Summary of episode note"}
PROFILE = f"{CANONICAL}/StructureDefinition/final-summary"
LASTING_SOLUTION = f"{CANONICAL}/StructureDefinition/lasting-solution"
SOLUTION_SYSTEM = f"{CANONICAL}/CodeSystem/lasting-solution"
SECTION_SYSTEM = f"{CANONICAL}/CodeSystem/summary-section"
TITLE = "Loppuyhteenveto / Final summary"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
# summary-section: code -> (Finnish display, English designation), in document order.
SECTIONS: dict[str, tuple[str, str]] = {
    "tavoitteet": ("Tavoitteet", "Goals"),
    "palvelut": ("Käytetyt palvelut", "Services used"),
    "vastuut": ("Vastuut", "Responsibilities"),
    "ratkaisu": ("Pysyvä ratkaisu", "Lasting solution"),
    "asiakkaan-palaute": ("Asiakkaan palaute", "Client feedback"),
}
# Plan statuses a final summary may close (a completed plan gets a new summary replacing one).
SUMMARISABLE = ("active", "on-hold", "completed")


@dataclass(frozen=True)
class PlanRecord:
    """What the summary is built from: the plan and what it names, as the caller sees them."""

    plan: Resource
    goals: Sequence[Resource]
    requests: Sequence[Resource]
    tasks: Sequence[Resource]
    careteam: Resource | None
    feedback: Sequence[Resource]


# -- narratives (Finnish first, English beside it) --------------------------------------------
XHTML = "http://www.w3.org/1999/xhtml"
# lasting-solution: code -> (Finnish display, English designation).
SOLUTIONS: dict[str, tuple[str, str]] = {
    "opiskelu": ("Opiskelu", "Studies"),
    "tyollistyminen": ("Työllistyminen", "Employment"),
    "palkkatuettu-tyo": ("Palkkatuettu työ", "Subsidised work"),
    "kuntoutus": ("Kuntoutus", "Rehabilitation"),
    "tyokyvyttomyyselake": ("Työkyvyttömyyseläke", "Disability pension"),
    "osatyokyvyttomyyselake": ("Osatyökyvyttömyyseläke", "Partial disability pension"),
    "muu-palvelu": ("Muu palvelu", "Another service"),
    "ei-ratkaisua": ("Ei pysyvää ratkaisua", "No lasting solution"),
}
# Status words of goals, services and responsibilities (R4 value sets) in plain words.
WORDS: dict[str, tuple[str, str]] = {
    "achieved": ("saavutettu", "achieved"),
    "sustaining": ("saavutettu ja pysyvä", "sustaining"),
    "in-progress": ("kesken", "in progress"),
    "improving": ("edistyy", "improving"),
    "worsening": ("heikentynyt", "worsening"),
    "no-change": ("ei muutosta", "no change"),
    "not-achieved": ("ei saavutettu", "not achieved"),
    "no-progress": ("ei edistystä", "no progress"),
    "not-attainable": ("ei saavutettavissa", "not attainable"),
    "proposed": ("ehdotettu", "proposed"),
    "planned": ("suunniteltu", "planned"),
    "accepted": ("hyväksytty", "accepted"),
    "active": ("voimassa", "active"),
    "on-hold": ("tauolla", "on hold"),
    "completed": ("valmis", "completed"),
    "cancelled": ("peruttu", "cancelled"),
    "rejected": ("hylätty", "rejected"),
    "revoked": ("peruttu", "revoked"),
    "draft": ("luonnos", "draft"),
    "requested": ("pyydetty", "requested"),
    "received": ("vastaanotettu", "received"),
    "ready": ("valmis aloitettavaksi", "ready"),
    "failed": ("epäonnistui", "failed"),
    "entered-in-error": ("virheellinen", "entered in error"),
}
# Where a Task's status reads otherwise than the same code of a goal or a service.
TASK_WORDS: dict[str, tuple[str, str]] = {
    "in-progress": ("käynnissä", "in progress"),
    "accepted": ("vastaanotettu", "accepted"),
}
NOT_FULFILLED = ("cancelled", "rejected", "failed", "entered-in-error")


def word(code: Any, words: Mapping[str, tuple[str, str]] = WORDS) -> str:
    """`fi (en)` for a status code; the code itself when it has no words here."""
    fi, en = words.get(str(code)) or WORDS.get(str(code), (str(code), str(code)))
    return f"{fi} ({en})"


def _escape(text: str) -> str:
    return html.escape(text, quote=False)  # element content: quotes need no escaping


def narrative(fi: str, en: str, lines: Sequence[str]) -> dict[str, str]:
    """Generated XHTML narrative: a heading and one list item per line, all text escaped."""
    items = "".join(f"<li>{_escape(line)}</li>" for line in lines)
    body = f"<ul>{items}</ul>" if lines else "<p>Ei tietoja (nothing recorded).</p>"
    head = f"<p><b>{_escape(fi)}</b> ({_escape(en)})</p>"
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{head}{body}</div>'}


def withheld(fi: str, en: str) -> dict[str, str]:
    """The narrative of a section whose entries the reader may not all see: no content."""
    line = "Osion tiedot eivät ole näytettävissä (this section is not shown in full to you)."
    return narrative(fi, en, [line])


def _display(concept: Any) -> str:
    if not isinstance(concept, Mapping):
        return ""
    codings = [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    display = next((c.get("display") for c in codings if c.get("display")), None)
    return str(display or concept.get("text") or "")  # our displays are the Finnish names


def goal_lines(goals: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per goal (participation_summary's `goals`): its text, whose words, how far it got."""
    out = []
    for g in goals:
        words = " (asiakkaan omin sanoin / in the client's own words)" if g["own_words"] else ""
        reached = f"{word(g['achievement'])}, " if g["achievement"] else ""
        out.append(f"“{g['text']}”{words}: {reached}tila {word(g['lifecycle'])}")
    return out


def _period(period: Any) -> str:
    period = period if isinstance(period, Mapping) else {}
    start, end = str(period.get("start") or "")[:10], str(period.get("end") or "")[:10]
    return f"{start}\u2013{end}" if start or end else ""


def service_lines(requests: Sequence[Resource]) -> list[str]:
    """Per ServiceRequest: the service, who gave it, when, and its status."""
    out = []
    for r in requests:
        performers = ", ".join(str(p.get("display") or ref_of(p)) for p in r.get("performer") or [])
        when = _period(r.get("occurrencePeriod"))
        parts = [p for p in (performers, when) if p]
        out.append(f"{_display(r.get('code'))}: {', '.join(parts)}; {word(r.get('status'))}")
    return out


def fulfilment(status: Any) -> str:
    """Whether a responsibility was fulfilled: toteutui / ei toteutunut / kesken."""
    if status == "completed":
        return "toteutui (fulfilled)"
    if status in NOT_FULFILLED:
        return "ei toteutunut (not fulfilled)"
    return "kesken (still open)"


def responsibility_lines(tasks: Sequence[Resource]) -> list[str]:
    """Per responsibility Task: what, whose, due when, fulfilled or not, and its status."""
    out = []
    for t in tasks:
        owner = t.get("owner") or {}
        due = ((t.get("restriction") or {}).get("period") or {}).get("end")
        what = t.get("description") or _display(t.get("code"))
        by = owner.get("display") or ref_of(owner) or ""
        due_text = f", määräaika (due) {str(due)[:10]}" if due else ""
        status = f"{fulfilment(t.get('status'))}, tila {word(t.get('status'), TASK_WORDS)}"
        out.append(f"{what}: {by}{due_text}; {status}")
    return out


def solution_lines(code: str, note: str | None) -> list[str]:
    fi, en = SOLUTIONS[code]
    return [f"{fi} ({en})", *([note] if note else [])]


def feedback_lines(summary: Mapping[str, Any]) -> list[str]:
    """The client's stage feedback, oldest first, then the peer-support offer and answer."""
    out = []
    for f in summary["feedback"]:
        fi, en = FEEDBACK_STAGES.get(str(f["stage"]), (str(f["stage"]), str(f["stage"])))
        when = str(f["authored"] or "")[:10]
        out.append(f"{fi} ({en}) {when}: “{f['text'] or ''}”".replace("  ", " "))
    offer = summary["peer_support"]
    if offer:
        fi, en = PEER_SUPPORT_ANSWERS.get(str(offer["answer"]), ("?", "?"))
        when = str(offer["date"] or "")[:10]
        out.append(f"Vertaistuki ja kokemusasiantuntija (peer support): {fi} ({en}) {when}")
    return out


# -- pure builders -----------------------------------------------------------------------------
def solution_coding(coding: Mapping[str, Any]) -> dict[str, str]:
    """The lasting-solution Coding with its Finnish display; 400 for any other code."""
    code = str(coding.get("code"))
    if coding.get("system") != SOLUTION_SYSTEM or code not in SOLUTIONS:
        raise invalid(f"solution must be a code of {SOLUTION_SYSTEM}", common.where("solution"))
    return {"system": SOLUTION_SYSTEM, "code": code, "display": SOLUTIONS[code][0]}


def _refs(resources: Iterable[Resource]) -> list[dict[str, str]]:
    return [{"reference": f"{r['resourceType']}/{r['id']}"} for r in resources]


def section(
    code: str, lines: Sequence[str], entries: Sequence[dict[str, str]], none: bool = False
) -> dict[str, Any]:
    """One summary section: its code, title, generated narrative and entry references;
    `none`: nothing of the kind was recorded (emptyReason nilknown)."""
    fi, en = SECTIONS[code]
    out: dict[str, Any] = {
        "title": f"{fi} / {en}",
        "code": {"coding": [{"system": SECTION_SYSTEM, "code": code, "display": fi}]},
        "text": narrative(fi, en, lines),
    }
    if entries:
        out["entry"] = list(entries)
    if none:
        out["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": "nilknown"}]}
    return out


def sections(
    record: PlanRecord, solution: Mapping[str, str], note: str | None
) -> list[dict[str, Any]]:
    """The five sections, in SECTIONS order, from what the caller sees of the plan."""
    summary = participation_summary(record.plan, record.goals, record.careteam, record.feedback)
    shown = {f["response"] for f in summary["feedback"]}
    feedback = [r for r in record.feedback if f"QuestionnaireResponse/{r['id']}" in shown]
    lines = feedback_lines(summary)
    return [
        section("tavoitteet", goal_lines(summary["goals"]), _refs(record.goals)),
        section("palvelut", service_lines(record.requests), _refs(record.requests)),
        section("vastuut", responsibility_lines(record.tasks), _refs(record.tasks)),
        # The plan carries the lasting solution too (closed_plan).
        section("ratkaisu", solution_lines(solution["code"], note), _refs([record.plan])),
        section("asiakkaan-palaute", lines, _refs(feedback), none=not lines),
    ]


def composition(
    record: PlanRecord,
    solution: Mapping[str, str],
    note: str | None,
    ids: tuple[str, str],
    when: str,
    author: str,
    custodian: str,
) -> dict[str, Any]:
    """The final-summary Composition (`ids`: its id and version-independent identifier)."""
    plan = record.plan
    event: dict[str, Any] = {"detail": [{"reference": f"CarePlan/{plan.get('id')}"}]}
    if plan.get("period"):
        event["period"] = plan["period"]
    return {
        "resourceType": "Composition",
        "id": ids[0],
        "meta": {"profile": [PROFILE]},
        "extension": [{"url": LASTING_SOLUTION, "valueCoding": dict(solution)}],
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{ids[1]}"},
        "status": "final",
        "type": {"coding": [SUMMARY_TYPE], "text": "Loppuyhteenveto (final summary)"},
        "subject": {"reference": ref_of(plan.get("subject")) or ""},
        "date": when,
        "author": [{"reference": author}],
        "title": TITLE,
        "custodian": {"reference": custodian},
        "event": [event],
        "section": sections(record, solution, note),
    }


def referenced(comp: Resource) -> list[str]:
    """What the document includes after the Composition, in order, once each: the subject, the
    authors, the custodian, the event details (the plan) and every section entry (one level:
    what those resources name in turn is not included)."""
    refs = [ref_of(comp.get("subject"))]
    refs += [ref_of(a) for a in comp.get("author") or []]
    refs.append(ref_of(comp.get("custodian")))
    refs += [ref_of(d) for e in comp.get("event") or [] for d in e.get("detail") or []]
    refs += [ref_of(x) for s in comp.get("section") or [] for x in s.get("entry") or []]
    return list(dict.fromkeys(r for r in refs if r))


def document(
    comp: Resource, included: Sequence[Resource], base: str, identifier: str, timestamp: str
) -> dict[str, Any]:
    """The document Bundle: the Composition first, then the included resources."""
    entries = [comp, *included]
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{identifier}"},
        "type": "document",
        "timestamp": timestamp,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in entries
        ],
    }


def document_reference(
    doc: Resource, comp: Resource, doc_id: str, replaces: Sequence[str], when: str
) -> dict[str, Any]:
    """The DocumentReference that files the document in the client register: the Bundle itself
    as base64 application/fhir+json, related to the plan and the Composition."""
    data = orjson.dumps(doc)
    related = [ref for d in comp.get("event") or [] for ref in d.get("detail") or []]
    out: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "masterIdentifier": doc["identifier"],
        "status": "current",
        "docStatus": "final",
        "type": comp["type"],
        "subject": comp["subject"],
        "date": when,
        "author": comp["author"],
        "custodian": comp["custodian"],
        "description": TITLE,
        "content": [
            {
                "attachment": {
                    "contentType": "application/fhir+json",
                    "language": "fi",
                    "data": base64.b64encode(data).decode("ascii"),
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
                    "title": TITLE,
                    "creation": when,
                }
            }
        ],
        "context": {"related": [*related, {"reference": f"Composition/{comp['id']}"}]},
    }
    if replaces:
        out["relatesTo"] = [{"code": "replaces", "target": {"reference": r}} for r in replaces]
    period = next((e.get("period") for e in comp.get("event") or [] if e.get("period")), None)
    if period:
        out["context"]["period"] = period
    return out


def closed_plan(plan: Resource, solution: Mapping[str, str], when: str) -> dict[str, Any]:
    """The plan completed with its lasting solution (its period ended then, unless it was)."""
    out = with_extension(
        {k: v for k, v in plan.items() if k != "meta"},
        {"url": LASTING_SOLUTION, "valueCoding": dict(solution)},
    )
    out["status"] = "completed"
    period = dict(plan.get("period") or {})
    period.setdefault("end", when[:10])
    out["period"] = period
    return out


# -- gathering through the gate --------------------------------------------------------------------
def _key(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _ordered(resources: Iterable[Resource], field: str) -> list[Resource]:
    return sorted(resources, key=lambda r: (str(r.get(field) or ""), str(r.get("id"))))


def gather(svc: Services, req: FhirRequest, plan: Resource) -> PlanRecord:
    """The plan's goals, services (based on it or its activities), responsibility Tasks, first
    CareTeam and stage feedback, as far as the caller may see them, in a stable order."""
    target = [("based-on", _key(plan))]
    goal_refs = [ref_of(g) for g in plan.get("goal") or []]
    goals = by_ids(svc, req, "Goal", ids_of(goal_refs, "Goal"))
    requests = {_key(r): r for r in common.search_visible(svc, req, "ServiceRequest", target)}
    activity = [ref_of(a.get("reference")) for a in plan.get("activity") or []]
    missing = [r for r in activity if r and r not in requests]
    requests.update(by_ids(svc, req, "ServiceRequest", ids_of(missing, "ServiceRequest")))
    tasks = [t for t in common.search_visible(svc, req, "Task", target) if is_responsibility(t)]
    teams = by_ids(
        svc, req, "CareTeam", ids_of([ref_of(t) for t in plan.get("careTeam") or []], "CareTeam")
    )
    feedback = common.search_visible(svc, req, "QuestionnaireResponse", target)
    return PlanRecord(
        plan=plan,
        goals=[goals[r] for r in dict.fromkeys(goal_refs) if r in goals],
        requests=_ordered(requests.values(), "authoredOn"),
        tasks=_ordered(tasks, "authoredOn"),
        careteam=next(iter(teams.values()), None),
        feedback=_ordered(feedback, "authored"),
    )


def plan_custodian(svc: Services, req: FhirRequest, plan: Resource) -> str:
    """The organisation holding the plan: its custodian extension, else its author (a
    PractitionerRole counts as its organisation)."""
    stamped = [e for e in plan.get("extension") or [] if e.get("url") == CUSTODIAN_EXTENSION]
    ref = ref_of(stamped[0].get("valueReference")) if stamped else ref_of(plan.get("author"))
    if ref and ref.startswith("PractitionerRole/"):
        ref = ref_of(common.read_ref(svc, req, ref).get("organization"))
    if not ref or not ref.startswith("Organization/"):
        raise common.conflict(
            "plan-custodian", "the plan names no holding organisation", "CarePlan.author"
        )
    return ref


def visible(
    svc: Services, req: FhirRequest, refs: Iterable[str], known: Mapping[str, Resource]
) -> list[Resource]:
    """The resources `refs` name that the caller may see (`known` ones as they are); a hidden
    one is left out, as if it did not exist (its denial is audited by the gate)."""
    out = []
    for ref in refs:
        if ref in known:
            out.append(known[ref])
            continue
        try:
            out.append(common.read_ref(svc, req, ref))
        except FhirError as err:
            if err.category not in (Category.NOT_FOUND, Category.GONE, Category.INVALID):
                raise
    return out


def _patient_id(comp: Resource) -> str:
    subject = ref_of(comp.get("subject")) or ""
    return subject.split("/", 1)[1] if subject.startswith("Patient/") else ""


def _exported(req: FhirRequest, doc: Resource) -> None:
    """Record that the document left the gateway (BALP PrivacyDisclosure)."""
    entries = doc.get("entry") or []
    what = [_key(e["resource"]) for e in entries]
    req.gate.note_export(_patient_id(entries[0]["resource"]), what)


# -- $final-summary -------------------------------------------------------------------------
def _superseded(old: Resource) -> dict[str, Any]:
    return {**{k: v for k, v in old.items() if k != "meta"}, "status": "superseded"}


def final_summary(svc: Services, req: FhirRequest) -> FhirResponse:
    """`CarePlan/{id}/$final-summary`: build, store and answer the final summary document."""
    params = Params.of(req, allowed=("solution", "note", "date"))
    solution = solution_coding(params.coding("solution", required=True) or {})
    note, when = params.str("note"), params.date("date") or common.now(req)
    plan = common.read_visible(svc, req, "CarePlan", str(req.id))
    check_standing(svc, req, plan, PLAN_HOLDER, "write the final summary")
    if plan.get("status") not in SUMMARISABLE:
        raise common.conflict(
            "plan-summarisable",
            "only an active, on-hold or completed plan gets a final summary",
            "CarePlan.status",
        )
    record = gather(svc, req, plan)
    custodian = plan_custodian(svc, req, plan)
    author = common.acting_role(req) or common.caller_org(req) or custodian
    ids = (common.new_id(), common.new_id())
    comp = composition(record, solution, note, ids, when, author, custodian)
    closed = closed_plan(plan, solution, when)
    known = {_key(r): r for r in (*record.goals, *record.requests, *record.tasks, *record.feedback)}
    known[_key(plan)] = closed
    doc = document(
        comp, visible(svc, req, referenced(comp), known), req.base, common.new_id(), common.now(req)
    )
    previous = common.search_visible(
        svc,
        req,
        "DocumentReference",
        [("related", _key(plan)), ("type", f"{LOINC}|34133-9"), ("status", "current")],
    )
    doc_ref = document_reference(
        doc, comp, common.new_id(), [_key(d) for d in previous], common.now(req)
    )
    entries = [common.put(comp), common.put(doc_ref), common.put(closed, common.version_of(plan))]
    entries += [common.put(_superseded(d), common.version_of(d)) for d in previous]
    targets = [f"{_key(comp)}/_history/1", f"{_key(doc_ref)}/_history/1", common.next_version(plan)]
    targets += [common.next_version(d) for d in previous]
    provenance = common.provenance_entry(req, targets, CREATE)
    source = f"{_key(plan)}/_history/{common.version_of(plan)}"
    provenance["resource"]["entity"] = [{"role": "source", "what": {"reference": source}}]
    common.apply(svc, req, [*entries, provenance], authority=PLAN_HOLDER)
    _exported(req, doc)
    return common.ok(doc)


# -- Composition/{id}/$document -------------------------------------------------------------
def shown_to_reader(comp: Resource, shown: set[str]) -> dict[str, Any]:
    """The Composition as this reader gets it: a section with an entry the reader may not see
    loses that entry and its narrative (which was written from it) says only that it is
    withheld, so no hidden content leaks through the text."""
    out = dict(comp)
    out_sections = []
    for sec in comp.get("section") or []:
        entries = sec.get("entry") or []
        kept = [e for e in entries if ref_of(e) in shown]
        if len(kept) == len(entries):
            out_sections.append(sec)
            continue
        code = next((c.get("code") for c in (sec.get("code") or {}).get("coding") or []), "")
        fi, en = SECTIONS.get(str(code), (str(sec.get("title") or ""), ""))
        masked = {k: v for k, v in sec.items() if k not in ("entry", "text")}
        masked["text"] = withheld(fi, en)
        if kept:
            masked["entry"] = kept
        else:
            masked["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": "withheld"}]}
        out_sections.append(masked)
    out["section"] = out_sections
    return out


def rebuild_document(svc: Services, req: FhirRequest) -> FhirResponse:
    """`Composition/{id}/$document` (composition-operation-document.html): the document Bundle
    of the stored Composition, with the current versions of what it references that the caller
    may see; what it may not see is left out (and the sections written from it withheld)."""
    params = Params.of(req, allowed=("persist", "graph"))
    if params.boolean("persist"):
        raise FhirError(
            Category.NOT_SUPPORTED,
            "persist is not supported: $final-summary files the document",
            (common.where("persist"),),
        )
    if params.str("graph"):
        raise FhirError(Category.NOT_SUPPORTED, "graph is not supported", (common.where("graph"),))
    comp = common.read_visible(svc, req, "Composition", str(req.id))
    included = visible(svc, req, referenced(comp), {})
    shown = shown_to_reader(comp, {_key(r) for r in included})
    doc = document(shown, included, req.base, common.new_id(), common.now(req))
    _exported(req, doc)
    return common.ok(doc)


CREATE = {"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}

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
