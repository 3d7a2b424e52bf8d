"""May this organisation see this resource? The pure consent rules, no I/O, no clock.

Rules, in order (issue 3, "Consent decisions and enforcement"):

1. The organisation that holds the record sees it (RECORD_HOLDER): the custodian extension
   (vocabulary.CUSTODIAN_EXTENSION, any type) or the type's HOLDERS paths; a PractitionerRole
   counts as its organization.
2. Every organisation sees the network directory (DIRECTORY): Organization, Practitioner,
   PractitionerRole, Endpoint.
3. Any other type outside the plan table (CLIENT_LINKS) is shown to record holders only.
4. A plan resource tied to no resolvable client is shown to record holders only (NO_CLIENT).
5. For every client the resource is tied to (all must permit):
   a. the client's custodians see it (CLIENT_CUSTODIAN): the organisations in Consent.organization
      of the client's patient-privacy Consents (any status but entered-in-error): they manage the
      consent, so they hold the client's process (IHE PCF: the custodian grants, actors receive);
   b. a client whose Patient is not stored: nothing for others (UNKNOWN_CLIENT);
   b2. the audit trail and documents (CUSTODIAN_ONLY_TYPES): nothing for others, whatever the
       Consents say (AUDIT_TRAIL; DOCUMENT for Composition and DocumentReference, which aggregate
       records under other rules: partners get them through Composition/$document);
   c. TURVAKIELTO (hooks.will_see also masks): the Patient resource itself is never shown to
      others, even with consent (PROTECTED_CLIENT);
   d. the client's active patient-privacy Consents (R4 consent.html; provisions.py reads the tree)
      from Consent.dateTime on: any deny wins (CONSENT_DENY, or PROHIBITION when it names no actor);
      else a permit naming the caller (CONSENT_PERMIT); else NOT_APPLICABLE (NO_CONSENT).

A Consent that is inactive, rejected, draft, proposed or entered-in-error decides nothing: an
inactive permit is a revoked permit. Consents are taken in id order so the deciding id is stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.consent import provisions
from gateway.consent.conditions import Access
from gateway.consent.model import Caller, Client, Decision, Reason, Verdict
from gateway.consent.periods import Unreadable, instant_us, not_before
from gateway.consent.records import has_coding, is_protected, reference_key
from gateway.consent.vocabulary import (
    CUSTODIAN_ONLY_TYPES,
    DECIDING_STATUS,
    DIRECTORY_TYPES,
    DOCUMENT_TYPES,
    NOT_CUSTODY_STATUSES,
    PLAN_TYPES,
    PRIVACY_SCOPE,
)


def decide(
    caller: Caller,
    resource: Mapping[str, Any],
    clients: Sequence[Client],
    holders: frozenset[str],
    now: datetime,
) -> Decision:
    """The decision for `caller` reading `resource` (its `clients` and `holders` resolved)."""
    rtype = str(resource.get("resourceType"))
    ids = frozenset(c.id for c in clients)
    if caller.organization in holders:
        return Decision(Verdict.PERMIT, Reason.RECORD_HOLDER, clients=ids)
    if rtype in DIRECTORY_TYPES:
        return Decision(Verdict.PERMIT, Reason.DIRECTORY, clients=ids)
    if rtype not in PLAN_TYPES:
        return Decision(Verdict.DENY, Reason.NOT_PLAN_RESOURCE, clients=ids)
    if not clients:
        return Decision(Verdict.DENY, Reason.NO_CLIENT)
    access = _access(caller, resource, now)
    decisions = [_for_client(caller, rtype, client, access) for client in clients]
    for verdict in (Verdict.DENY, Verdict.NOT_APPLICABLE):
        for d in decisions:
            if d.verdict is verdict:
                return Decision(d.verdict, d.reason, d.consent, d.client, ids)
    first = decisions[0]
    return Decision(first.verdict, first.reason, first.consent, first.client, ids)


def _access(caller: Caller, resource: Mapping[str, Any], now: datetime) -> Access:
    actors = {("Organization", caller.organization)}
    if caller.role:
        actors.add(("PractitionerRole", caller.role))
    profiles = (resource.get("meta") or {}).get("profile") or []
    key = (str(resource.get("resourceType")), str(resource.get("id")))
    return Access(frozenset(actors), caller.purpose, key, frozenset(profiles), instant_us(now))


def _for_client(caller: Caller, rtype: str, client: Client, access: Access) -> Decision:
    if caller.organization in client_custodians(client):
        return Decision(Verdict.PERMIT, Reason.CLIENT_CUSTODIAN, client=client.id)
    if client.patient is None:
        return Decision(Verdict.DENY, Reason.UNKNOWN_CLIENT, client=client.id)
    if rtype in CUSTODIAN_ONLY_TYPES:
        reason = Reason.DOCUMENT if rtype in DOCUMENT_TYPES else Reason.AUDIT_TRAIL
        return Decision(Verdict.DENY, reason, client=client.id)
    if rtype == "Patient" and is_protected(client.patient):
        return Decision(Verdict.DENY, Reason.PROTECTED_CLIENT, client=client.id)
    return _by_consents(client, access)


def _by_consents(client: Client, access: Access) -> Decision:
    permit: Decision | None = None
    for consent in sorted(privacy_consents(client), key=lambda c: str(c.get("id"))):
        if consent.get("status") != DECIDING_STATUS:
            continue
        early = _too_early(consent, access)
        if early is True:
            continue
        outcome = provisions.evaluate(consent.get("provision"), access, early is None)
        cid = str(consent.get("id"))
        if outcome and outcome.type == "deny":
            reason = Reason.PROHIBITION if outcome.everyone else Reason.CONSENT_DENY
            return Decision(Verdict.DENY, reason, cid, client.id)
        if outcome and permit is None:
            permit = Decision(Verdict.PERMIT, Reason.CONSENT_PERMIT, cid, client.id)
    return permit or Decision(Verdict.NOT_APPLICABLE, Reason.NO_CONSENT, client=client.id)


def _too_early(consent: Mapping[str, Any], access: Access) -> bool | None:
    """Consent.dateTime: the consent holds from then on. None (unknown) if unreadable."""
    try:
        return access.now_us < not_before(consent.get("dateTime"))
    except Unreadable:
        return None


def privacy_consents(client: Client) -> list[Mapping[str, Any]]:
    """The client's patient-privacy Consents (Consent.patient must be this client)."""
    return [
        c
        for c in client.consents
        if has_coding(c.get("scope"), PRIVACY_SCOPE)
        and reference_key(c.get("patient")) == ("Patient", client.id)
    ]


def client_custodians(client: Client) -> frozenset[str]:
    """Organisations managing the client's consent (Consent.organization): the process holders."""
    orgs: set[str] = set()
    for consent in privacy_consents(client):
        if consent.get("status") in NOT_CUSTODY_STATUSES:
            continue
        for ref in consent.get("organization") or []:
            key = reference_key(ref)
            if key and key[0] == "Organization":
                orgs.add(key[1])
    return frozenset(orgs)
