"""A random world of clients, consents and records, as the model sees it and as FHIR.

`build(rng)` returns, for every record, the model's `Thing` and the FHIR dict the gateway sees;
the two are made from the same random choices, never from each other's code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tests.gateway.consent.reference_model import (
    US,
    ClientModel,
    Consent,
    Moment,
    Prov,
    Thing,
)

ORGS = ["o1", "o2", "o3", "o4"]
ROLES = {f"r-{o}": o for o in ORGS}
PURPOSES = ["CAREMGT", "HRESCH", "TREAT"]
CLASSES = ["Patient", "CarePlan", "Goal", "Task", "Consent", "Provenance", "Communication"]
STATUSES = ["active", "inactive", "rejected", "draft", "proposed", "entered-in-error"]
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
IRCP = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
    ]
}
CST = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "CST"}
    ]
}
TURVAKIELTO = {
    "system": "https://fhir-plan-gateway.example/CodeSystem/security-label",
    "code": "turvakielto",
}
CUSTODIAN = "https://fhir-plan-gateway.example/StructureDefinition/custodian"


@dataclass
class World:
    clients: dict[str, ClientModel]
    records: list[tuple[Thing, dict[str, Any]]]  # what may be asked for
    stored: list[dict[str, Any]]  # what the loader holds
    instants: list[datetime]  # every rule bound, and 1 µs either side


def ref(target: str) -> dict[str, str]:
    return {"reference": target}


def moment(rng: random.Random) -> Moment:
    return Moment(rng.randint(1, 10), rng.choice(["date", "utc", "offset"]))


def text(m: Moment) -> str:
    day = f"2026-11-{m.day:02d}"
    return {"date": day, "utc": f"{day}T10:00:00Z", "offset": f"{day}T12:00:00+02:00"}[m.form]


def conditions(rng: random.Random, root: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    if rng.random() < (0.8 if root else 0.35):
        pool = ORGS if rng.random() < 0.8 else ORGS + list(ROLES)
        out["actor"] = set(rng.sample(pool, rng.choice([1, 2, 2, 3])))
    if rng.random() < (0.3 if root else 0.45):
        start, end = rng.choice(
            [(moment(rng), None), (None, moment(rng)), (moment(rng), moment(rng))]
        )
        out["period"] = (start, end)
    if rng.random() < 0.3:
        out["purpose"] = set(rng.sample(PURPOSES, rng.randint(1, 2)))
    if rng.random() < 0.3:
        out["class"] = set(rng.sample(CLASSES, rng.randint(1, 3)))
    return out


def provision(rng: random.Random, depth: int = 0) -> Prov:
    weights = [6, 2, 2] if depth == 0 else [2, 3, 5]
    kind = rng.choices(["permit", "deny", None], weights)[0]
    children = (
        [provision(rng, depth + 1) for _ in range(rng.choice([0, 0, 1, 2]))] if depth < 2 else []
    )
    return Prov(kind, conditions(rng, depth == 0), children)


def provision_fhir(p: Prov) -> dict[str, Any]:
    out: dict[str, Any] = {} if p.type is None else {"type": p.type}
    for name, value in p.conds.items():
        if name == "actor":
            out["actor"] = [
                {
                    "role": IRCP,
                    "reference": ref(
                        f"PractitionerRole/{a}" if a in ROLES else f"Organization/{a}"
                    ),
                }
                for a in sorted(value)  # type: ignore[call-overload]
            ]
        elif name == "period":
            start, end = value  # type: ignore[misc]
            out["period"] = {k: text(m) for k, m in (("start", start), ("end", end)) if m}
        elif name == "purpose":
            out["purpose"] = [{"system": ACT_REASON, "code": c} for c in sorted(value)]  # type: ignore[call-overload]
        else:
            out["class"] = [
                {"system": "http://hl7.org/fhir/resource-types", "code": c} for c in sorted(value)
            ]  # type: ignore[call-overload]
    if p.children:
        out["provision"] = [provision_fhir(c) for c in p.children]
    return out


def consent_fhir(c: Consent, client: str) -> dict[str, Any]:
    scope = "patient-privacy" if c.privacy else "research"
    out: dict[str, Any] = {
        "resourceType": "Consent",
        "id": c.id,
        "status": c.status,
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": scope}
            ]
        },
        "patient": ref(f"Patient/{client}"),
        "organization": [ref(f"Organization/{c.org}")],
    }
    if c.given:
        out["dateTime"] = text(c.given)
    if c.root:
        out["provision"] = provision_fhir(c.root)
    return out


def sharing_root(rng: random.Random, root: Prov | None) -> Prov:
    """`root` as the sharing-consent profile needs it (fhir_profiles, profiles-consent.fsh): a
    provision with a period and a purpose; what it states already is kept."""
    root = root if root is not None else provision(rng)
    root.conds.setdefault("period", (moment(rng), None))
    root.conds.setdefault("purpose", set(rng.sample(PURPOSES, rng.randint(1, 2))))
    return root


def consent(rng: random.Random, cid: str, home: str, conforming: bool) -> Consent:
    org = home if rng.random() < 0.85 else rng.choice(ORGS)
    status = rng.choices(STATUSES, [12, 3, 1, 1, 1, 1])[0]
    privacy = rng.random() < 0.92
    given = moment(rng) if rng.random() < 0.5 else None
    root = provision(rng) if rng.random() < 0.95 else None
    if conforming and privacy:
        root = sharing_root(rng, root)
    return Consent(cid, org, status, privacy, given, root)


def client(rng: random.Random, cid: str, conforming: bool = False) -> ClientModel:
    home = rng.choice(ORGS)
    consents = [
        consent(rng, f"{cid}-c{n}", home, conforming)
        for n in range(rng.choices([0, 1, 2, 3], [1, 4, 4, 2])[0])
    ]
    return ClientModel(cid, rng.random() < 0.95, rng.random() < 0.2, consents)


PAT = {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}


def record(
    rtype: str, rid: str, client: str | None, holders: set[str], **elements: Any
) -> tuple[Thing, dict[str, Any]]:
    return Thing(rtype, client, holders), {"resourceType": rtype, "id": rid, **elements}


def org_ref(org: str) -> dict[str, str]:
    return ref(f"Organization/{org}")


def records_of(rng: random.Random, c: ClientModel) -> list[tuple[Thing, dict[str, Any]]]:
    """One record of each plan type for client `c` (its Consents are records too)."""
    org, role = rng.choice(ORGS), rng.choice(list(ROLES))
    me, subject = c.id, ref(f"Patient/{c.id}")
    goal = rng.choice([None, rng.choice(ORGS)])
    goal_ext = {"extension": [{"url": CUSTODIAN, "valueReference": org_ref(goal)}]} if goal else {}
    requester = ref(f"PractitionerRole/{role}")
    cst_agent = {"type": CST, "who": org_ref(org)}
    out = [
        record("Patient", me, me, {org}, managingOrganization=org_ref(org)),
        record("CarePlan", f"{me}-plan", me, {org}, subject=subject, author=org_ref(org)),
        record("Goal", f"{me}-goal", me, {goal} - {None}, subject=subject, **goal_ext),
        record(
            "CareTeam",
            f"{me}-team",
            me,
            {org},
            subject=subject,
            managingOrganization=[org_ref(org)],
        ),
        record(
            "Task",
            f"{me}-task",
            me,
            {ROLES[role], org},
            requester=requester,
            owner=org_ref(org),
            **{"for": subject},
        ),
        record(
            "ServiceRequest", f"{me}-sr", me, {ROLES[role]}, subject=subject, requester=requester
        ),
        record(
            "Provenance",
            f"{me}-prov",
            me,
            {org},
            target=[ref(f"CarePlan/{me}-plan")],
            agent=[cst_agent],
        ),
        record("Communication", f"{me}-comm", me, {org}, subject=subject, sender=org_ref(org)),
        # A document aggregates records under other rules: custodians and holders only.
        record(
            "DocumentReference", f"{me}-doc", me, {org}, subject=subject, custodian=org_ref(org)
        ),
        record("AuditEvent", f"{me}-audit", me, set(), entity=[{"what": subject, "role": PAT}]),
    ]
    if c.protected and c.stored:
        out[0][1]["meta"] = {"security": [TURVAKIELTO]}
    out += [(Thing("Consent", me, {k.org}), consent_fhir(k, me)) for k in c.consents]
    return out


def loose_records() -> list[tuple[Thing, dict[str, Any]]]:
    """Tied to no client: the directory, a non-plan type, a plan resource without subject."""
    ext = [{"url": CUSTODIAN, "valueReference": org_ref("o2")}]
    return [
        record("Organization", "o1", None, set()),
        record("Basic", "b1", None, {"o2"}, extension=ext),
        record("CarePlan", "orphan", None, {"o3"}, author=org_ref("o3")),
    ]


def bounds_of(clients: dict[str, ClientModel]) -> list[datetime]:
    moments: set[Moment] = set()

    def walk(p: Prov) -> None:
        period = p.conds.get("period")
        if period:
            moments.update(m for m in period if m)  # type: ignore[attr-defined]
        for child in p.children:
            walk(child)

    for c in clients.values():
        for k in c.consents:
            moments.update([k.given] if k.given else [])
            if k.root:
                walk(k.root)
    edges = {t for m in moments for t in (m.first(), m.last())}
    return sorted({t + d for t in edges for d in (-US, timedelta(0), US)})


def build(rng: random.Random, n_clients: int = 200, conforming: bool = False) -> World:
    """A random world. `conforming`: every privacy Consent conforms to sharing-consent, as the
    REST paths require; otherwise the decision rules also meet the shapes the profile refuses
    (no provision, no period, no purpose), which they must still read safely."""
    clients = {f"p{i}": client(rng, f"p{i}", conforming) for i in range(n_clients)}
    records = [r for c in clients.values() for r in records_of(rng, c)] + loose_records()
    roles = [
        {"resourceType": "PractitionerRole", "id": r, "organization": ref(f"Organization/{o}")}
        for r, o in ROLES.items()
    ]
    stored = [
        fhir for thing, fhir in records if thing.type != "Patient" or clients[fhir["id"]].stored
    ]
    return World(clients, records, stored + roles, bounds_of(clients))
