"""API tests: date prefixes with R4 range semantics, _lastUpdated, and invalid values."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.gateway.search.conftest import ids, search

# Plan periods (see conftest): cp1 2024-01-15..2024-12-31, cp2 2024-03-01..2024-12-31,
# cp3 2023-06-01..2023-12-31.
CASES = [
    ("2024", ["cp1", "cp2"]),  # eq: the year contains both periods
    ("eq2024-03", []),  # a month cannot contain a period lasting until December
    ("ne2024", ["cp3"]),
    ("gt2023-12-31", ["cp1", "cp2"]),
    ("lt2024-02", ["cp1", "cp3"]),
    ("ge2024-12-31", ["cp1", "cp2"]),  # overlapping the day, or extending beyond it
    ("ge2025-01-01", []),
    ("le2023-12-31", ["cp3"]),
    ("le2024-01-15", ["cp1", "cp3"]),
    ("sa2023-12-31", ["cp1", "cp2"]),  # starts after
    ("eb2024-01-01", ["cp3"]),  # ends before
    ("ap2024-09-01", ["cp1", "cp2"]),  # within 10% of the time from then to now
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_date_prefixes(plans: TestClient, value: str, expected: list[str]) -> None:
    found = ids(search(plans, f"CarePlan?date={value}"))
    assert found == [f"CarePlan/{i}" for i in expected]


def test_lastupdated(plans: TestClient) -> None:
    assert len(ids(search(plans, "CarePlan?_lastUpdated=gt2000-01-01"))) == 3
    assert ids(search(plans, "CarePlan?_lastUpdated=lt2000-01-01")) == []


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("CarePlan?date=yesterday", "date"),
        ("CarePlan?date=xx2024", "date"),
        ("CarePlan?date=2024-13-01", "date"),
        ("CarePlan?_lastUpdated=2024-02-30", "_lastUpdated"),
        ("CarePlan?status:frobnicate=x", "status:frobnicate"),
        ("CarePlan?care-team:missing=maybe", "care-team:missing"),
        ("CarePlan?_count=many", "_count"),
        ("CarePlan?_sort=nonsense", "_sort"),
        ("CarePlan?_include=CarePlan:status", "_include"),
        ("CarePlan?subject.nonsense=x", "subject.nonsense"),
        ("CarePlan?_has:Task:status:status=x", "_has:Task:status:status"),
    ],
)
def test_invalid_values_are_400_naming_the_parameter(
    plans: TestClient, query: str, where: str
) -> None:
    r = plans.get(f"/fhir/{query}")
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [where]


def test_number_and_quantity_prefixes(client: TestClient) -> None:
    from tests.gateway.search.conftest import put

    put(
        client,
        {
            "resourceType": "Goal",
            "id": "g",
            "lifecycleStatus": "active",
            "description": {"text": "walk"},
            "subject": {"reference": "Patient/p"},
            "target": [
                {
                    "detailQuantity": {
                        "value": 100,
                        "system": "http://unitsofmeasure.org",
                        "code": "kg",
                    }
                }
            ],
        },
    )
    # Goal has no number/quantity search parameter in R4; check the predicates directly.
    from gateway.search.predicates import number, quantity

    assert number("100", "n") == ("value >= ? AND value < ?", [99.5, 100.5])
    assert number("gt1e2", "n") == ("value > ?", [100.0])
    sql, args = quantity("le5.4|http://unitsofmeasure.org|mg", "q")
    assert args == [5.4, "http://unitsofmeasure.org", "mg"] and "system = ?" in sql
    r = client.get("/fhir/Goal?target-date=ge2024")
    assert r.status_code == 200
