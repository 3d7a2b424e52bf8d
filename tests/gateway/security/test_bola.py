"""The BOLA matrix (issue 3, "Tests and figures"): every organisation's token against every other
organisation's ids on every interaction -> 0 successes.

Four organisations (registered for this test with every scope, so that only the disclosure gate
and the write rules stand between them, never a missing scope) each create their own client and
records over HTTP: Patient, Consent (naming only themselves), CarePlan, Task, Goal, CareTeam,
ServiceRequest, Communication, DocumentReference and QuestionnaireResponse. No organisation has
any consent for another's client. Then each organisation tries each interaction on each of the
others' ids:

- reads (read, vread, instance history, and the GET entries of batch/transaction) answer 404
  exactly as for an id that was never stored (not 403: existence must not leak);
- searches (`_id`, `_summary=count`, `_include`, `_revinclude`, chains, `_has`) answer as if the
  resource did not exist: no entry, a total of 0, a `_has`/chain probe equal to one on a
  missing id;
- writes (update, patch, conditional update, and PUT entries) answer 403 or 404; deletes
  (plain, conditional, DELETE entries) answer 204 as a no-op, or 403/404;
- a transaction whose conditional reference names the hidden resource fails exactly as one
  naming a missing id does (it must not resolve to it).

Afterwards every stored resource is byte-identical to before (same version, same bytes). The test
is parametrised by interaction; each failure names attacker, victim organisation, interaction and
type (`org-bola-2 -> org-bola-1 CarePlan/bola-1-careplan: read: 200`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.fhir_api.context import FhirRequest, Services
from gateway.fhir_api.interactions import transaction
from gateway.settings import ORGANISATIONS_DIR, Settings
from tests.helpers import bearer, token_for

Json = dict[str, Any]
ORGS = [f"org-bola-{n}" for n in range(1, 5)]
BASE = "http://testserver/fhir"
IRCP = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
TYPES = [
    "Patient", "Consent", "CarePlan", "Task", "Goal", "CareTeam", "ServiceRequest",
    "Communication", "DocumentReference", "QuestionnaireResponse",
]  # fmt: skip
# A reference parameter of each type that points at the owner's Organization (visible to all as
# the directory): the `_has` probe `Organization?_id=<owner>&_has:<Type>:<param>:_id=<id>`.
# Goal has no parameter that can name an Organization here (subject is its client), so Goal's
# `_has` probe goes through the Basic probe (below) instead.
HAS_PARAM = {
    "Patient": "organization",
    "Consent": "organization",
    "CarePlan": "performer",
    "Task": "owner",
    "CareTeam": "participant",
    "ServiceRequest": "requester",
    "Communication": "sender",
    "DocumentReference": "custodian",
    "QuestionnaireResponse": "author",
}
WRITE_REFUSED = {403, 404}
DELETE_NOOP = {204, 403, 404}


def short(org: str) -> str:
    return org.removeprefix("org-bola-")


def rid(org: str, rtype: str) -> str:
    return f"bola-{short(org)}-{rtype.lower()}"


def records(org: str) -> list[Json]:
    """What `org` creates for its own client (in this order)."""
    me = {"reference": f"Organization/{org}"}
    patient = {"reference": f"Patient/{rid(org, 'Patient')}"}
    ids = {t: rid(org, t) for t in TYPES}
    return [
        {
            "resourceType": "Patient",
            "id": ids["Patient"],
            "name": [{"family": f"Bola{short(org)}", "given": ["Testi"]}],
            "managingOrganization": me,
        },
        {
            "resourceType": "Consent",
            "id": ids["Consent"],
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": patient,
            "organization": [me],
            "policyRule": {"coding": [{"system": V3_ACT_CODE, "code": "OPTIN"}]},
            "provision": {  # shared with nobody but the organisation itself
                "type": "permit",
                "period": {"start": "2026-01-01"},
                "actor": [
                    {"role": {"coding": [{"system": IRCP, "code": "IRCP"}]}, "reference": me}
                ],
                "purpose": [{"system": V3_ACT_REASON, "code": "CAREMGT"}],
            },
        },
        {
            "resourceType": "CarePlan",
            "id": ids["CarePlan"],
            "status": "active",
            "intent": "plan",
            "subject": patient,
            "author": me,
            "activity": [{"detail": {"status": "scheduled", "performer": [me]}}],
        },
        {
            "resourceType": "Task",
            "id": ids["Task"],
            "status": "requested",
            "intent": "order",
            "for": patient,
            "requester": me,
            "owner": me,
        },
        {
            "resourceType": "Goal",
            "id": ids["Goal"],
            "lifecycleStatus": "active",
            "description": {"text": "Tavoite"},
            "subject": patient,
        },
        {
            "resourceType": "CareTeam",
            "id": ids["CareTeam"],
            "status": "active",
            "subject": patient,
            "managingOrganization": [me],
            "participant": [{"member": me}],
        },
        {
            "resourceType": "ServiceRequest",
            "id": ids["ServiceRequest"],
            "status": "active",
            "intent": "order",
            "subject": patient,
            "requester": me,
        },
        {
            "resourceType": "Communication",
            "id": ids["Communication"],
            "status": "completed",
            "subject": patient,
            "sender": me,
        },
        {
            "resourceType": "DocumentReference",
            "id": ids["DocumentReference"],
            "status": "current",
            "subject": patient,
            "custodian": me,
            "content": [{"attachment": {"contentType": "text/plain", "data": "dGVzdGk="}}],
        },
        {
            "resourceType": "QuestionnaireResponse",
            "id": ids["QuestionnaireResponse"],
            "status": "completed",
            "subject": patient,
            "author": me,
        },
    ]


def directory() -> list[Json]:
    out: list[Json] = []
    for org in ORGS:
        out.append({"resourceType": "Organization", "id": org, "name": f"Bola {short(org)}"})
        out.append(
            {
                "resourceType": "PractitionerRole",
                "id": role(org),
                "organization": {"reference": f"Organization/{org}"},
            }
        )
    return out


def role(org: str) -> str:
    return f"role-bola-{short(org)}"


def probe_id(attacker: str, rtype: str, victim: str) -> str:
    return f"probe-{short(attacker)}-{short(victim)}-{rtype.lower()}"


def probe(attacker: str, target: str, id: str | None = None) -> Json:
    """A Basic of the attacker's own whose subject names `target` (any type): the way in for
    `_include` and chains onto a resource the attacker cannot see."""
    out: Json = {
        "resourceType": "Basic",
        "code": {"text": "koetin"},
        "subject": {"reference": target},
    }
    if id:
        out["id"] = id
    return out


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    orgs = tmp_path / "organisations"
    orgs.mkdir()
    jwks = json.loads((ORGANISATIONS_DIR / "sote-keskus.json").read_text())["jwks"]
    for org in ORGS:
        doc = {"organization": org, "client_id": f"client-{org}", "name": org}
        doc |= {"scopes": ["system/*.cruds"], "jwks": jwks}
        (orgs / f"{org}.json").write_text(json.dumps(doc))
    return Settings(
        database_url=database_url,
        token_key_file=str(tmp_path / "token-key.json"),
        organisations_dir=str(orgs),
    )


class Matrix:
    def __init__(self, client: TestClient, services: Services, interaction: str) -> None:
        self.client, self.services, self.interaction = client, services, interaction
        self.headers = {org: bearer(token_for(services, org)) for org in ORGS}
        self.failures: list[str] = []
        self.missing: dict[tuple[str, str], Any] = {}

    def fail(self, attacker: str, victim: str, rtype: str, what: str) -> None:
        target = f"{rtype}/{rid(victim, rtype)}"
        self.failures.append(f"{attacker} -> {victim} {target}: {self.interaction}: {what}")

    def get(self, org: str, url: str) -> httpx.Response:
        return self.client.get(url, headers=self.headers[org])

    def send(self, org: str, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.client.request(
            method, url, headers=self.headers[org] | kw.pop("headers", {}), **kw
        )

    def same_as_missing(self, attacker: str, url: str, missing_url: str) -> tuple[int, Any]:
        """The answer a never-stored id gets (normalised), cached per url shape."""
        if (attacker, missing_url) not in self.missing:
            r = self.get(attacker, missing_url)
            self.missing[(attacker, missing_url)] = (r.status_code, normal(r, missing_url))
        return self.missing[(attacker, missing_url)]


def normal(r: httpx.Response | Json | None, url: str) -> Any:
    """An answer with the id it names (and entry numbers) blanked, for comparison."""
    doc = r.json() if isinstance(r, httpx.Response) and r.content else r
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k not in ("id", "meta", "link")}
    ids = re.findall(r"(?:bola-\d-[a-z]+|zz-missing)", url)
    text = json.dumps(doc, sort_keys=True)
    for i in ids:
        text = text.replace(i, "<ID>")
    return json.loads(re.sub(r"entry\[\d+\]", "entry[#]", text))


def snapshot(services: Services) -> dict[tuple[str, str], tuple[int, bytes, bool]]:
    """Every stored resource's current (version, bytes, deleted), read without a caller."""
    keys = [(t, rid(org, t)) for org in ORGS for t in TYPES]
    with services.repo.reader() as session:
        out = {}
        for key in keys:
            sv = session.current(*key)
            assert sv is not None, key
            out[key] = (sv.version, bytes(sv.body), sv.deleted)
        return out


def matches(bundle: Json) -> list[tuple[str, str]]:
    return [
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle.get("entry", [])
        if (e.get("search") or {}).get("mode", "match") == "match" and "resource" in e
    ]


def everything(bundle: Json) -> Iterator[str]:
    for e in bundle.get("entry", []):
        if "resource" in e:
            yield f"{e['resource']['resourceType']}/{e['resource'].get('id')}"
        if e.get("fullUrl"):
            yield "/".join(e["fullUrl"].split("/")[-2:])


# -- the interactions --------------------------------------------------------------------------
Attack = Callable[[Matrix, str, str, str], None]  # (matrix, attacker, victim, type)


def _hidden_read(suffix: str) -> Attack:
    def attack(m: Matrix, a: str, v: str, t: str) -> None:
        url = f"/fhir/{t}/{rid(v, t)}{suffix}"
        r = m.get(a, url)
        want = m.same_as_missing(a, url, f"/fhir/{t}/zz-missing{suffix}")
        if (r.status_code, normal(r, url)) != want:
            m.fail(a, v, t, f"{r.status_code} {r.text[:200]} (a missing id: {want[0]})")

    return attack


def _changed(m: Matrix, v: str, t: str) -> Json:
    with m.services.repo.reader() as session:
        sv = session.current(t, rid(v, t))
        assert sv is not None
        body = json.loads(sv.body)
    body.pop("meta", None)
    body["language"] = "sv"
    return body


def update(m: Matrix, a: str, v: str, t: str) -> None:
    r = m.send(a, "PUT", f"/fhir/{t}/{rid(v, t)}", json=_changed(m, v, t))
    if r.status_code not in WRITE_REFUSED:
        m.fail(a, v, t, f"{r.status_code} {r.text[:200]}")


def patch(m: Matrix, a: str, v: str, t: str) -> None:
    ops = [{"op": "add", "path": "/language", "value": "sv"}]
    r = m.send(
        a,
        "PATCH",
        f"/fhir/{t}/{rid(v, t)}",
        content=json.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    if r.status_code not in WRITE_REFUSED:
        m.fail(a, v, t, f"{r.status_code} {r.text[:200]}")


def delete(m: Matrix, a: str, v: str, t: str) -> None:
    r = m.send(a, "DELETE", f"/fhir/{t}/{rid(v, t)}")
    if r.status_code not in DELETE_NOOP:
        m.fail(a, v, t, f"{r.status_code} {r.text[:200]}")


def conditional_update(m: Matrix, a: str, v: str, t: str) -> None:
    r = m.send(a, "PUT", f"/fhir/{t}?_id={rid(v, t)}", json=_changed(m, v, t))
    if not 400 <= r.status_code < 500:
        m.fail(a, v, t, f"{r.status_code} {r.text[:200]}")


def conditional_delete(m: Matrix, a: str, v: str, t: str) -> None:
    r = m.send(a, "DELETE", f"/fhir/{t}?_id={rid(v, t)}")
    if r.status_code not in DELETE_NOOP:
        m.fail(a, v, t, f"{r.status_code} {r.text[:200]}")


def search_id(m: Matrix, a: str, v: str, t: str) -> None:
    for extra in ("", "&_summary=count", "&_total=accurate"):
        r = m.get(a, f"/fhir/{t}?_id={rid(v, t)}{extra}")
        body = r.json()
        if r.status_code != 200 or matches(body) or body.get("total", 0) != 0:
            m.fail(
                a, v, t, f"?_id{extra}: {r.status_code} total {body.get('total')} {matches(body)}"
            )


def include(m: Matrix, a: str, v: str, t: str) -> None:
    pid = probe_id(a, t, v)
    for spec in ("Basic:subject", f"Basic:subject:{t}", "*"):
        r = m.get(a, f"/fhir/Basic?_id={pid}&_include={spec}")
        seen = set(everything(r.json()))
        if r.status_code != 200 or seen != {f"Basic/{pid}"}:
            m.fail(a, v, t, f"_include={spec}: {r.status_code} {sorted(seen)}")
    r = m.get(a, f"/fhir/Basic?_id={pid}&_include=Basic:subject&_include:iterate=*")
    if set(everything(r.json())) != {f"Basic/{pid}"}:
        m.fail(a, v, t, f"_include:iterate: {sorted(everything(r.json()))}")


def revinclude(m: Matrix, a: str, v: str, t: str) -> None:
    for spec in (f"{t}:*", "*"):
        for iterate in ("", ":iterate"):
            r = m.get(a, f"/fhir/Organization?_id={v}&_revinclude{iterate}={spec}")
            seen = set(everything(r.json()))
            # Only the directory (the Organization and its PractitionerRole) may come back.
            if r.status_code != 200 or not seen <= {
                f"Organization/{v}",
                f"PractitionerRole/{role(v)}",
            }:
                m.fail(a, v, t, f"_revinclude{iterate}={spec}: {r.status_code} {sorted(seen)}")


def chain(m: Matrix, a: str, v: str, t: str) -> None:
    """Chains onto the hidden resource from the attacker's own probe answer as for a missing id;
    a chain onto the owner's Organization finds none of its hidden records."""
    pid = probe_id(a, t, v)
    for name, value in (("_id", rid(v, t)), ("_lastUpdated", "gt2000-01-01")):
        r = m.get(a, f"/fhir/Basic?_id={pid}&subject:{t}.{name}={value}")
        if r.status_code != 200 or matches(r.json()) or r.json().get("total", 0) != 0:
            m.fail(a, v, t, f"subject:{t}.{name}: {r.status_code} {matches(r.json())}")
    if t in HAS_PARAM:
        r = m.get(a, f"/fhir/{t}?{HAS_PARAM[t]}:Organization._id={v}")
        if r.status_code != 200 or matches(r.json()) or r.json().get("total", 0) != 0:
            m.fail(a, v, t, f"{HAS_PARAM[t]}:Organization._id: {r.status_code} {matches(r.json())}")


def has(m: Matrix, a: str, v: str, t: str) -> None:
    if t in HAS_PARAM:
        for value in (rid(v, t), "zz-missing"):
            r = m.get(a, f"/fhir/Organization?_id={v}&_has:{t}:{HAS_PARAM[t]}:_id={value}")
            if r.status_code != 200 or matches(r.json()):
                m.fail(a, v, t, f"_has:{t}:{HAS_PARAM[t]}:_id={value}: {matches(r.json())}")
    # Through the attacker's own probe: a Basic that names the hidden resource is found by
    # `_has` only as if that resource did not exist.
    pid = probe_id(a, t, v)
    r = m.get(a, f"/fhir/{t}?_has:Basic:subject:_id={pid}")
    if r.status_code != 200 or matches(r.json()):
        m.fail(a, v, t, f"{t}?_has:Basic:subject: {r.status_code} {matches(r.json())}")


def _bundle(kind: str, entries: list[Json]) -> Json:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _entries(m: Matrix, v: str, t: str) -> list[tuple[str, Json, set[int] | None]]:
    """(label, entry, acceptable statuses; None = same as for a missing id)."""
    id = rid(v, t)
    return [
        ("GET read", {"request": {"method": "GET", "url": f"{t}/{id}"}}, None),
        ("GET vread", {"request": {"method": "GET", "url": f"{t}/{id}/_history/1"}}, None),
        ("GET history", {"request": {"method": "GET", "url": f"{t}/{id}/_history"}}, None),
        ("GET ?_id", {"request": {"method": "GET", "url": f"{t}?_id={id}"}}, None),
        (
            "PUT",
            {"resource": _changed(m, v, t), "request": {"method": "PUT", "url": f"{t}/{id}"}},
            WRITE_REFUSED,
        ),
        (
            "PUT ?_id",
            {"resource": _changed(m, v, t), "request": {"method": "PUT", "url": f"{t}?_id={id}"}},
            set(range(400, 500)),
        ),
        ("DELETE", {"request": {"method": "DELETE", "url": f"{t}/{id}"}}, DELETE_NOOP),
        ("DELETE ?_id", {"request": {"method": "DELETE", "url": f"{t}?_id={id}"}}, DELETE_NOOP),
    ]


def _missing_entry(entry: Json, t: str, id: str) -> Json:
    text = json.dumps(entry).replace(f"{t}/{id}", f"{t}/zz-missing").replace(id, "zz-missing")
    return json.loads(text)


def _status(entry: Json) -> int:
    return int(str((entry.get("response") or {}).get("status", "0")).split()[0])


def batch(m: Matrix, a: str, v: str, t: str) -> None:
    id = rid(v, t)
    planned = _entries(m, v, t)
    r = m.send(a, "POST", "/fhir", json=_bundle("batch", [e for _, e, _ in planned]))
    if r.status_code != 200:
        m.fail(a, v, t, f"batch: {r.status_code} {r.text[:200]}")
        return
    got = r.json()["entry"]
    for (label, entry, ok), answer in zip(planned, got, strict=True):
        leaked = [x for x in everything({"entry": [answer]}) if id in x]
        leaked += [x for x in everything(answer.get("resource") or {}) if id in x]
        if leaked:
            m.fail(a, v, t, f"batch {label}: shows {leaked}")
        if ok is not None:
            if _status(answer) not in ok:
                m.fail(a, v, t, f"batch {label}: {answer.get('response')}")
            continue
        missing = m.send(
            a, "POST", "/fhir", json=_bundle("batch", [_missing_entry(entry, t, id)])
        ).json()["entry"][0]
        if (_status(answer), normal(answer.get("response"), id)) != (
            _status(missing),
            normal(missing.get("response"), "zz-missing"),
        ) or matches(answer.get("resource") or {}):
            m.fail(a, v, t, f"batch {label}: {answer} (a missing id: {missing})")


def transaction_entries(m: Matrix, a: str, v: str, t: str) -> None:
    """One transaction per entry (all or nothing: each must fail, or succeed as a no-op, on its
    own); the GETs fail exactly as on a missing id."""
    id = rid(v, t)
    for label, entry, ok in _entries(m, v, t):
        r = m.send(a, "POST", "/fhir", json=_bundle("transaction", [entry]))
        if any(id in x for x in everything(r.json()) if r.status_code == 200):
            m.fail(a, v, t, f"transaction {label}: shows the resource")
        if ok is not None:
            status = _status(r.json()["entry"][0]) if r.status_code == 200 else r.status_code
            if status not in ok:
                m.fail(a, v, t, f"transaction {label}: {r.status_code} {r.text[:200]}")
            continue
        missing = m.send(
            a, "POST", "/fhir", json=_bundle("transaction", [_missing_entry(entry, t, id)])
        )
        if (r.status_code, normal(r, id)) != (missing.status_code, normal(missing, "zz-missing")):
            m.fail(
                a,
                v,
                t,
                f"transaction {label}: {r.status_code} {r.text[:200]} "
                f"(a missing id: {missing.status_code} {missing.text[:200]})",
            )
    # A conditional reference must not resolve to what the caller cannot see.
    hidden_answer: tuple[int, Any] | None = None
    for target in (f"{t}?_id={id}", f"{t}?_id=zz-missing"):
        entry = {
            "fullUrl": "urn:uuid:6f1c1f0e-0000-4000-8000-000000000001",
            "resource": probe(a, target),
            "request": {"method": "POST", "url": "Basic"},
        }
        r = m.send(a, "POST", "/fhir", json=_bundle("transaction", [entry]))
        if target.endswith("zz-missing"):
            if (r.status_code, normal(r, "zz-missing")) != hidden_answer:
                m.fail(
                    a,
                    v,
                    t,
                    f"conditional reference: {hidden_answer} (a missing id: "
                    f"{r.status_code} {r.text[:200]})",
                )
        else:
            hidden_answer = (r.status_code, normal(r, id))
            if r.status_code < 400:
                m.fail(a, v, t, f"conditional reference to it resolved: {r.text[:300]}")


ATTACKS: dict[str, Attack] = {
    "read": _hidden_read(""),
    "vread": _hidden_read("/_history/1"),
    "history-instance": _hidden_read("/_history"),
    "update": update,
    "patch": patch,
    "delete": delete,
    "conditional-update": conditional_update,
    "conditional-delete": conditional_delete,
    "search-_id": search_id,
    "_include": include,
    "_revinclude": revinclude,
    "chain": chain,
    "_has": has,
    "batch": batch,
    "transaction": transaction_entries,
}
NEEDS_PROBES = {"_include", "chain", "_has"}


def setup_world(client: TestClient, services: Services, probes: bool) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in directory()
        ],
    }
    resp = transaction.bundle(services, FhirRequest("POST", BASE, resource=bundle))
    assert resp.status == 200
    for org in ORGS:
        h = bearer(token_for(services, org))
        for r in records(org):
            got = client.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers=h)
            assert got.status_code == 201, (org, r["resourceType"], got.status_code, got.text)
            # Its own organisation sees it.
            assert client.get(f"/fhir/{r['resourceType']}/{r['id']}", headers=h).status_code == 200
        if probes:
            for victim in ORGS:
                for t in TYPES:
                    if victim == org:
                        continue
                    pid = probe_id(org, t, victim)
                    body = probe(org, f"{t}/{rid(victim, t)}", pid)
                    got = client.put(f"/fhir/Basic/{pid}", json=body, headers=h)
                    # Naming a hidden resource is answered as naming a missing one would be.
                    assert got.status_code == 201, (org, pid, got.status_code, got.text)


@pytest.mark.parametrize("interaction", list(ATTACKS))
def test_no_organisation_reaches_another_organisations_records(
    settings: Settings, services: Services, interaction: str
) -> None:
    with TestClient(create_app(settings, services)) as client:
        setup_world(client, services, interaction in NEEDS_PROBES)
        before = snapshot(services)
        m = Matrix(client, services, interaction)
        tried = 0
        for attacker in ORGS:
            for victim in ORGS:
                if victim == attacker:
                    continue
                for t in TYPES:
                    ATTACKS[interaction](m, attacker, victim, t)
                    tried += 1
        after = snapshot(services)
        for key, was in before.items():
            if after[key] != was:
                m.failures.append(
                    f"{key[0]}/{key[1]} changed by {interaction}: {was[:1]} -> {after[key][:1]}"
                )
        # The owners still see their own records (the matrix did not just break everything).
        for org in ORGS:
            for t in TYPES:
                r = client.get(f"/fhir/{t}/{rid(org, t)}", headers=m.headers[org])
                if r.status_code != 200:
                    m.failures.append(f"{org} can no longer read its own {t}: {r.status_code}")
    assert tried == 4 * 3 * len(TYPES)
    assert m.failures == [], f"{len(m.failures)} successes, e.g.:\n" + "\n".join(m.failures[:25])
