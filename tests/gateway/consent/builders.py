"""The smallest FHIR dicts the consent rules look at, and an in-memory loader.

Only the elements that matter for consent are built; each builder says which in its arguments.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.consent.decisions import decide
from gateway.consent.model import Caller, Client, Decision
from gateway.consent.vocabulary import CONSENT_SCOPE, V3_PARTICIPATION

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CAREMGT = (V3_ACT_REASON, "CAREMGT")
Resource = dict[str, Any]


def ref(text: str) -> dict[str, str]:
    return {"reference": text}


def actor(target: str, role: str = "IRCP") -> Resource:
    """A provision.actor: `target` is "Organization/x" or "PractitionerRole/y"."""
    return {
        "role": {"coding": [{"system": V3_PARTICIPATION, "code": role}]},
        "reference": ref(target),
    }


def provision(type_: str | None, *orgs: str, **conditions: Any) -> Resource:
    """A provision naming `orgs` as recipients (IRCP), plus raw conditions (period=, class_=…)."""
    out: Resource = {} if type_ is None else {"type": type_}
    if orgs:
        out["actor"] = [actor(o if "/" in o else f"Organization/{o}") for o in orgs]
    for name, value in conditions.items():
        out[name.rstrip("_")] = value
    return out


def classes(*types: str) -> list[dict[str, str]]:
    return [{"system": "http://hl7.org/fhir/resource-types", "code": t} for t in types]


def purposes(*codes: str) -> list[dict[str, str]]:
    return [{"system": V3_ACT_REASON, "code": c} for c in codes]


def sharing(type_: str | None, *orgs: str, **conditions: Any) -> Resource:
    """A root provision as the sharing-consent profile needs it (profiles-consent.fsh): the
    provision() of `orgs` with a period (from 2026-01-01) and purpose CAREMGT unless stated,
    so a permit reaches only callers that state X-Purpose-Of-Use: CAREMGT."""
    conditions.setdefault("period", {"start": "2026-01-01"})
    conditions.setdefault("purpose", purposes("CAREMGT"))
    return provision(type_, *orgs, **conditions)


def consent(
    prov: Resource | None,
    id: str = "c1",
    client: str = "p1",
    status: str = "active",
    custodian: str = "org-cust",
    **extra: Any,
) -> Resource:
    """An IHE PCF privacy consent of `client`, managed by `custodian` (category and policyRule
    as sharing-consent needs them; a stored one also needs a sharing() provision)."""
    out: Resource = {
        "resourceType": "Consent",
        "id": id,
        "status": status,
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": ref(f"Patient/{client}"),
        "organization": [ref(f"Organization/{custodian}")],
        "policyRule": {"coding": [{"system": V3_ACT_CODE, "code": "OPTIN"}]},
        **extra,
    }
    if prov is not None:
        out["provision"] = prov
    return out


def patient(id: str = "p1", labels: Iterable[tuple[str, str]] = (), managing: str = "") -> Resource:
    out: Resource = {"resourceType": "Patient", "id": id}
    if labels:
        out["meta"] = {"security": [{"system": s, "code": c} for s, c in labels]}
    if managing:
        out["managingOrganization"] = ref(f"Organization/{managing}")
    return out


def task(id: str = "t1", client: str = "p1", requester: str = "", owner: str = "") -> Resource:
    out: Resource = {"resourceType": "Task", "id": id, "for": ref(f"Patient/{client}")}
    if requester:
        out["requester"] = ref(requester)
    if owner:
        out["owner"] = ref(owner)
    return out


def plan(rtype: str = "CarePlan", id: str = "x1", client: str = "p1") -> Resource:
    return {"resourceType": rtype, "id": id, "subject": ref(f"Patient/{client}")}


def decide_one(
    org: str,
    resource: Mapping[str, Any],
    consents: Iterable[Resource] = (),
    pat: Resource | None = None,
    now: datetime = NOW,
    purpose: tuple[str, str] | None = None,
    holders: frozenset[str] = frozenset(),
    role: str | None = None,
) -> Decision:
    """decide() for one client "p1" (or the given Patient) without a context."""
    pat = pat if pat is not None else patient()
    client = Client(str(pat["id"]), pat, tuple(consents))
    return decide(Caller(org, role, purpose), resource, [client], holders, now)


class DictLoader:
    """A ConsentLoader over a dict of resources, counting its calls."""

    def __init__(self, resources: Iterable[Mapping[str, Any]]) -> None:
        self.store = {(r["resourceType"], r["id"]): r for r in resources}
        self.reads: list[list[tuple[str, str]]] = []
        self.consent_calls: list[list[str]] = []

    def read(self, keys: Collection[tuple[str, str]]) -> Mapping[tuple[str, str], Mapping]:
        self.reads.append(list(keys))
        return {k: self.store[k] for k in keys if k in self.store}

    def consents(self, client_ids: Collection[str]) -> list[Mapping[str, Any]]:
        self.consent_calls.append(list(client_ids))
        return [
            r
            for (t, _), r in self.store.items()
            if t == "Consent" and r.get("patient", {}).get("reference", "")[8:] in client_ids
        ]
