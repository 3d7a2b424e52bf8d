"""The client plan's view model (gateway/coordination/render/build.py) from the sample bundles:
what the client reads, in Finnish and English, and the golden files of every sample plan.

Goldens: tests/gateway/coordination/golden/client_plan/<sample>-<lang>.json, compared as
structures with the volatile fields (VOLATILE, by path) removed; rewritten only with
UPDATE_GOLDENS=1, never by the test itself otherwise.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.consent.vocabulary import CANONICAL
from gateway.coordination.overlaps import overlaps
from gateway.coordination.render.build import build_view
from gateway.coordination.render.overlaps import organization_of, overlap_texts
from gateway.coordination.render.resources import PlanResources, from_bundle_resources
from gateway.samples import sample_files

GOLDEN = Path(__file__).parent / "golden" / "client_plan"
TODAY = date(2026, 10, 20)  # within every sample plan's period
# Paths (keys; "*" = every item of a list) of fields that change between runs.
VOLATILE: tuple[tuple[str, ...], ...] = (("generated",),)
SD = f"{CANONICAL}/StructureDefinition/"
CS = f"{CANONICAL}/CodeSystem/"


def sample_resources() -> list[dict[str, Any]]:
    return [e["resource"] for path in sample_files() for e in json.loads(path.read_text())["entry"]]


def plan(name: str = "aino") -> PlanResources:
    return from_bundle_resources(copy.deepcopy(sample_resources()), f"{name}-plan")


def task(res: PlanResources, id: str) -> dict[str, Any]:
    return next(t for t in res.tasks if t["id"] == id)


def drop(tree: Any, path: tuple[str, ...]) -> None:
    """Remove the field at `path` (by key; "*" walks every list item), wherever it exists."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(tree, list):
        for item in tree:
            drop(item, rest)
    elif isinstance(tree, dict) and head in tree:
        if rest:
            drop(tree[head], rest)
        else:
            del tree[head]


def stable(view: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(view, ensure_ascii=False))
    for path in VOLATILE:
        drop(out, path)
    return out


@pytest.mark.parametrize("lang", ["fi", "en"])
@pytest.mark.parametrize("sample", ["aino", "mikko", "laura"])
def test_view_matches_golden(sample: str, lang: str) -> None:
    actual = stable(build_view(plan(sample), lang, TODAY).as_dict())
    path = GOLDEN / f"{sample}-{lang}.json"
    if os.environ.get("UPDATE_GOLDENS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, ensure_ascii=False, indent=2) + "\n")
    assert path.exists(), f"no golden {path.name}: run with UPDATE_GOLDENS=1 and review it"
    assert actual == json.loads(path.read_text())


def test_drop_removes_by_path_not_position() -> None:
    tree = {"a": [{"x": 1, "y": 2}, {"x": 3}], "generated": "now", "b": {"x": 4}}
    drop(tree, ("a", "*", "x"))
    drop(tree, ("generated",))
    assert tree == {"a": [{"y": 2}, {}], "b": {"x": 4}}


def test_the_coordinator_is_named_with_role_organisation_and_since() -> None:
    view = build_view(plan(), "fi", TODAY)
    assert view.coordinator is not None
    person = view.coordinator.person
    assert (person.name, person.organization) == (
        "Satu Malli",
        "Esimerkkilän sote-keskus, työkykytiimi",
    )
    assert person.role.lower() == "työkykykoordinaattori"
    assert view.coordinator.since == "14.9.2026"


def test_contacts_come_from_the_role_then_its_organisation() -> None:
    res = plan()
    res.directory["PractitionerRole/role-tyokykykoordinaattori"]["telecom"] = [
        {"system": "phone", "value": "040 123 4567"}
    ]
    res.directory["Organization/org-tyokykytiimi"]["telecom"] = [
        {"system": "email", "value": "tyokykytiimi@example.fi"},
        {"system": "phone", "value": "040 123 4567"},  # the same number twice: shown once
    ]
    contacts = build_view(res, "en", TODAY).coordinator.person.contacts  # type: ignore[union-attr]
    assert [(c.label, c.value, c.href) for c in contacts] == [
        ("Phone", "040 123 4567", "tel:0401234567"),
        ("Email", "tyokykytiimi@example.fi", "mailto:tyokykytiimi@example.fi"),
    ]


def test_an_ended_coordinator_gives_way_to_the_current_one() -> None:
    res = plan()
    team = res.care_teams[0]
    old = team["participant"][0]
    old["period"]["end"] = "2026-10-01"
    new = copy.deepcopy(old)
    new["member"] = {"reference": "PractitionerRole/role-terveydenhoitaja"}
    new["period"] = {"start": "2026-10-01"}
    team["participant"].append(new)
    view = build_view(res, "fi", TODAY)
    assert view.coordinator is not None
    assert view.coordinator.person.name == "Heikki Esimerkki"
    assert [n.title for n in view.network if n.coordinator] == ["Esimerkkilän sote-keskus"]


def test_no_coordinator_is_none_not_a_guess() -> None:
    res = plan()
    res.care_teams = []
    assert build_view(res, "fi", TODAY).coordinator is None


def test_goals_are_the_clients_words_and_the_extension_decides() -> None:
    res = plan()
    res.goals[1]["extension"] = [{"url": SD + "client-own-words", "valueBoolean": False}]
    goals = build_view(res, "fi", TODAY).goals
    assert goals[0].text.startswith("Haluan löytää työn")
    assert [g.own_words for g in goals] == [True, False]  # expressedBy the client; extension
    assert goals[0].notes == ()  # the English translation only for an English reader
    assert build_view(res, "en", TODAY).goals[0].notes[0].startswith("In the client's own words")


def test_responsibilities_open_first_soonest_due_first_then_done() -> None:
    rows = build_view(plan(), "fi", TODAY).responsibilities
    assert [r.what for r in rows] == [
        "Ammatillisen kuntoutuksen selvitys",
        "Työkokeilu",
        "Vertaistuki ja kokemusasiantuntija",
        "Työttömän terveystarkastus",
    ]
    assert [r.state for r in rows] == ["open", "open", "open", "done"]
    assert rows[0].who == "Kela, Esimerkkilän palvelupiste"
    assert (rows[0].due, rows[0].status) == ("31.12.2026 mennessä", "Otettu hoitoon")
    assert rows[3].status == "Tehty"


def test_a_responsibility_past_its_due_date_says_so() -> None:
    rows = build_view(plan(), "en", date(2027, 1, 2)).responsibilities
    late = next(r for r in rows if r.what == "Vocational rehabilitation assessment")
    assert (late.state, late.status) == ("late", "Taken on, overdue")
    done = next(r for r in rows if r.state == "done")
    assert "overdue" not in done.status  # done in time or not, it is done


def test_review_is_the_follow_up_due_date_unless_the_plan_states_one() -> None:
    res = plan()
    view = build_view(res, "fi", TODAY)
    assert view.review is not None
    assert (view.review.date, view.review.who) == (
        "15.1.2027",
        "Esimerkkilän sote-keskus, työkykytiimi",
    )
    assert all("Seuranta" not in r.what for r in view.responsibilities)  # not a "who does what"
    res.plan["extension"] = [{"url": SD + "review-date", "valueDate": "2027-02-01"}]
    assert build_view(res, "en", TODAY).review.date == "1 February 2027"  # type: ignore[union-attr]


def test_no_follow_up_and_no_review_date_is_no_review() -> None:
    res = plan()
    res.tasks = [t for t in res.tasks if t["id"] != "aino-task-seuranta"]
    assert build_view(res, "fi", TODAY).review is None


def test_peer_support_offer_and_service() -> None:
    res = plan()
    res.plan["extension"] = [
        {
            "url": SD + "peer-support-offer",
            "extension": [
                {
                    "url": "answer",
                    "valueCoding": {
                        "system": CS + "peer-support-answer",
                        "code": "hyvaksytty",
                        "display": "Hyväksytty",
                    },
                },
                {"url": "date", "valueDateTime": "2026-09-14T10:00:00+03:00"},
                {
                    "url": "offeredBy",
                    "valueReference": {"reference": "PractitionerRole/role-tyokykykoordinaattori"},
                },
            ],
        }
    ]
    peer = build_view(res, "fi", TODAY).peer_support
    assert (peer.offered, peer.answer) == ("Tarjottu 14.9.2026", "Hyväksytty")
    assert peer.offered_by == "Satu Malli, työkykykoordinaattori"
    assert peer.services == ("Polku ry (esimerkkijärjestö): Käynnissä",)


def test_lasting_solution_is_shown_first_in_words() -> None:
    res = plan()
    res.plan["extension"] = [
        {
            "url": SD + "lasting-solution",
            "valueCoding": {
                "system": CS + "lasting-solution",
                "code": "opiskelu",
                "display": "Opiskelu",
            },
        }
    ]
    assert build_view(res, "fi", TODAY).solution == "Opiskelu"


def test_what_was_not_gathered_is_not_rendered() -> None:
    res = plan()
    res.tasks = [t for t in res.tasks if t["id"] != "aino-task-tyokokeilu"]
    res.requests = [r for r in res.requests if r["id"] != "aino-sr-tyokokeilu"]
    view = build_view(res, "fi", TODAY)
    text = json.dumps(view.as_dict(), ensure_ascii=False)
    assert "Työkokeilu" not in text and "aino-task-tyokokeilu" not in view.refs


def test_a_request_without_a_visible_task_is_still_a_responsibility() -> None:
    res = plan()
    res.tasks = [t for t in res.tasks if t["id"] != "aino-task-tyokokeilu"]
    row = next(r for r in build_view(res, "en", TODAY).responsibilities if r.what == "Work trial")
    assert (row.who, row.status, row.due) == (
        "Esimerkkilän työllisyyspalvelut",
        "Asked, waiting for an answer",
        "by 28 February 2027",
    )


def test_handover_tasks_are_not_client_responsibilities() -> None:
    res = plan()
    handover = copy.deepcopy(task(res, "aino-task-kela"))
    handover["id"] = "aino-handover"
    handover["code"] = {"coding": [{"system": CS + "task-type", "code": "coordinator-handover"}]}
    res.tasks.append(handover)
    assert len(build_view(res, "fi", TODAY).responsibilities) == 4


def test_the_network_has_the_coordinator_first_and_every_organisation_with_its_work() -> None:
    nodes = build_view(plan(), "fi", TODAY).network
    assert nodes[0].coordinator and nodes[0].people == ("Satu Malli, työkykykoordinaattori",)
    assert [n.coordinator for n in nodes[1:]] == [False] * (len(nodes) - 1)
    by_title = {n.title: n for n in nodes}
    assert by_title["Kela, Esimerkkilän palvelupiste"].tasks == (
        "Ammatillisen kuntoutuksen selvitys",
    )
    assert "Aino Testinen" not in json.dumps([n.people for n in nodes])  # the client is the centre


def test_refs_are_what_is_shown_and_the_directory_entries_it_names() -> None:
    refs = build_view(plan(), "fi", TODAY).refs
    assert "CarePlan/aino-plan" in refs and "Task/aino-task-kela" in refs
    assert "Practitioner/prac-satu-malli" in refs  # via the coordinator's role
    assert "Organization/org-typ" not in refs  # in the directory, not in Aino's plan
    assert not any(r.startswith(("Consent/", "Provenance/")) for r in refs)


def test_overlaps_are_told_in_words_naming_service_and_organisations() -> None:
    res = plan()
    twin = copy.deepcopy(next(r for r in res.requests if r["id"] == "aino-sr-tyokokeilu"))
    twin["id"], twin["performer"] = (
        "aino-sr-tyokokeilu-typ",
        [{"reference": "Organization/org-typ"}],
    )
    res.requests.append(twin)
    res.directory["Organization/org-typ"] = next(
        r for r in sample_resources() if r["id"] == "org-typ"
    )
    findings = overlaps(res.requests, res.tasks, organization_of(res))
    (fi,) = overlap_texts(res, findings, "fi")
    assert fi.startswith("Työkokeilu: Esimerkkilän työllisyyspalvelut ja Esimerkkilän TYP")
    assert fi.endswith("samaan aikaan (1.10.2026\N{EN DASH}28.2.2027)")
    (en,) = overlap_texts(res, findings, "en")
    assert en.startswith("Work trial: ") and "at the same time" in en
    assert "tyokokeilu" not in fi + en and "org-typ" not in fi + en
