"""Deterministic benchmark resources: Patients, their CareTeams and their CarePlans.

Resource `i` of each kind is always the same, so the load, the read phase's random ids and the
search phase's patients agree without passing lists around. Every value is synthetic: HETUs use
the 9xx test range, names are invented. Never put real personal data here. The Patients and
CareTeams conform to our profiles (fi-client, client-network), as the gateway checks on write.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.consent.vocabulary import CANONICAL, CUSTODIAN_EXTENSION

PLANS_PER_PATIENT = 4
BUNDLE_GROUPS = 16  # 16 x (Patient, CareTeam, 4 CarePlans) = 96 entries per transaction
HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
BENCH_SYSTEM = "https://example.org/fhir-plan-gateway/bench"
# Every record is held by the organisation the benchmark acts as (bench/auth.py), named as the
# gateway itself stamps a creator's records, so data loaded around the API (the Repository
# fallback) is visible to it exactly like data loaded through the API.
HOLDER = "org-sote-keskus"
HELD = [{"url": CUSTODIAN_EXTENSION, "valueReference": {"reference": f"Organization/{HOLDER}"}}]


def patient_id(n: int) -> str:
    return f"pat-{n:07d}"


def care_team_id(n: int) -> str:
    return f"ct-{n:07d}"


def care_plan_id(n: int) -> str:
    return f"cp-{n:07d}"


def patients_for(care_plans: int) -> int:
    return -(-care_plans // PLANS_PER_PATIENT)


def _hetu(n: int) -> str:
    day, month, year, serial = 1 + n % 28, 1 + n // 28 % 12, 40 + n % 60, 900 + n % 100
    digits = f"{day:02d}{month:02d}{year:02d}"
    return f"{digits}-{serial}{HETU_CHECK[int(digits + str(serial)) % 31]}"


def patient(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id(n),
        "extension": list(HELD),
        "identifier": [{"system": "urn:oid:1.2.246.21", "value": _hetu(n)}],
        "name": [{"family": f"Testinen{n % 97}", "given": ["Asiakas", f"B{n % 13}"]}],
        "gender": ("female", "male", "other")[n % 3],
        "birthDate": f"19{40 + n % 60}-{1 + n // 28 % 12:02d}-{1 + n % 28:02d}",
        "address": [{"city": ("Helsinki", "Tampere", "Oulu", "Turku")[n % 4], "country": "FI"}],
    }


def care_team(n: int, subject: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "id": care_team_id(n),
        "extension": list(HELD),
        "status": "active",
        "category": [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}],
        "name": "Asiakkaan verkosto / client's network",
        "subject": {"reference": subject or f"Patient/{patient_id(n)}"},
        "period": {"start": "2025-01-15"},
        "participant": [
            {
                "role": [_role("coordinator-role", "asiakasvastaava", "named coordinator")],
                "member": {
                    "reference": "PractitionerRole/role-terveydenhoitaja",
                    "display": f"Terveydenhoitaja {n % 50}",
                },
                "period": {"start": "2025-01-15"},
            },
            {
                "role": [_role("professional-role", "sosiaalityontekija", "social worker")],
                "member": {
                    "reference": "PractitionerRole/role-sosiaalityontekija",
                    "display": "Sosiaalityö",
                },
                "period": {"start": "2025-02-01"},
            },
        ],
        "managingOrganization": [{"reference": f"Organization/{HOLDER}"}],
    }


def _role(code_system: str, code: str, english: str) -> dict[str, Any]:
    coding = {"system": f"{CANONICAL}/CodeSystem/{code_system}", "code": code}
    return {"coding": [coding], "text": f"{code} / {english}"}


def _activity(k: int, status: str) -> dict[str, Any]:
    return {
        "detail": {
            "kind": "ServiceRequest",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "410606002"}]},
            "status": status,
            "description": f"Verkoston tehtävä {k} / network responsibility {k}",
            "scheduledPeriod": {"start": f"2025-0{1 + k}-01", "end": f"2025-1{k}-01"},
        }
    }


def care_plan(n: int, subject: str | None = None, team: str | None = None) -> dict[str, Any]:
    owner = n // PLANS_PER_PATIENT
    return {
        "resourceType": "CarePlan",
        "id": care_plan_id(n),
        "extension": list(HELD),
        "identifier": [{"system": f"{BENCH_SYSTEM}/careplan", "value": str(n)}],
        "status": ("active", "active", "draft", "completed")[n % 4],
        "intent": "plan",
        "category": [
            {"coding": [{"system": "http://snomed.info/sct", "code": "734163000"}]},
        ],
        "title": "Asiakassuunnitelma / shared client plan",
        "description": "Tavoitteena paluu työelämään osa-aikaisesti syksyllä.",
        "subject": {"reference": subject or f"Patient/{patient_id(owner)}"},
        "period": {"start": f"2025-{1 + n % 12:02d}-01", "end": "2026-06-30"},
        "created": "2025-01-15T09:30:00+02:00",
        "careTeam": [{"reference": team or f"CareTeam/{care_team_id(owner)}"}],
        "activity": [_activity(1, "in-progress"), _activity(2, "scheduled")],
        "note": [{"text": "Palataan tähän tarkistuspäivänä / review date agreed."}],
    }


def group(p: int, care_plans: int) -> list[dict[str, Any]]:
    """Patient `p`, its CareTeam and the CarePlans that point to them (ids as loaded)."""
    first = p * PLANS_PER_PATIENT
    plans = range(first, min(first + PLANS_PER_PATIENT, care_plans))
    return [patient(p), care_team(p), *(care_plan(n) for n in plans)]


def put_bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction that stores `resources` under their own ids (update-as-create)."""
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['resourceType'] + r['id'])}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def post_bundle(groups: int, seed: int) -> dict[str, Any]:
    """A transaction of `groups` x (Patient, CareTeam, CarePlans) linked by urn:uuid fullUrls."""
    entries = []
    for g in range(groups):
        n = seed * groups + g
        pat, team = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        members = [(pat, patient(n)), (team, care_team(n, pat))]
        members += [
            (f"urn:uuid:{uuid.uuid4()}", care_plan(n * PLANS_PER_PATIENT + k, pat, team))
            for k in range(PLANS_PER_PATIENT)
        ]
        for full_url, r in members:
            r.pop("id")
            entries.append(
                {
                    "fullUrl": full_url,
                    "resource": r,
                    "request": {"method": "POST", "url": r["resourceType"]},
                }
            )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def create_body() -> dict[str, Any]:
    """The CarePlan POSTed in the create phase (no id: the server assigns one)."""
    body = care_plan(0)
    body.pop("id")
    return body
