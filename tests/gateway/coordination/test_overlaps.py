"""Overlapping services (coordination/overlaps.py): the pure finder, then `$overlaps` over HTTP
on the sample plans, seeing only what the caller may see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.coordination.overlap_finder import (
    DUPLICATE,
    SERVICE_KIND,
    SEVERAL_ORGANISATIONS,
    Overlap,
    overlaps,
)
from gateway.fhir_api.context import Services
from gateway.samples import load_samples

CAREMGT = {"X-Purpose-Of-Use": "CAREMGT"}
Resource = dict[str, Any]


def sr(id: str, org: str, start: str | None, end: str | None, **extra: Any) -> Resource:
    """An active ServiceRequest of service kind `extra["code"]` (default kuntoutusselvitys)."""
    code = extra.pop("code", "kuntoutusselvitys")
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    out: Resource = {
        "resourceType": "ServiceRequest",
        "id": id,
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": SERVICE_KIND, "code": code}]},
        "performer": [{"reference": org}],
        **({"occurrencePeriod": period} if period else {}),
    }
    return {**out, **extra}


def task(id: str, focus: str, owner: str, status: str = "accepted", **extra: Any) -> Resource:
    return {
        "resourceType": "Task",
        "id": id,
        "status": status,
        "focus": {"reference": f"ServiceRequest/{focus}"},
        "owner": {"reference": owner},
        **extra,
    }


KELA, TE, NGO = "Organization/org-kela", "Organization/org-te", "Organization/org-ngo"


# -- the pure finder ----------------------------------------------------------------------------
def test_the_same_service_from_two_organisations_at_once_is_an_overlap() -> None:
    found = overlaps([sr("a", KELA, "2026-10-01", "2026-12-31"), sr("b", TE, "2026-12-01", None)])
    assert found == [
        Overlap(
            SEVERAL_ORGANISATIONS,
            {"system": SERVICE_KIND, "code": "kuntoutusselvitys"},
            "2026-12-01",
            "2026-12-31",
            ("ServiceRequest/a", "ServiceRequest/b"),
            (KELA, TE),
        )
    ]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("2026-01-01", "2026-03-31"), ("2026-04-01", "2026-06-30")),  # one after the other
        (("2026-05-01", None), ("2026-01-01", "2026-04-30")),  # the open one starts later
    ],
)
def test_periods_that_do_not_meet_are_no_overlap(a: tuple, b: tuple) -> None:
    assert overlaps([sr("a", KELA, *a), sr("b", TE, *b)]) == []


def test_periods_meeting_on_one_day_overlap_and_open_ends_still_run() -> None:
    same_day = overlaps(
        [sr("a", KELA, "2026-01-01", "2026-03-31"), sr("b", TE, "2026-03-31", None)]
    )
    assert [(o.start, o.end) for o in same_day] == [("2026-03-31", "2026-03-31")]
    forever = overlaps([sr("a", KELA, None, None), sr("b", TE, "2027-01-01", None)])
    assert [(o.start, o.end) for o in forever] == [("2027-01-01", None)]


def test_different_services_never_overlap() -> None:
    assert overlaps([sr("a", KELA, None, None), sr("b", TE, None, None, code="tyokokeilu")]) == []


def test_a_service_request_without_a_service_kind_is_not_considered() -> None:
    other = sr("b", TE, None, None)
    other["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}
    assert overlaps([sr("a", KELA, None, None), other]) == []


@pytest.mark.parametrize("status", ["completed", "revoked", "entered-in-error"])
def test_a_closed_service_request_is_not_considered(status: str) -> None:
    assert overlaps([sr("a", KELA, None, None), sr("b", TE, None, None, status=status)]) == []


@pytest.mark.parametrize("status", ["completed", "cancelled", "rejected", "failed"])
def test_a_request_whose_tasks_are_all_closed_is_not_considered(status: str) -> None:
    requests = [sr("a", KELA, None, None), sr("b", TE, None, None)]
    assert overlaps(requests, [task("tb", "b", TE, status)]) == []
    still = overlaps(requests, [task("tb", "b", TE, status), task("tb2", "b", TE, "in-progress")])
    assert [o.items for o in still] == [("ServiceRequest/a", "ServiceRequest/b", "Task/tb2")]


def test_the_task_owner_and_due_date_decide_over_the_request() -> None:
    """Reassigned to Kela and due before the other starts: no longer an overlap with TE, but a
    duplicate of Kela's own."""
    requests = [
        sr("a", KELA, "2026-01-01", None),
        sr("b", TE, "2026-01-01", "2026-12-31"),
    ]
    moved = task("tb", "b", KELA, restriction={"period": {"end": "2026-02-28"}})
    found = overlaps(requests, [moved])
    assert [(o.kind, o.organizations, o.start, o.end) for o in found] == [
        (DUPLICATE, (KELA,), "2026-01-01", "2026-02-28")
    ]


def test_duplicates_are_found_whatever_the_periods() -> None:
    found = overlaps(
        [sr("a", KELA, "2026-01-01", "2026-02-28"), sr("b", KELA, "2026-06-01", "2026-07-31")]
    )
    assert [(o.kind, o.start, o.end) for o in found] == [(DUPLICATE, "2026-01-01", "2026-07-31")]


def test_two_open_tasks_of_one_request_for_one_owner_are_a_duplicate() -> None:
    found = overlaps([sr("a", KELA, None, None)], [task("t1", "a", KELA), task("t2", "a", KELA)])
    assert [(o.kind, o.items) for o in found] == [
        (DUPLICATE, ("ServiceRequest/a", "Task/t1", "Task/t2"))
    ]


def test_a_role_counts_as_its_organisation() -> None:
    requests = [sr("a", "PractitionerRole/r-kela", None, None), sr("b", KELA, None, None)]
    assert [o.kind for o in overlaps(requests)] == [SEVERAL_ORGANISATIONS]
    by_org = overlaps(requests, organization_of={"PractitionerRole/r-kela": KELA})
    assert [(o.kind, o.organizations) for o in by_org] == [(DUPLICATE, (KELA,))]


def test_the_start_falls_back_to_execution_and_authoring_and_partial_dates_widen() -> None:
    a = sr("a", KELA, None, "2026-03")  # to the end of March
    b = sr("b", TE, None, None, authoredOn="2026-03-31T23:00:00+03:00")
    assert [(o.start, o.end) for o in overlaps([a, b])] == [("2026-03-31", "2026-03-31")]
    c = sr("c", NGO, None, None)
    started = task("tc", "c", NGO, executionPeriod={"start": "2026-04-01T08:00:00Z"})
    assert [o.organizations for o in overlaps([a, c], [started])] == []


def test_findings_are_pairwise_and_sorted() -> None:
    requests = [
        sr("c", NGO, None, None, code="vertaistuki"),
        sr("a", KELA, None, None),
        sr("b", TE, None, None),
        sr("d", NGO, None, None),
    ]
    found = overlaps(requests)
    assert [o.items for o in found] == [
        ("ServiceRequest/a", "ServiceRequest/b"),
        ("ServiceRequest/a", "ServiceRequest/d"),
        ("ServiceRequest/b", "ServiceRequest/d"),
    ]


def test_junk_is_ignored() -> None:
    junk: list[Any] = [None, "x", {"resourceType": "Patient"}, sr("a", KELA, "bad", "2026-13-40")]
    assert overlaps(junk, [None, {"resourceType": "Task"}]) == []  # type: ignore[list-item]


# -- over HTTP ----------------------------------------------------------------------------------
@pytest.fixture
def loaded(services: Services, client: TestClient) -> TestClient:
    load_samples(services)
    return client


Acting = Callable[..., Any]
KUNTOUTUS = {"system": SERVICE_KIND, "code": "kuntoutusselvitys"}


def add_overlap(client: Any, org: str = "org-tyollisyyspalvelut") -> None:
    """Aino's team asks `org` for a vocational rehabilitation assessment too, while Kela's runs."""
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "owner", "valueReference": {"reference": f"Organization/{org}"}},
            {"name": "service", "valueCoding": KUNTOUTUS},
            {"name": "due", "valueDate": "2027-01-31"},
        ],
    }
    resp = client.post("/fhir/CarePlan/aino-plan/$assign-responsibility", json=body)
    assert resp.status_code == 200, resp.text


def findings(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["resourceType"] == "Parameters"
    out = []
    for p in body.get("parameter", []):
        assert p["name"] == "overlap"
        parts: dict[str, Any] = {}
        for q in p["part"]:
            value = next(v for k, v in q.items() if k.startswith("value"))
            if q["name"] in ("item", "organization"):
                parts.setdefault(q["name"], []).append(value["reference"])
            else:
                parts[q["name"]] = value
        out.append(parts)
    return out


def test_the_sample_plans_have_no_overlaps(loaded: TestClient, org_client: Acting) -> None:
    team = org_client("tyokykytiimi")
    for plan in ("aino-plan",):
        assert findings(team.get(f"/fhir/CarePlan/{plan}/$overlaps")) == []
    assert findings(team.get("/fhir/CarePlan/$overlaps?patient=Patient/aino")) == []


def test_a_second_assessment_from_employment_services_is_found(
    loaded: TestClient, org_client: Acting
) -> None:
    team = org_client("tyokykytiimi")
    add_overlap(team)
    found = findings(team.get("/fhir/CarePlan/aino-plan/$overlaps"))
    assert len(found) == 1
    (one,) = found
    assert one["kind"] == SEVERAL_ORGANISATIONS and one["service"]["code"] == "kuntoutusselvitys"
    assert one["period"]["end"] == "2026-12-31"
    assert "ServiceRequest/aino-sr-kela" in one["item"] and "Task/aino-task-kela" in one["item"]
    assert set(one["organization"]) == {
        "Organization/org-kela",
        "Organization/org-tyollisyyspalvelut",
    }
    by_client = findings(team.get("/fhir/CarePlan/$overlaps", params={"patient": "Patient/aino"}))
    assert by_client == found


def test_a_second_assessment_from_kela_is_a_duplicate(
    loaded: TestClient, org_client: Acting
) -> None:
    team = org_client("tyokykytiimi")
    add_overlap(team, "org-kela")
    (one,) = findings(team.get("/fhir/CarePlan/aino-plan/$overlaps"))
    assert one["kind"] == DUPLICATE and one["organization"] == ["Organization/org-kela"]


def test_only_what_the_caller_may_see_is_considered(loaded: TestClient, org_client: Acting) -> None:
    """The NGO sees Aino's plan under her consent only when it states the purpose; its findings
    are those of the records it may see. TYP may not see the plan at all."""
    add_overlap(org_client("tyokykytiimi"))
    ngo = org_client("jarjesto")
    assert len(findings(ngo.get("/fhir/CarePlan/aino-plan/$overlaps", headers=CAREMGT))) == 1
    assert ngo.get("/fhir/CarePlan/aino-plan/$overlaps").status_code == 404
    typ = org_client("typ")
    assert typ.get("/fhir/CarePlan/aino-plan/$overlaps", headers=CAREMGT).status_code == 404
    assert findings(typ.get("/fhir/CarePlan/$overlaps?patient=Patient/aino", headers=CAREMGT)) == []


def test_the_client_level_needs_a_patient(loaded: TestClient) -> None:
    resp = loaded.get("/fhir/CarePlan/$overlaps")
    assert resp.status_code == 400
    assert resp.json()["issue"][0]["expression"] == ["Parameters.parameter[patient]"]
    bad = loaded.get("/fhir/CarePlan/$overlaps?patient=Organization/org-kela")
    assert bad.status_code == 400
    unknown = loaded.get("/fhir/CarePlan/aino-plan/$overlaps?x=1")
    assert unknown.status_code == 400


def test_overlaps_changes_nothing(loaded: TestClient, org_client: Acting) -> None:
    team = org_client("tyokykytiimi")
    before = team.get("/fhir/CarePlan/aino-plan").json()["meta"]["versionId"]
    team.get("/fhir/CarePlan/aino-plan/$overlaps")
    assert team.get("/fhir/CarePlan/aino-plan").json()["meta"]["versionId"] == before
