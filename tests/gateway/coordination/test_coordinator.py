"""The named coordinator: the pure period rules, `$designate-coordinator` and `$coordinator` over
HTTP on the sample network (Aino: the work-ability coordinator of org-tyokykytiimi coordinates)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.coordination import network
from gateway.fhir_api.context import Services
from gateway.samples import load_samples

TEAM = "/fhir/CareTeam/aino-careteam"
COORDINATOR = "PractitionerRole/role-tyokykykoordinaattori"
SOCIAL_WORKER = "PractitionerRole/role-sosiaalityontekija"
NURSE = "PractitionerRole/role-terveydenhoitaja"
START = "2026-09-14T10:00:00+03:00"  # Aino's coordinator since the joint appointment
SWITCH = "2026-11-02T09:30:00+02:00"
PURPOSE = {"X-Purpose-Of-Use": "CAREMGT"}
Headers = Callable[..., dict[str, str]]


# -- pure: periods and the switch -----------------------------------------------------------------
def team(*coordinators: tuple[str, str, str | None], status: str = "active") -> dict[str, Any]:
    """A minimal client network with these (member, start, end) coordinator participants."""
    participants = [
        {
            "role": [{"coding": [{"system": network.COORDINATOR_ROLE, "code": "asiakasvastaava"}]}],
            "member": {"reference": who},
            "period": {"start": start, **({"end": end} if end else {})},
        }
        for who, start, end in coordinators
    ]
    client = {"role": [{"text": "asiakas"}], "member": {"reference": "Patient/p"}}
    return {
        "resourceType": "CareTeam",
        "id": "t",
        "status": status,
        "category": [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}],
        "participant": [*participants, client],
    }


A, B = "PractitionerRole/a", "PractitionerRole/b"


def at(value: str) -> int:
    return network.instant(value)


def test_the_coordinator_at_an_instant_reads_start_inclusive_end_exclusive() -> None:
    t = team((A, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"), (B, "2026-03-01T00:00:00Z", None))
    assert network.coordinators_at(t, at("2025-12-31T23:59:59Z")) == []
    assert [network.member(p) for p in network.coordinators_at(t, at("2026-02-28"))] == [A]
    assert [network.member(p) for p in network.coordinators_at(t, at("2026-03-01T00:00:00Z"))] == [
        B
    ]
    assert [network.member(p) for p in network.coordinators_at(t, at("2030-01-01"))] == [B]


def test_switch_ends_the_current_and_starts_the_new_at_the_same_value() -> None:
    before = team((A, "2026-01-01T00:00:00Z", None))
    after = network.switch(before, B, "2026-02-01T12:00:00+02:00", note="vaihto")
    a, b = network.coordinator_history(after)
    assert a["period"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T12:00:00+02:00"}
    assert (network.member(b), b["period"]) == (B, {"start": "2026-02-01T12:00:00+02:00"})
    assert after["note"][-1]["text"] == "vaihto"
    assert network.open_coordinators(before)[0]["period"].get("end") is None  # input unchanged
    assert len(after["participant"]) == len(before["participant"]) + 1


@pytest.mark.parametrize(
    ("given", "when", "rule"),
    [
        (team((A, "2026-01-01T00:00:00Z", None)), "2025-12-01", "after-current-start"),
        (team((A, "2026-01-01T00:00:00Z", None)), "2026-01-01T00:00:00Z", "after-current-start"),
        (
            team((A, "2026-01-01", None), (B, "2026-01-02", None)),
            "2026-02-01",
            "one-coordinator",
        ),
        (team((A, "2026-01-01", "2026-01-05")), "2026-02-01", "one-coordinator"),
        (team((A, "2026-01-01", None), status="inactive"), "2026-02-01", "network-active"),
    ],
)
def test_switch_refuses(given: dict[str, Any], when: str, rule: str) -> None:
    with pytest.raises(network.Refused) as refused:
        network.switch(given, B, when)
    assert refused.value.rule == rule


def test_switch_to_the_current_coordinator_is_refused() -> None:
    with pytest.raises(network.Refused) as refused:
        network.switch(team((A, "2026-01-01", None)), A, "2026-02-01")
    assert refused.value.rule == "already-coordinator"


def test_the_plan_follows_the_coordinator() -> None:
    plan = {
        "resourceType": "CarePlan",
        "author": {"reference": "Organization/old"},
        "contributor": [{"reference": "Patient/p"}],
        "extension": [
            {
                "url": network.CUSTODIAN_EXTENSION,
                "valueReference": {"reference": "Organization/old"},
            }
        ],
        "meta": {"versionId": "3"},
    }
    out = network.follow(plan, "PractitionerRole/r", "Organization/new")
    assert out["author"] == {"reference": "Organization/new"}
    assert out["extension"][0]["valueReference"] == {"reference": "Organization/new"}
    assert [c["reference"] for c in out["contributor"]] == [
        "Patient/p",
        "Organization/old",
        "PractitionerRole/r",
        "Organization/new",
    ]
    assert "meta" not in out and plan["author"] == {"reference": "Organization/old"}


# -- over HTTP ------------------------------------------------------------------------------------
@pytest.fixture
def loaded(services: Services) -> Services:
    load_samples(services)
    return services


def designate(role: str, date: str | None = None, note: str | None = None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "coordinator", "valueReference": {"reference": role}}]
    if date:
        params.append({"name": "date", "valueDateTime": date})
    if note:
        params.append({"name": "note", "valueString": note})
    return {"resourceType": "Parameters", "parameter": params}


def value(body: dict[str, Any], name: str) -> Any:
    found = [p for p in body["parameter"] if p["name"] == name]
    return [next((v for k, v in p.items() if k.startswith("value")), None) for p in found]


def versions(services: Services, *keys: str) -> dict[str, int]:
    with services.repo.reader() as session:
        out = {}
        for key in keys:
            sv = session.current(*key.split("/"))
            out[key] = sv.version if sv else 0
        return out


def count(services: Services, resource_type: str) -> int:
    with services.repo.reader() as session:
        return len(
            session.query(f"SELECT res_id FROM resources WHERE res_type = '{resource_type}'", [])
        )


def read(services: Services, resource_type: str, id: str) -> dict[str, Any]:
    with services.repo.reader() as session:
        sv = session.current(resource_type, id)
        assert sv is not None
        return orjson.loads(sv.body)


def provenances(services: Services, target: str) -> list[dict[str, Any]]:
    """The stored Provenances naming `target` (read around the gate: the test looks at storage)."""
    with services.repo.reader() as session:
        ids = [
            r[0]
            for r in session.query("SELECT res_id FROM resources WHERE res_type = 'Provenance'", [])
        ]
    found = [read(services, "Provenance", i) for i in ids]
    return [p for p in found if {"reference": target} in p["target"]]


def team_holder(as_org: Headers) -> dict[str, str]:
    return as_org("tyokykytiimi", acting_role=COORDINATOR)


def test_designate_switches_in_one_transaction_with_provenance(
    client: TestClient, loaded: Services, as_org: Headers
) -> None:
    r = client.post(
        f"{TEAM}/$designate-coordinator",
        json=designate(SOCIAL_WORKER, SWITCH, "Yhteisvastaanotolla sovittu"),
        headers=team_holder(as_org),
    )
    assert r.status_code == 200, r.text
    assert value(r.json(), "careteam") == [{"reference": "CareTeam/aino-careteam/_history/2"}]
    assert value(r.json(), "previous") == [{"reference": COORDINATOR}]
    assert value(r.json(), "plan") == [{"reference": "CarePlan/aino-plan/_history/2"}]
    careteam = read(loaded, "CareTeam", "aino-careteam")
    old, new = network.coordinator_history(careteam)
    assert (network.member(old), old["period"]) == (COORDINATOR, {"start": START, "end": SWITCH})
    assert (network.member(new), new["period"]) == (SOCIAL_WORKER, {"start": SWITCH})
    assert {"reference": "Organization/org-sosiaalipalvelut"} in careteam["managingOrganization"]
    plan = read(loaded, "CarePlan", "aino-plan")
    assert plan["author"] == {"reference": "Organization/org-sosiaalipalvelut"}
    assert {"reference": SOCIAL_WORKER} in plan["contributor"]
    (prov,) = provenances(loaded, "CareTeam/aino-careteam/_history/2")
    targets = {t["reference"] for t in prov["target"]}
    assert prov["agent"][0]["who"] == {"reference": COORDINATOR}
    assert prov["agent"][0]["onBehalfOf"] == {"reference": "Organization/org-tyokykytiimi"}
    assert {"CareTeam/aino-careteam/_history/2", "CarePlan/aino-plan/_history/2"} <= targets


def test_the_coordinator_on_past_dates(
    client: TestClient, loaded: Services, as_org: Headers
) -> None:
    r = client.post(
        f"{TEAM}/$designate-coordinator",
        json=designate(SOCIAL_WORKER, SWITCH),
        headers=team_holder(as_org),
    )
    assert r.status_code == 200, r.text

    def who(date: str | None) -> list[Any]:
        got = client.get(
            f"{TEAM}/$coordinator", params={"date": date} if date else {}, headers=PURPOSE
        )
        assert got.status_code == 200, got.text
        return [{"reference": r["reference"]} for r in value(got.json(), "coordinator")]

    assert who("2026-09-01") == []  # before the first designation
    assert who("2026-10-15") == [{"reference": COORDINATOR}]
    assert who("2026-11-02T09:29:59+02:00") == [{"reference": COORDINATOR}]
    assert who(SWITCH) == [{"reference": SOCIAL_WORKER}]
    assert who(None) == [{"reference": SOCIAL_WORKER}]
    history = client.get(f"{TEAM}/$coordinator", headers=PURPOSE).json()
    parts = [p["part"] for p in history["parameter"] if p["name"] == "history"]
    assert [q[0]["valueReference"]["reference"] for q in parts] == [COORDINATOR, SOCIAL_WORKER]


def test_a_second_change_is_dated_and_kept_too(
    client: TestClient, loaded: Services, as_org: Headers
) -> None:
    first = client.post(
        f"{TEAM}/$designate-coordinator",
        json=designate(SOCIAL_WORKER, SWITCH),
        headers=team_holder(as_org),
    )
    assert first.status_code == 200, first.text
    # the new coordinator's organisation holds the network now
    second = client.post(
        f"{TEAM}/$designate-coordinator",
        json=designate(NURSE, "2026-11-10"),
        headers=as_org("sosiaalipalvelut", acting_role=SOCIAL_WORKER),
    )
    assert second.status_code == 200, second.text
    careteam = read(loaded, "CareTeam", "aino-careteam")
    assert [network.member(p) for p in network.coordinator_history(careteam)] == [
        COORDINATOR,
        SOCIAL_WORKER,
        NURSE,
    ]
    assert len(network.open_coordinators(careteam)) == 1
    assert read(loaded, "CarePlan", "aino-plan")["author"] == {
        "reference": "Organization/org-sote-keskus"
    }
    old = client.get(f"{TEAM}/$coordinator", params={"date": "2026-11-05"}, headers=PURPOSE)
    old = old.json()
    assert [r["reference"] for r in value(old, "coordinator")] == [SOCIAL_WORKER]


KEYS = ("CareTeam/aino-careteam", "CarePlan/aino-plan")


@pytest.mark.parametrize(
    ("body", "status", "path"),
    [
        (designate(COORDINATOR, "2026-11-01"), 409, "Parameters.parameter[coordinator]"),
        (designate(SOCIAL_WORKER, "2026-09-01"), 409, "Parameters.parameter[date]"),
        (designate(SOCIAL_WORKER, START), 409, "Parameters.parameter[date]"),
        (designate(SOCIAL_WORKER, "2099-01-01"), 400, "Parameters.parameter[date]"),
        (designate("PractitionerRole/nobody"), 400, "Parameters.parameter[coordinator]"),
        (designate("Organization/org-kela"), 400, "Parameters.parameter[coordinator]"),
        ({"resourceType": "Parameters"}, 400, "Parameters.parameter[coordinator]"),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "who", "valueString": "x"}]},
            400,
            "Parameters.parameter[who]",
        ),
    ],
)
def test_refused_designations_change_nothing(
    client: TestClient,
    loaded: Services,
    as_org: Headers,
    body: dict[str, Any],
    status: int,
    path: str,
) -> None:
    before, provenances = versions(loaded, *KEYS), count(loaded, "Provenance")
    r = client.post(f"{TEAM}/$designate-coordinator", json=body, headers=team_holder(as_org))
    assert r.status_code == status, r.text
    assert r.json()["issue"][0]["expression"] == [path]
    assert versions(loaded, *KEYS) == before and count(loaded, "Provenance") == provenances


def test_only_a_holder_of_the_network_designates(
    client: TestClient, loaded: Services, as_org: Headers
) -> None:
    before = versions(loaded, *KEYS)
    r = client.post(
        f"{TEAM}/$designate-coordinator",
        json=designate(SOCIAL_WORKER, SWITCH),
        headers={"X-Purpose-Of-Use": "CAREMGT"},  # sote-keskus sees Aino's plan, holds none
    )
    assert r.status_code == 403, r.text
    assert "network-holder" in r.json()["issue"][0]["diagnostics"]
    assert versions(loaded, *KEYS) == before


def test_designate_is_post_only_and_coordinator_is_read_only(
    client: TestClient, loaded: Services
) -> None:
    assert client.get(f"{TEAM}/$designate-coordinator").status_code == 405
    r = client.get(f"{TEAM}/$coordinator", params={"date": "yesterday"}, headers=PURPOSE)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Parameters.parameter[date]"]
    assert client.get("/fhir/CareTeam/nobody/$coordinator").status_code == 404


def test_a_hidden_network_is_404(client: TestClient, loaded: Services, as_org: Headers) -> None:
    """Mikko shares his plan with the work-ability team and Kela only: for TYP it does not exist."""
    r = client.post(
        "/fhir/CareTeam/mikko-careteam/$designate-coordinator",
        json=designate(SOCIAL_WORKER, SWITCH),
        headers={**as_org("typ"), **PURPOSE},
    )
    assert r.status_code == 404, r.text


def test_the_first_coordinator_is_named_on_a_proposed_network(
    client: TestClient, loaded: Services, as_org: Headers
) -> None:
    # Seed 002: the coordinator is named at the joint appointment; until then the network is
    # only proposed and has none. Naming the first one makes it active. The work-ability team
    # manages Aino's network and acts here.
    team_org = as_org("tyokykytiimi")
    team = client.get(TEAM, headers=team_org).json()
    team.pop("meta", None)
    team["id"] = "first-careteam"
    team["status"] = "proposed"
    team["participant"] = [
        p for p in team["participant"] if "asiakasvastaava" not in str(p.get("role"))
    ]
    assert (
        client.put("/fhir/CareTeam/first-careteam", json=team, headers=team_org).status_code == 201
    )
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coordinator", "valueReference": {"reference": NURSE}},
            {"name": "date", "valueDateTime": "2026-11-01T10:00:00+02:00"},
        ],
    }
    r = client.post(
        "/fhir/CareTeam/first-careteam/$designate-coordinator", json=body, headers=team_org
    )
    assert r.status_code == 200, r.text
    assert "previous" not in {p["name"] for p in r.json()["parameter"]}
    after = client.get("/fhir/CareTeam/first-careteam", headers=team_org).json()
    assert after["status"] == "active"
    coordinators = [p for p in after["participant"] if "asiakasvastaava" in str(p.get("role"))]
    assert [(p["member"]["reference"], p["period"]) for p in coordinators] == [
        (NURSE, {"start": "2026-11-01T10:00:00+02:00"})
    ]
    # A second designation on it is an ordinary change of coordinator.
    r = client.post(
        "/fhir/CareTeam/first-careteam/$designate-coordinator", json=body, headers=team_org
    )
    assert r.status_code == 409
