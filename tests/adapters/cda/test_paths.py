"""adapters/cda/paths.py: the small element paths of mappings/cda/details.json."""

from __future__ import annotations

from typing import Any

from adapters.cda import paths
from mappings import load

URL = "https://fhir-plan-gateway.example/StructureDefinition/peer-support-offer"


def test_put_then_get_through_nested_extensions() -> None:
    resource: dict[str, Any] = {}
    paths.put(resource, f"extension({URL}).extension(answer).valueCoding", {"code": "ei-nyt"})
    paths.put(resource, "restriction.period.end", "2027-01-15")
    paths.put(resource, "achievementStatus.coding[0]", {"code": "in-progress"})
    assert resource == {
        "extension": [
            {"url": URL, "extension": [{"url": "answer", "valueCoding": {"code": "ei-nyt"}}]}
        ],
        "restriction": {"period": {"end": "2027-01-15"}},
        "achievementStatus": {"coding": [{"code": "in-progress"}]},
    }
    assert paths.get(resource, f"extension({URL}).extension(answer).valueCoding.code") == "ei-nyt"
    assert paths.get(resource, "achievementStatus.coding[0].code") == "in-progress"
    assert paths.get(resource, "restriction.period.start") is None
    assert paths.get(resource, "extension(other).valueDate") is None


def test_every_detail_path_of_the_mapping_round_trips() -> None:
    for specs in load("cda/details.json")["kinds"].values():
        for spec in specs:
            resource: dict[str, Any] = {}
            paths.put(resource, spec["path"], "x")
            assert paths.get(resource, spec["path"]) == "x", spec["path"]
