"""Subscription topics: the four topics load from fhir_profiles/topics/, filter texts parse (or are
refused naming the parameter and the path), and a write matches a subscription's filters."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.delivery.topics import FilterDef, Topic, load_topics, parse_filter, parse_filters
from gateway.errors import Category, FhirError

BASE = "https://fhir-plan-gateway.example/SubscriptionTopic/"


def _topic(id_: str) -> Topic:
    return load_topics()[BASE + id_]


def _task(**changes: Any) -> dict[str, Any]:
    # A network responsibility given by the coordinator's organisation to Kela.
    task = {
        "resourceType": "Task",
        "status": "requested",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "for": {"reference": "Patient/aino"},
        "requester": {"reference": "Organization/org-sote-keskus"},
        "owner": {"reference": "Organization/org-kela"},
    }
    return {**task, **changes}


def test_the_four_topics_load() -> None:
    topics = {t.id: t for t in load_topics().values()}
    assert set(topics) == {"task-responsibility", "task-status", "client-plan", "client-network"}
    assert topics["task-status"].status_change
    assert topics["task-status"].interactions == {"create", "update"}
    assert topics["client-plan"].resource_type == "CarePlan"
    assert topics["client-network"].filters["patient"].element == "subject"
    assert topics["task-responsibility"].filters["patient"].element == "for"
    assert topics["task-responsibility"].filters["code"].kind == "token"
    assert all(url == BASE + t.id for url, t in load_topics().items())


def test_parse_filter() -> None:
    topic = _topic("task-responsibility")
    text = "Task?owner=Organization/org-kela&status=requested,accepted"
    assert parse_filter(topic, text, "p") == (
        ("owner", ("Organization/org-kela",)),
        ("status", ("requested", "accepted")),
    )
    # Without "Task?"; absolute and versioned references are kept as Type/id; percent-decoding.
    bare = "owner=https://gw.example/fhir/Organization/org-kela/_history/2&code=sys%7Cfulfill"
    assert parse_filter(topic, bare, "p") == (
        ("owner", ("Organization/org-kela",)),
        ("code", ("sys|fulfill",)),
    )


def test_parse_filters_ands_several_texts_and_reports_the_index() -> None:
    topic = _topic("client-plan")
    filters = parse_filters(topic, ["CarePlan?patient=Patient/aino", "status=active"])
    assert filters == (("patient", ("Patient/aino",)), ("status", ("active",)))
    with pytest.raises(FhirError) as caught:
        parse_filters(topic, ["status=active", "owner=Organization/x"])
    assert caught.value.expression == ("Subscription.criteria.extension[1]",)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Task?frobnicate=1", "cannot filter by 'frobnicate'"),
        ("Task?owner:missing=true", "modifiers"),
        ("CarePlan?status=active", "filters Task"),
        ("Task?owner=", "empty value"),
        ("Task?status=requested,", "empty value"),
        ("Task?owner", "needs a value"),
        ("Task?", "at least one parameter"),
        ("", "needs a valueString"),
        ("Task?owner=org-kela", "Type/id"),
        ("Task?code=sys|", "needs a code"),
    ],
)
def test_bad_filter(text: str, says: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse_filter(_topic("task-responsibility"), text, "Subscription.criteria.extension[0]")
    error = caught.value
    assert error.category is Category.INVALID
    assert says in error.message
    assert error.expression == ("Subscription.criteria.extension[0]",)
    assert "org-kela" not in error.message  # values are never echoed


def test_bad_filter_lists_the_known_parameters() -> None:
    with pytest.raises(FhirError, match="it can by patient, status"):
        parse_filter(_topic("client-network"), "owner=Organization/x", "p")


def _matches(
    topic: str, text: str, interaction: str = "update", previous: Any = None, **changes: Any
) -> bool:
    t = _topic(topic)
    filters = parse_filter(t, text, "p") if text else ()
    return t.matches(interaction, _task(**changes), previous, filters)


def test_reference_filters() -> None:
    assert _matches("task-responsibility", "owner=Organization/org-kela")
    assert _matches("task-responsibility", "owner=Organization/org-typ,Organization/org-kela")
    assert not _matches("task-responsibility", "owner=Organization/org-typ")
    # The resource's absolute or versioned reference compares as Type/id.
    absolute = {"reference": "https://gw.example/fhir/Organization/org-kela/_history/3"}
    assert _matches("task-responsibility", "owner=Organization/org-kela", owner=absolute)
    # No owner (or a reference without .reference) matches no owner filter.
    assert not _matches("task-responsibility", "owner=Organization/org-kela", owner=None)
    assert not _matches(
        "task-responsibility", "owner=Organization/org-kela", owner={"display": "x"}
    )
    assert _matches("task-responsibility", "patient=Patient/aino")


def test_filters_are_anded() -> None:
    assert _matches("task-responsibility", "owner=Organization/org-kela&status=requested")
    assert not _matches("task-responsibility", "owner=Organization/org-kela&status=accepted")
    t = _topic("task-responsibility")
    filters = parse_filters(t, ["owner=Organization/org-kela", "requester=Organization/x"])
    assert not t.matches("update", _task(), None, filters)
    assert t.matches("update", _task(), None, ())  # no filter: every event of the topic


def test_token_filters() -> None:
    system = "http://hl7.org/fhir/CodeSystem/task-code"
    assert _matches("task-responsibility", "code=fulfill")  # any system
    assert _matches("task-responsibility", f"code={system}|fulfill")
    assert not _matches("task-responsibility", "code=other|fulfill")
    assert not _matches("task-responsibility", "code=|fulfill")  # |code: only without a system
    no_system = {"coding": [{"code": "fulfill"}]}
    assert _matches("task-responsibility", "code=|fulfill", code=no_system)
    # status is a plain code: any-system and no-system forms match it, system|code does not.
    assert _matches("task-responsibility", "status=requested")
    assert _matches("task-responsibility", "status=|requested")
    assert not _matches("task-responsibility", "status=sys|requested")
    t = _topic("client-plan")
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "subject": {"reference": "Patient/aino"},
    }
    assert t.matches("create", plan, None, parse_filter(t, "status=active,draft", "p"))
    assert not t.matches("create", plan, None, parse_filter(t, "status=completed", "p"))


def test_a_list_element_is_walked() -> None:
    # No topic filters a repeating element today; a list of CodeableConcepts or References works.
    category = FilterDef("category", "category", "token")
    actor = FilterDef("actor", "participant", "reference")
    t = Topic(
        "u", "t", "CarePlan", frozenset({"create"}), False, {"category": category, "actor": actor}
    )
    plan = {
        "category": [
            {"coding": [{"system": "a", "code": "x"}]},
            {"coding": [{"system": "b", "code": "y"}]},
        ],
        "participant": [{"reference": "Organization/o1"}, {"reference": "Organization/o2"}],
    }
    assert t.matches(
        "create", plan, None, (("category", ("b|y",)), ("actor", ("Organization/o2",)))
    )
    assert not t.matches("create", plan, None, (("category", ("a|y",)),))


def test_interactions() -> None:
    assert _matches("task-responsibility", "", "delete")
    assert not _matches("task-status", "", "delete")
    network = _topic("client-network")
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": "Patient/aino"},
    }
    assert network.matches("delete", team, team, parse_filter(network, "patient=Patient/aino", "p"))


def test_task_status_fires_on_a_status_change_and_on_create() -> None:
    before = _task(status="requested")
    assert _matches("task-status", "", "update", previous=before, status="accepted")
    assert not _matches("task-status", "", "update", previous=before, status="requested")
    assert not _matches("task-status", "", "update", previous=before, note=[{"text": "x"}])
    # A create is a change from nothing: a Task created already accepted is news.
    assert _matches("task-status", "", "create", previous=None, status="accepted")
    # The other topics fire on any update.
    assert _matches("task-responsibility", "", "update", previous=before, status="requested")


def test_a_filter_the_topic_no_longer_has_matches_nothing() -> None:
    # A stored spec outliving a topic change must not widen to every event.
    assert not _topic("task-responsibility").matches("update", _task(), None, (("gone", ("x",)),))
