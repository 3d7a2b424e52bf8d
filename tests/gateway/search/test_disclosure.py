"""Search through the disclosure gate (issue 3): an organisation's search, its totals, pages,
includes, chains, `_has` probes and conditional matches answer as if the resources it may not see
did not exist. Every page leaves one query AuditEvent; what the search filters out was never
about to be disclosed and leaves no denial (as tests/gateway/audit/test_completeness.py expects),
while a snapshot entry hidden since the snapshot was made leaves one denial on its page.

The world (stored with no caller, then authentication on): org-sote-keskus holds everything
(Patient.managingOrganization, CarePlan.author, Task.requester, Communication.sender). Client
`pa` lets org-kela see their records for care management (Consent c-pa; kela's requests state
X-Purpose-Of-Use: CAREMGT); client `pb` has no Consent. org-kela itself authored cp6, about pb.
So for kela: cp3 (pb's) is hidden among cp1..cp6, and so are pb, comm1 (about pb and pa) and ct2
(pb's team); cp6 is visible, its subject pb is not.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.consent.enforcement import Gate
from gateway.fhir_api.context import Services
from gateway.security.caller import Caller
from tests.gateway.consent.builders import consent, sharing
from tests.gateway.search.conftest import ids, put

SOTE = "org-sote-keskus"
KELA_ALL = [f"CarePlan/cp{n}" for n in (1, 2, 4, 5, 6)]  # what kela may see of CarePlan
IDENT = "urn:example:message"


def _ref(text: str) -> dict[str, str]:
    return {"reference": text}


def _plan(n: int, client: str, author: str = SOTE, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "id": f"cp{n}",
        "status": "active",
        "intent": "plan",
        "subject": _ref(f"Patient/{client}"),
        "author": _ref(f"Organization/{author}"),
        **extra,
    }


def _consent(status: str = "active") -> dict[str, Any]:
    """pa's privacy Consent, managed by org-sote-keskus, letting org-kela read for care
    management (CAREMGT)."""
    return consent(sharing("permit", "org-kela"), "c-pa", "pa", status, SOTE)


@contextmanager
def no_caller(services: Services) -> Iterator[None]:
    """Requests with no caller (trusted, as the CLI loader) for the duration."""
    services.settings.require_auth = False
    try:
        yield
    finally:
        services.settings.require_auth = True


@pytest.fixture
def world(client: TestClient, services: Services) -> TestClient:
    with no_caller(services):
        for pid, family in (("pa", "Aalto"), ("pb", "Berg")):
            put(
                client,
                {
                    "resourceType": "Patient",
                    "id": pid,
                    "name": [{"family": family}],
                    "managingOrganization": _ref(f"Organization/{SOTE}"),
                },
            )
        put(client, _consent())
        team = {
            "resourceType": "CareTeam",
            "status": "active",
            "managingOrganization": [_ref(f"Organization/{SOTE}")],
        }
        put(client, {**team, "id": "ct1", "subject": _ref("Patient/pa")})
        put(client, {**team, "id": "ct2", "subject": _ref("Patient/pa")})
        for n in (1, 2, 4, 5):
            put(client, _plan(n, "pa", careTeam=[_ref("CareTeam/ct1")]))
        # pb's plan, hidden from kela: it alone leads to ct2 (itself visible: pa's team)
        put(client, _plan(3, "pb", status="revoked", careTeam=[_ref("CareTeam/ct2")]))
        put(client, _plan(6, "pb", author="org-kela"))
        put(
            client,
            {
                "resourceType": "Task",
                "id": "t1",
                "status": "requested",
                "intent": "order",
                "for": _ref("Patient/pa"),
                "requester": _ref(f"Organization/{SOTE}"),
                "basedOn": [_ref("CarePlan/cp3")],
            },
        )
        put(
            client,
            {
                "resourceType": "Communication",
                "id": "comm1",
                "status": "completed",
                "identifier": [{"system": IDENT, "value": "m1"}],
                "subject": _ref("Patient/pb"),
                "recipient": [_ref("Patient/pa")],
                "sender": _ref(f"Organization/{SOTE}"),
            },
        )
    return client


Get = Callable[..., dict[str, Any]]


def everything(client: TestClient, services: Services, query: str) -> list[str]:
    """The matches of `query` with no caller: what exists, hidden or not."""
    with no_caller(services):
        return ids(client.get(f"/fhir/{query}").json())


@pytest.fixture
def kela(world: TestClient, as_org: Callable[..., dict[str, str]]) -> Get:
    """GET as org-kela (a path under /fhir, or an absolute page link); 200 expected."""
    headers = {**as_org("kela"), "X-Purpose-Of-Use": "CAREMGT"}  # the purpose pa consented to

    def get(url: str, status: int = 200) -> Any:
        parts = urlsplit(url)
        path = f"{parts.path}?{parts.query}" if parts.scheme else f"/fhir/{url}"
        r = world.get(path, headers=headers)
        assert r.status_code == status, r.text
        return r.json()

    return get


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((lk["url"] for lk in bundle["link"] if lk["relation"] == relation), None)


def _events(services: Services) -> list[dict[str, Any]]:
    with services.repo.reader() as session:
        rows = session.query("SELECT res_id FROM resources WHERE res_type = 'AuditEvent'")
        stored = session.current_many([("AuditEvent", r[0]) for r in rows])
    return [orjson.loads(sv.body) for sv in stored]


def _by(event: dict[str, Any], org: str) -> bool:
    return any(
        (a.get("who") or {}).get("reference") == f"Organization/{org}" for a in event["agent"]
    )


def queries(services: Services, org: str = "org-kela") -> list[str]:
    """The decoded query of every query AuditEvent of `org`."""
    out = []
    for e in _events(services):
        for entity in e.get("entity", ()):
            if "query" in entity and _by(e, org):
                out.append(base64.b64decode(entity["query"]).decode())
    return out


def denials(services: Services, org: str = "org-kela") -> list[str]:
    """`Type/id` of every resource a denial AuditEvent of `org` names."""
    return sorted(
        entity["what"]["reference"]
        for e in _events(services)
        if e["type"]["code"] == "110113" and _by(e, org)
        for entity in e.get("entity", ())
        if "/" in (entity.get("what") or {}).get("reference", "")
        and not entity["what"]["reference"].startswith(("Patient/", "Consent/"))
    )


# -- matches, totals, counts ------------------------------------------------------------------
def test_matches_and_total_are_filtered(kela: Get, world: TestClient, services: Services) -> None:
    bundle = kela("CarePlan?_sort=_id")
    assert ids(bundle) == KELA_ALL and bundle["total"] == 5
    assert everything(world, services, "CarePlan?_sort=_id") == [
        f"CarePlan/cp{n}" for n in range(1, 7)
    ]
    assert queries(services) == ["CarePlan?_sort=_id"]
    assert denials(services) == []


def test_summary_count_and_count_zero_count_the_visible(kela: Get) -> None:
    assert kela("CarePlan?_summary=count")["total"] == 5
    zero = kela("CarePlan?_count=0")
    assert zero["total"] == 5 and "entry" not in zero
    assert kela("CarePlan?status=revoked&_summary=count")["total"] == 0


def test_total_is_absent_past_the_snapshot_cap(kela: Get, services: Services) -> None:
    services.settings.max_snapshot_keys = 3  # cp1, cp2, cp3 examined: cp3 hidden
    bundle = kela("CarePlan?_sort=_id")
    assert ids(bundle) == ["CarePlan/cp1", "CarePlan/cp2"] and "total" not in bundle
    assert "total" not in kela("CarePlan?_summary=count")


# -- paging ------------------------------------------------------------------------------------
def test_pages_around_a_hidden_match_are_consistent(kela: Get, services: Services) -> None:
    first = kela("CarePlan?_sort=_id&_count=2")
    pages, seen = [first], ids(first)
    while (nxt := _link(pages[-1], "next")) is not None:
        pages.append(kela(nxt))
        seen += ids(pages[-1])
    assert seen == KELA_ALL and [len(ids(p)) for p in pages] == [2, 2, 1]
    assert all(p["total"] == 5 for p in pages)
    last = kela(_link(first, "last"))
    assert ids(last) == ["CarePlan/cp6"]
    # one query event per page served; the filtered match is no denial
    assert len(queries(services)) == 4
    assert denials(services) == []


def test_another_organisations_snapshot_is_unknown(
    kela: Get, world: TestClient, as_org: Callable[..., dict[str, str]]
) -> None:
    link = _link(kela("CarePlan?_count=2"), "next") or ""
    nxt = urlsplit(link)
    unknown = world.get("/fhir/CarePlan?_getpages=" + "0" * 32, headers=as_org("jarjesto"))
    for org in ("jarjesto", "sote-keskus"):
        r = world.get(f"{nxt.path}?{nxt.query}", headers=as_org(org))
        assert r.status_code == 400 and r.json() == unknown.json()
    assert len(ids(kela(link))) == 2  # still kela's own


def test_revocation_between_pages_drops_entries_and_total(
    kela: Get, world: TestClient, services: Services
) -> None:
    first = kela("CarePlan?_sort=_id&_count=2")
    assert first["total"] == 5
    with no_caller(services):
        put(world, _consent("inactive"))
    second = kela(_link(first, "next") or "")
    assert ids(second) == [] and "total" not in second  # cp4, cp5 are pa's
    assert denials(services) == ["CarePlan/cp4", "CarePlan/cp5"]  # promised, then withheld
    third = kela(_link(second, "next") or "")
    assert ids(third) == ["CarePlan/cp6"]  # kela's own plan, still there


# -- includes ----------------------------------------------------------------------------------
def test_include_and_iterate_never_return_nor_traverse_hidden(kela: Get, world: TestClient) -> None:
    q = "Task?_include=Task:based-on&_include:iterate=CarePlan:care-team"
    holder = world.get(f"/fhir/{q}").json()
    assert ids(holder, "include") == ["CarePlan/cp3", "CareTeam/ct2"]
    bundle = kela(q)
    assert ids(bundle) == ["Task/t1"] and ids(bundle, "include") == []
    plans = kela("CarePlan?_id=cp6&_include=CarePlan:subject")
    assert ids(plans) == ["CarePlan/cp6"] and ids(plans, "include") == []


def test_revinclude_leaves_out_hidden_referrers(kela: Get, world: TestClient) -> None:
    q = "Patient?_id=pa&_revinclude=Communication:recipient&_revinclude=CarePlan:subject"
    assert "Communication/comm1" in ids(world.get(f"/fhir/{q}").json(), "include")
    bundle = kela(q)
    assert ids(bundle) == ["Patient/pa"]
    assert ids(bundle, "include") == [f"CarePlan/cp{n}" for n in (1, 2, 4, 5)]


def test_filtered_includes_leave_one_query_event(kela: Get, services: Services) -> None:
    kela("Task?_include=Task:based-on&_include:iterate=CarePlan:care-team")
    assert len(queries(services)) == 1 and denials(services) == []


# -- chains and _has ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "exists"),
    [
        ("CarePlan?subject.name=Berg", ["CarePlan/cp3", "CarePlan/cp6"]),  # cp6 through hidden pb
        ("CarePlan?subject:Patient.family=Berg&_id=cp6", ["CarePlan/cp6"]),
        ("Task?based-on:CarePlan.status=revoked", ["Task/t1"]),  # through hidden cp3
        ("Patient?_has:Communication:recipient:status=completed", ["Patient/pa"]),  # comm1 hidden
        ("Patient?_has:CarePlan:subject:status=revoked", ["Patient/pb"]),
        ("CareTeam?_has:CarePlan:care-team:status=revoked", ["CareTeam/ct2"]),  # ct2 visible
    ],
)
def test_probes_answer_as_if_hidden_data_did_not_exist(
    kela: Get, world: TestClient, services: Services, query: str, exists: list[str]
) -> None:
    assert everything(world, services, query) == exists
    bundle = kela(query)
    assert ids(bundle) == [] and bundle["total"] == 0


def test_probes_still_match_through_visible_data(kela: Get) -> None:
    assert ids(kela("CarePlan?subject.name=Aalto&_sort=_id")) == [
        f"CarePlan/cp{n}" for n in (1, 2, 4, 5)
    ]
    assert ids(kela("Patient?_has:CarePlan:subject:status=active")) == ["Patient/pa"]
    assert ids(kela("Task?based-on:CarePlan.status=revoked&_id=nope")) == []


def test_a_too_broad_chain_is_refused(kela: Get, services: Services) -> None:
    services.settings.max_snapshot_keys = 1
    outcome = kela("CarePlan?subject.name=Aalto,Berg", status=400)
    assert "too broad" in outcome["issue"][0]["diagnostics"]


# -- conditional matching ----------------------------------------------------------------------
def test_match_keys_ignores_what_the_caller_may_not_see(
    world: TestClient, services: Services
) -> None:
    params = [("identifier", f"{IDENT}|m1")]
    kela = Gate.for_caller(Caller("org-kela", "kela", ()), "http://testserver/fhir", "r1")
    sote = Gate.for_caller(Caller(SOTE, "sote-keskus", ()), "http://testserver/fhir", "r2")
    with services.repo.reader() as session:
        assert services.search.match_keys(session, "Communication", params) == [
            ("Communication", "comm1")
        ]
        assert services.search.match_keys(session, "Communication", params, sote) == [
            ("Communication", "comm1")
        ]
        assert services.search.match_keys(session, "Communication", params, kela) == []
        chained = [("subject.name", "Berg")]
        assert services.search.match_keys(session, "CarePlan", chained, kela) == []
        assert kela.events == []  # matching records nothing


def test_conditional_create_with_a_hidden_match_creates(
    world: TestClient, as_org: Callable[..., dict[str, str]], services: Services
) -> None:
    message = {
        "resourceType": "Communication",
        "status": "completed",
        "identifier": [{"system": IDENT, "value": "m1"}],
        "subject": _ref("Patient/pa"),
        "sender": _ref("Organization/org-kela"),
    }
    headers = {
        **as_org("kela"),
        "X-Purpose-Of-Use": "CAREMGT",  # writing about pa needs pa's consent: care management
        "If-None-Exist": f"identifier={IDENT}|m1",
    }
    r = world.post("/fhir/Communication", json=message, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["id"] != "comm1"
    again = world.post("/fhir/Communication", json=message, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
