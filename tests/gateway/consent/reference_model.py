"""An independent, deliberately simple model of what an organisation may see of a client.

It never reads FHIR: it works on the abstract world that `world.py` generates (and renders to
FHIR for the real gateway.consent code), with its own time arithmetic and its own reading of the
rules in issue 3. A disagreement means one of the two (or the renderer) is wrong.

The rules, as plainly as we can state them:
- you hold the record -> yes; a directory entry -> yes; not a plan resource -> no;
- no client -> no; you manage one of the client's consents (not entered in error) -> yes;
- the client's Patient is gone -> no; an audit event -> no; TURVAKIELTO and the Patient -> no;
- the client's active privacy consents given by now: a deny -> no, else a permit -> yes, else no.
A consent says: children that apply overrule their parent (a deny among them wins); a child
inherits whatever it does not state and flips its parent's type unless it states one; a permit
must name you; every stated condition must hold; a root without type is a deny. A caller that
states no purpose meets no purpose-bound permit and every purpose-bound deny.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DIRECTORY = {"Organization", "Practitioner", "PractitionerRole", "Endpoint"}
PLAN = {
    "Patient", "CarePlan", "Goal", "CareTeam", "ServiceRequest", "Task", "Consent",
    "Provenance", "QuestionnaireResponse", "Communication", "DocumentReference", "Composition",
    "AuditEvent",
}  # fmt: skip
# The audit trail and documents (which aggregate records): never shown under a permit.
CUSTODIANS_ONLY = {"AuditEvent", "Composition", "DocumentReference"}
MONTH_START = datetime(2026, 11, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Moment:
    """A point a rule bound names: `day` of November 2026, written as a date, or at 10:00 UTC
    with second precision (rendered either as Z or as 12:00+02:00)."""

    day: int
    form: str  # "date" | "utc" | "offset"

    def first(self) -> datetime:
        start = MONTH_START + timedelta(days=self.day - 1)
        return start if self.form == "date" else start + timedelta(hours=10)

    def last(self) -> datetime:
        width = timedelta(days=1) if self.form == "date" else timedelta(seconds=1)
        return self.first() + width - US


@dataclass
class Prov:
    type: str | None  # "permit" | "deny" | None (flip, or deny at the root)
    conds: dict[str, object] = field(default_factory=dict)  # actor, period, purpose, class
    children: list[Prov] = field(default_factory=list)


@dataclass
class Consent:
    id: str
    org: str  # Consent.organization
    status: str
    privacy: bool
    given: Moment | None
    root: Prov | None


@dataclass
class ClientModel:
    id: str
    stored: bool
    protected: bool
    consents: list[Consent]


@dataclass
class Thing:
    """A resource as the model sees it: its type, its client (or None) and who holds it."""

    type: str
    client: str | None
    holders: set[str]


@dataclass(frozen=True)
class Query:
    org: str
    role: str | None
    purpose: str | None
    now: datetime


def may_see(clients: dict[str, ClientModel], thing: Thing, q: Query) -> bool:
    if q.org in thing.holders:
        return True
    if thing.type in DIRECTORY:
        return True
    if thing.type not in PLAN or thing.client is None:
        return False
    client = clients[thing.client]
    if q.org in managers(client):
        return True
    if not client.stored or thing.type in CUSTODIANS_ONLY:
        return False
    if client.protected and thing.type == "Patient":
        return False
    said = [says(c.root, None, {}, thing, q) for c in in_force(client, q)]
    return "deny" not in said and "permit" in said


def masked(clients: dict[str, ClientModel], thing: Thing, q: Query) -> bool:
    """Shown with the client's identity removed: TURVAKIELTO and the caller holds nothing."""
    if thing.client is None or q.org in thing.holders:
        return False
    client = clients[thing.client]
    return client.stored and client.protected and q.org not in managers(client)


def managers(client: ClientModel) -> set[str]:
    return {c.org for c in client.consents if c.privacy and c.status != "entered-in-error"}


def in_force(client: ClientModel, q: Query) -> list[Consent]:
    return [
        c
        for c in client.consents
        if c.privacy and c.status == "active" and c.root is not None
        and (c.given is None or q.now >= c.given.first())
    ]  # fmt: skip


def says(p: Prov, parent: str | None, inherited: dict, thing: Thing, q: Query) -> str | None:
    kind = p.type or ("deny" if parent in (None, "permit") else "permit")
    conds = {**inherited, **p.conds}
    answers = {says(child, kind, conds, thing, q) for child in p.children} - {None}
    if answers:
        return "deny" if "deny" in answers else "permit"
    if kind == "permit" and "actor" not in conds:
        return None
    return kind if all(holds(n, v, thing, q, kind) for n, v in conds.items()) else None


def holds(name: str, value: object, thing: Thing, q: Query, kind: str = "permit") -> bool:
    if name == "actor":
        return q.org in value or (q.role is not None and q.role in value)  # type: ignore[operator]
    if name == "period":  # one condition: a child's period replaces the parent's whole period
        start, end = value  # type: ignore[misc]
        return (start is None or q.now >= start.first()) and (end is None or q.now <= end.last())
    if name == "purpose":
        if q.purpose is None:  # unstated: a purpose-bound permit does not apply, a deny does
            return kind == "deny"
        return q.purpose in value  # type: ignore[operator]
    if name == "class":
        return thing.type in value  # type: ignore[operator]
    raise AssertionError(name)
