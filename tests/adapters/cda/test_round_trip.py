"""FHIR -> CDA -> FHIR keeps every field CDA can carry: after removing exactly the paths listed
in mappings/cda/lossy.json (and replacing references by what they point at), the plan's
resources before and after are equal. And a second round trip changes nothing
beyond the ids."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from adapters.cda.convert import from_fhir, to_fhir
from mappings import load
from tests.adapters.cda.helpers import EXPORTED, IDS, NOW, client, network, organisation

PLAN_TYPES = ("Patient", "CarePlan", "CareTeam", "Goal", "ServiceRequest", "Task")


def _labels(resources: list[dict[str, Any]]) -> dict[str, str]:
    """reference text -> a label that survives the trip (national ids, or place in the plan)."""
    by_key = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    by_key |= {f"urn:uuid:{r['id']}": r for r in resources}
    plan = next(r for r in resources if r["resourceType"] == "CarePlan")
    labels: dict[int, str] = {id(plan): "CarePlan"}
    for i, ref in enumerate(plan.get("goal", ())):
        labels[id(by_key[ref["reference"]])] = f"Goal{i}"
    for i, act in enumerate(plan.get("activity", ())):
        labels[id(by_key[act["reference"]["reference"]])] = f"SR{i}"
    for i, ref in enumerate(plan.get("careTeam", ())):
        labels[id(by_key[ref["reference"]])] = f"CareTeam{i}"
    for r in resources:
        if r["resourceType"] == "Task":
            labels[id(r)] = "Task of " + labels[id(by_key[r["focus"]["reference"]])]
        elif id(r) not in labels:
            labels[id(r)] = _identity(r, by_key)
    return {key: labels[id(r)] for key, r in by_key.items()}


def _identity(r: dict[str, Any], by_key: dict[str, dict[str, Any]]) -> str:
    if r["resourceType"] == "PractitionerRole":
        who = by_key.get(r.get("practitioner", {}).get("reference", ""), {})
        org = by_key.get(r.get("organization", {}).get("reference", ""), {})
        return f"Role {_identity(who, by_key)} at {_identity(org, by_key)}"
    if r.get("resourceType") == "Practitioner":  # one without a Terhikki number gets a local id
        national = [i for i in r.get("identifier", ()) if i["system"] == "urn:oid:1.2.246.537.26"]
        return f"Practitioner {national[0]['value'] if national else r['name'][0]['family']}"
    idents = r.get("identifier") or [{"value": "?"}]
    return f"{r.get('resourceType')} {idents[0]['value']}"


def _normalise(node: Any, labels: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _normalise(v, labels) for k, v in node.items()}
        if isinstance(node.get("reference"), str):
            out["reference"] = labels.get(node["reference"], node["reference"])
        if isinstance(out.get("extension"), list):
            out["extension"] = sorted(out["extension"], key=lambda e: e["url"])
        return out
    if isinstance(node, list):
        return [_normalise(v, labels) for v in node]
    return node


def _remove(node: Any, path: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _remove(item, path)
        return
    if not isinstance(node, dict) or not path:
        return
    head, rest = path[0], path[1:]
    if head.startswith("*"):  # '*key.field': in every dict holding `key`, at any depth, no `field`
        if head[1:] in node:
            node.pop(rest[0], None)
        for value in node.values():
            _remove(value, path)
        return
    if head.startswith("extension("):
        url = head[len("extension(") : -1]
        node["extension"] = [e for e in node.get("extension", ()) if e.get("url") != url]
        if not node["extension"]:
            del node["extension"]
        return
    if head.endswith("[1:]"):  # the items of a list after the first
        key = head[: -len("[1:]")]
        if isinstance(node.get(key), list):
            node[key] = node[key][:1]
        return
    if not rest:
        node.pop(head, None)
    elif head in node:
        _remove(node[head], rest)


def _split(path: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in path:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def _comparable(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    lossy = load("cda/lossy.json")
    labels = _labels(resources)
    out = {}
    for r in resources:
        if r["resourceType"] not in PLAN_TYPES:
            continue
        key = f"{r['resourceType']}/{r['id']}"
        copy_ = copy.deepcopy(r)
        for row in lossy["everywhere"] + lossy["resources"].get(r["resourceType"], []):
            _remove(copy_, _split(row["path"]))
        out[labels[key]] = _normalise(copy_, labels)
    return out


def _trip(resources: list[dict[str, Any]], kind: str, org: str) -> list[dict[str, Any]]:
    data = from_fhir(resources, kind, author_org=organisation(org), now=NOW)
    return [e["resource"] for e in to_fhir(data, IDS).bundle["entry"]]


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_round_trip_loses_only_what_lossy_json_lists(name: str) -> None:
    bundle, kind, org = EXPORTED[name]
    original = [r for r in network() + client(bundle)]
    # only the plan of this client (the network bundle holds directory resources only)
    before = _comparable(original)
    after = _comparable(_trip(original, kind, org))
    assert sorted(after) == sorted(before)
    for label in before:
        assert after[label] == before[label], label


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_second_round_trip_changes_nothing(name: str) -> None:
    bundle, kind, org = EXPORTED[name]
    once = _trip(network() + client(bundle), kind, org)
    twice = _trip(once, kind, org)
    assert _comparable(twice) == _comparable(once)  # ids differ: the setId is the new plan's id


SD = "https://fhir-plan-gateway.example/StructureDefinition"
CS = "https://fhir-plan-gateway.example/CodeSystem"


def _with_every_extension() -> list[dict[str, Any]]:
    """Aino's plan with every extension and detail our structure carries (the samples have none)."""
    resources = network() + client("10-client-aino")
    by_id = {r["id"]: r for r in resources}
    by_id["aino-plan"]["extension"] = [
        {"url": f"{SD}/review-date", "valueDate": "2027-01-15"},
        {
            "url": f"{SD}/peer-support-offer",
            "extension": [
                {
                    "url": "answer",
                    "valueCoding": {"system": f"{CS}/peer-support-answer", "code": "hyvaksytty"},
                },
                {"url": "date", "valueDateTime": "2026-09-14T11:00:00+03:00"},
                {
                    "url": "offeredBy",
                    "valueReference": {"reference": "PractitionerRole/role-jarjesto-vertaistuki"},
                },
            ],
        },
        {
            "url": f"{SD}/lasting-solution",
            "valueCoding": {"system": f"{CS}/lasting-solution", "code": "opiskelu"},
        },
    ]
    by_id["aino-goal-1"]["extension"] = [{"url": f"{SD}/client-own-words", "valueBoolean": True}]
    by_id["aino-careteam"]["participant"][1]["extension"] = [
        {"url": f"{SD}/chosen-by-client", "valueBoolean": False}
    ]
    by_id["aino-task-kela"]["note"] = [{"text": "Kela soittaa asiakkaalle."}]
    by_id["aino-task-kela"]["priority"] = "urgent"
    return resources


def test_every_extension_and_detail_survives_the_round_trip() -> None:
    original = _with_every_extension()
    after_resources = _trip(original, "hosu", "org-tyokykytiimi")
    before, after = _comparable(original), _comparable(after_resources)
    for label in before:
        assert after[label] == before[label], label
    plan = next(r for r in after_resources if r["resourceType"] == "CarePlan")
    offer = next(e for e in plan["extension"] if e["url"].endswith("/peer-support-offer"))
    assert [e["url"] for e in offer["extension"]] == ["answer", "date", "offeredBy"]


def _maximal() -> list[dict[str, Any]]:
    """Aino's plan with every element the plan resources may hold that the samples leave out:
    what CDA carries must come back, what it cannot must be listed in lossy.json."""
    resources = _with_every_extension()
    by_id = {r["id"]: r for r in resources}
    goal = by_id["aino-goal-1"]
    goal["description"]["coding"] = [{"system": "http://snomed.info/sct", "code": "123"}]
    goal["priority"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/goal-priority",
                "code": "high-priority",
            }
        ]
    }
    goal["statusDate"] = "2026-10-01"
    by_id["aino-plan"]["intent"] = "order"
    task = by_id["aino-task-kela"]
    task["intent"] = "plan"
    task["statusReason"] = {"text": "Odottaa asiakkaan yhteydenottoa"}
    task["note"] = [
        {
            "text": "Kela soittaa asiakkaalle.",
            "time": "2026-10-01T10:00:00+03:00",
            "authorReference": {"reference": "Organization/org-kela"},
        }
    ]
    aino = by_id["aino"]
    aino["name"][0]["prefix"] = ["Rouva"]
    aino["name"].append({"family": "Vanha", "given": ["Aino"]})
    aino["identifier"].append({"system": "urn:oid:1.2.246.10.1", "value": "X1"})
    aino["deceasedBoolean"] = False
    team = by_id["aino-careteam"]
    team["participant"][0]["onBehalfOf"] = {"reference": "Organization/org-tyokykytiimi"}
    return resources


def test_a_maximal_plan_loses_only_what_lossy_json_lists() -> None:
    """Every element set in _maximal either comes back or is a row of lossy.json: a loss nobody
    listed fails here."""
    original = _maximal()
    before = _comparable(original)
    after = _comparable(_trip(original, "hosu", "org-tyokykytiimi"))
    assert sorted(after) == sorted(before)
    for label in before:
        assert after[label] == before[label], label


def test_the_maximal_plan_keeps_what_cda_now_carries() -> None:
    """Goal priority and statusDate, CarePlan and Task intent, Task statusReason travel as
    detail observations (details.json), not as lossy rows."""
    trip = _trip(_maximal(), "hosu", "org-tyokykytiimi")
    plan = next(r for r in trip if r["resourceType"] == "CarePlan")
    assert plan["intent"] == "order"
    tasks = [r for r in trip if r["resourceType"] == "Task"]
    assert [t["intent"] for t in tasks if "statusReason" in t] == ["plan"]
    goals = [r for r in trip if r["resourceType"] == "Goal" and "priority" in r]
    assert [g["statusDate"] for g in goals] == ["2026-10-01"]
