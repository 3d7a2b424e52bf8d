"""Free text (the client's own words, notes, names) survives FHIR -> CDA -> FHIR exactly, for any
text a FHIR string may hold (Hypothesis); text XML cannot hold is a CdaError, not a crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.cda.convert import from_fhir, to_fhir
from adapters.cda.errors import CdaError
from tests.adapters.cda.helpers import IDS, NOW, client, network, organisation

# FHIR string: any Unicode but the C0 controls other than tab, CR, LF; with some non-blank content
fhir_text = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)]
        + ["\ufffe", "\uffff"],
    ),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip())


def _plan_with(text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    resources = network() + client("10-client-aino")
    by_id = {r["id"]: r for r in resources}
    by_id["aino-goal-1"]["description"]["text"] = text
    by_id["aino-goal-1"]["note"] = [{"text": text}]
    by_id["aino-careteam"]["name"] = text
    by_id["aino-task-kela"]["description"] = text
    return resources, by_id


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fhir_text)
def test_free_text_round_trips_exactly(text: str) -> None:
    resources, _ = _plan_with(text)
    data = from_fhir(resources, "hosu", author_org=organisation("org-tyokykytiimi"), now=NOW)
    bundle = to_fhir(data, IDS).bundle
    goals = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Goal"]
    team = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CareTeam"
    )
    tasks = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    assert goals[0]["description"]["text"] == text
    assert goals[0]["note"] == [{"text": text}]
    assert team["name"] == text
    assert text in [t.get("description") for t in tasks]


@pytest.mark.parametrize("bad", ["a\x01b", "\x0b", "x\ufffe"])
def test_text_xml_cannot_hold_is_a_cda_error(bad: str) -> None:
    resources, _ = _plan_with(bad)
    with pytest.raises(CdaError) as caught:
        from_fhir(resources, "hosu", author_org=organisation("org-tyokykytiimi"), now=NOW)
    assert caught.value.code == "invalid-value"
