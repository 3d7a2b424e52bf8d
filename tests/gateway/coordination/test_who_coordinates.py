"""$who-should-coordinate: the rules of seed 003 as data, first match wins, over HTTP too."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.coordination import who_coordinates as who
from gateway.samples import load_samples

URL = "/fhir/$who-should-coordinate"
NEEDS = (
    "many-work-ability-needs",
    "special-support-needs",
    "cannot-manage-network-alone",
    "needs-broad-assessment",
    "no-sote-support",
)
SERVICES = (
    ("typ-client", "typ", "palveluohjaaja"),
    ("social-services-client", "sosiaalipalvelut", "omatyontekija"),
    ("mental-health-substance-services", "mielenterveys-ja-paihdepalvelut", "omatyontekija"),
    ("disability-services", "vammaispalvelut", "omatyontekija"),
)


def outcome(**flags: bool) -> tuple[str, str, str, str]:
    found = who.recommend({k.replace("_", "-"): v for k, v in flags.items()})
    rule = found.rule
    return rule.id, rule.unit, rule.role, rule.work_ability_coordinator


# -- the table ------------------------------------------------------------------------------------
def test_every_row_names_known_codes_a_seed_and_both_languages() -> None:
    table = who.table()
    for rule in who.rules():
        assert set(rule.when) <= set(who.flags()), rule.id
        assert rule.unit in table["codes"]["unit"] and rule.role in table["codes"]["role"]
        assert rule.work_ability_coordinator in ("case-manager", "consulted", "not-needed")
        assert rule.seed in table["seeds"] and rule.reason_fi and rule.reason_en
    assert [r.id for r in who.rules()][-1] == "default" and who.rules()[-1].when == {}
    assert len({r.id for r in who.rules()}) == len(who.rules())


def test_nothing_given_is_the_default_row() -> None:
    assert outcome() == ("default", "sote-keskus", "tyottomien-terveydenhoitaja", "not-needed")
    assert outcome(typ_client=False, many_work_ability_needs=False)[0] == "default"


def test_an_unknown_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown situation flags: no-such"):
        who.recommend({"no-such": True})


# -- a coordinating service decides, the work-ability coordinator is consulted (seed 003) ---------
@pytest.mark.parametrize(("flag", "unit", "role"), SERVICES)
def test_a_coordinating_service_coordinates_and_consults(flag: str, unit: str, role: str) -> None:
    found = who.recommend({flag: True})
    assert (found.rule.id, found.rule.unit, found.rule.role) == (flag, unit, role)
    assert found.rule.work_ability_coordinator == "consulted"
    # negative: the same flag false does not pick the row
    assert who.recommend({flag: False}).rule.id == "default"


@pytest.mark.parametrize("need", NEEDS)
def test_already_in_a_coordinating_service_the_coordinator_is_only_consulted(need: str) -> None:
    """Seed 003 "when not": the client is in social work, mt/substance work or TYP: consulted,
    however many work-ability needs."""
    for flag, unit, _ in SERVICES:
        found = who.recommend({flag: True, need: True})
        assert (found.rule.unit, found.rule.work_ability_coordinator) == (unit, "consulted")
        assert found.matched == (flag, need)  # the need row held, but was overridden
        assert [r.id for r in found.agreeing] == [flag]


def test_the_rows_of_coordinating_services_come_in_the_seeds_order() -> None:
    every = {flag: True for flag, _, _ in SERVICES}
    assert who.recommend(every).rule.id == "typ-client"
    del every["typ-client"]
    assert who.recommend(every).rule.id == "social-services-client"
    del every["social-services-client"]
    assert who.recommend(every).rule.id == "mental-health-substance-services"


# -- the work-ability coordinator as the case manager ---------------------------------------------
@pytest.mark.parametrize("need", NEEDS)
def test_each_need_makes_the_work_ability_coordinator_the_case_manager(need: str) -> None:
    assert outcome(**{need.replace("-", "_"): True}) == (
        need,
        "tyokykytiimi",
        "tyokykykoordinaattori",
        "case-manager",
    )
    assert outcome(**{need.replace("-", "_"): False})[0] == "default"


def test_several_needs_give_every_reason_the_first_decides() -> None:
    found = who.recommend({"no-sote-support": True, "many-work-ability-needs": True})
    assert found.rule.id == "many-work-ability-needs"
    assert [r.id for r in found.agreeing] == ["many-work-ability-needs", "no-sote-support"]


# -- seed 003 "when not" --------------------------------------------------------------------------
def test_knows_the_services_needs_no_case_manager() -> None:
    assert outcome(knows_services=True)[0::3] == ("knows-services", "not-needed")
    assert outcome(knows_services=False)[0] == "default"


def test_a_small_need_one_actor_serves_needs_no_case_manager() -> None:
    assert outcome(small_need_one_actor=True)[0::3] == ("small-need-one-actor", "not-needed")
    assert outcome(small_need_one_actor=False)[0] == "default"


def test_a_need_signal_outweighs_knowing_the_services() -> None:
    """A client who knows the services but cannot manage the network alone (or has many needs)
    still gets the case manager: the seed's signals of need decide."""
    found = who.recommend({"knows-services": True, "cannot-manage-network-alone": True})
    assert found.rule.work_ability_coordinator == "case-manager"
    assert found.matched == ("cannot-manage-network-alone", "knows-services")


# -- over HTTP ------------------------------------------------------------------------------------
def values(body: dict[str, Any], name: str) -> list[Any]:
    out = []
    for p in body["parameter"]:
        if p["name"] == name:
            out.append(next((v for k, v in p.items() if k.startswith("value")), p.get("part")))
    return out


def test_get_with_query_flags(client: TestClient) -> None:
    r = client.get(URL, params={"typ-client": "true", "many-work-ability-needs": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert values(body, "unit")[0]["code"] == "typ"
    assert values(body, "role")[0]["code"] == "palveluohjaaja"
    assert values(body, "work-ability-coordinator") == ["consulted"]
    assert values(body, "rule") == ["typ-client"]
    assert values(body, "matched-rule") == ["typ-client", "many-work-ability-needs"]
    (reason,) = values(body, "reason")
    texts = {
        p["name"]: next(iter(v for k, v in p.items() if k.startswith("value"))) for p in reason
    }
    assert texts["rule"] == "typ-client" and "TYP" in texts["text"] and "TYP" in texts["text-en"]
    assert texts["seed"].endswith("003_b995478a3306762f.txt")


def test_post_parameters(client: TestClient, services: Any) -> None:
    load_samples(services)
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "social-services-client", "valueBoolean": True},
            {"name": "patient", "valueReference": {"reference": "Patient/aino"}},
        ],
    }
    r = client.post(URL, json=body)
    assert r.status_code == 200, r.text
    assert values(r.json(), "patient") == [{"reference": "Patient/aino"}]
    assert values(r.json(), "unit")[0]["code"] == "sosiaalipalvelut"
    assert values(r.json(), "work-ability-coordinator") == ["consulted"]


def test_no_flags_is_the_default(client: TestClient) -> None:
    r = client.get(URL)
    assert r.status_code == 200, r.text
    assert values(r.json(), "rule") == ["default"]


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"typ": "true"}, "Parameters.parameter[typ]"),
        ({"typ-client": "yes"}, "Parameters.parameter[typ-client]"),
        ({"typ-client": "1"}, "Parameters.parameter[typ-client]"),
        ({"patient": "nobody"}, "Parameters.parameter[patient]"),
        ({"patient": "Organization/org-kela"}, "Parameters.parameter[patient]"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    client: TestClient, params: dict[str, str], path: str
) -> None:
    r = client.get(URL, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [path]


def test_a_non_boolean_value_in_a_body_is_400(client: TestClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "knows-services", "valueString": "x"}],
    }
    r = client.post(URL, json=body)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Parameters.parameter[knows-services]"]


def test_a_patient_the_caller_may_not_see_is_404(client: TestClient) -> None:
    r = client.get(URL, params={"patient": "Patient/nobody-here"})
    assert r.status_code == 404


def test_a_network_member_with_read_scopes_may_ask(client: TestClient, as_org: Any) -> None:
    r = client.get(URL, params={"knows-services": "true"}, headers=as_org("kela"))
    assert r.status_code == 200, r.text
    assert values(r.json(), "work-ability-coordinator") == ["not-needed"]


def test_listed_in_the_capability_statement(client: TestClient) -> None:
    r = client.get("/fhir/metadata")
    ops = [o["name"] for o in r.json()["rest"][0].get("operation", [])]
    assert "who-should-coordinate" in ops
