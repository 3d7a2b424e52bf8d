"""The native invariants (gateway/validation/profile_native.py) answer exactly what fhirpathpy
answers on the same value, on every sample resource, on hand-picked edge cases and on generated
ones; an invariant whose text differs from the table's is evaluated by fhirpathpy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fhir_profiles
from gateway.validation import profile_native
from gateway.validation.profile_native import HETU_CHECK, NATIVE, Unmodelled, with_native
from gateway.validation.profile_rules import compiled_fhirpath, truthy
from gateway.validation.profiles import Catalog, profile_issues

ROOT = Path(__file__).parents[3]
BASE = "https://fhir-plan-gateway.example"
ROLE_CS = f"{BASE}/CodeSystem/coordinator-role"
HETU, SOTE, TERHIKKI = (
    "urn:oid:1.2.246.21",
    "urn:oid:1.2.246.537.6.202.2008",
    "urn:oid:1.2.246.537.26",
)
EXPRESSION = {key: expression for key, expression in NATIVE}
TYPE_OF = {
    "cn-1": "CareTeam", "cn-2": "CareTeam", "hetu-1": "Patient", "sote-1": "Organization",
    "terhikki-1": "Practitioner", "ho-1": "Task", "cf-1": "QuestionnaireResponse",
    "cf-2": "QuestionnaireResponse",
}  # fmt: skip
FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def native(key: str, value: Any) -> bool | None:
    """The native answer; None when the predicate leaves the shape to fhirpathpy."""
    try:
        return NATIVE[(key, EXPRESSION[key])](value)
    except Unmodelled:
        return None


def fhirpath(key: str, value: Any) -> bool | str:
    """fhirpathpy's answer as the validator reads it, or "error" when it raises."""
    try:
        return truthy(compiled_fhirpath(EXPRESSION[key])(value, {"resource": value}))
    except Exception:
        return "error"


def agree(key: str, value: Any, modelled: bool = True) -> None:
    """Native equals fhirpathpy; `modelled`: the native predicate must answer by itself."""
    mine = native(key, value)
    assert mine is not None or not modelled, (key, value)
    assert mine is None or mine == fhirpath(key, value), (key, value, mine)


# --- the table and the samples ------------------------------------------------------------


def current_invariants() -> set[tuple[str, str]]:
    return {
        (c["key"], c["expression"])
        for sd in fhir_profiles.structure_definitions().values()
        for e in sd["differential"]["element"]
        for c in e.get("constraint", [])
    }


def test_each_native_form_is_of_an_invariant_text_our_profiles_carry() -> None:
    # fails when the FSH changes an expression: the native form is then dead (fhirpathpy runs)
    assert set(NATIVE) <= current_invariants()
    assert {"cn-1", "cn-2", "hetu-1", "sote-1", "terhikki-1", "ho-1", "cf-1", "cf-2"} <= set(
        EXPRESSION
    )


def sample_resources() -> list[dict[str, Any]]:
    paths = sorted((ROOT / "samples" / "bundles").glob("*.json"))
    paths += sorted((ROOT / "samples" / "journeys").glob("*/bundles/*.json"))
    assert len(paths) >= 10
    return [e["resource"] for p in paths for e in orjson.loads(p.read_bytes())["entry"]]


@pytest.mark.parametrize("key", sorted(EXPRESSION))
def test_native_equals_fhirpath_on_every_sample(key: str) -> None:
    resources = [r for r in sample_resources() if r["resourceType"] == TYPE_OF[key]]
    assert resources
    for resource in resources:
        agree(key, resource)


# --- edge cases ---------------------------------------------------------------------------

COORDINATOR = {"coding": [{"system": ROLE_CS, "code": "asiakasvastaava"}]}
MEMBER = {"coding": [{"system": ROLE_CS, "code": "verkoston-jasen"}]}


def team(*participants: dict[str, Any], status: str | None = "active") -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "CareTeam", "participant": list(participants)}
    return out if status is None else {**out, "status": status}


def part(role: dict[str, Any] = COORDINATOR, end: str | None = None, **member: str) -> dict:
    period = {"start": "2024-01-01", **({"end": end} if end else {})}
    return {
        "role": [role],
        "period": period,
        "member": member or {"reference": "PractitionerRole/a"},
    }


CARE_TEAMS = {
    "no participants": team(),
    "no participant key": {"resourceType": "CareTeam", "status": "active"},
    "one open coordinator": team(part(), part(MEMBER)),
    "ended coordinator only": team(part(end="2024-05-01")),
    "ended and open": team(part(end="2024-05-01"), part()),
    "two open coordinators": team(part(), part()),
    "status inactive, none": team(status="inactive"),
    "status missing, none": team(status=None),
    "status missing, one": team(part(), status=None),
    "status empty string": team(status=""),
    "member urn:uuid": team(part(reference="urn:uuid:4f1c")),
    "member urn:uuid, no colon": team(part(reference="urn:uuid4f1c")),
    "member type only": team(part(type="PractitionerRole")),
    "member type Practitioner": team(part(type="Practitioner")),
    "member Practitioner ref": team(part(reference="Practitioner/p1")),
    "member absolute + history": team(
        part(reference="https://x.example/fhir/PractitionerRole/r.1/_history/2")
    ),
    "member contained": team(part(reference="#pr")),
    "member ref, final newline": team(part(reference="PractitionerRole/a\n")),
    "member empty": team({"role": [COORDINATOR], "period": {"start": "2024-01-01"}}),
    "role without system": team(part({"coding": [{"code": "asiakasvastaava"}]})),
    "role text only": team(part({"text": "asiakasvastaava"})),
    "period empty": team({"role": [COORDINATOR], "period": {}, "member": {"type": "X"}}),
}


@pytest.mark.parametrize("key", ["cn-1", "cn-2"])
@pytest.mark.parametrize("name", sorted(CARE_TEAMS))
def test_care_team_edge_cases(key: str, name: str) -> None:
    agree(key, CARE_TEAMS[name])


def hetu(birth: str = "131052", sign: str = "-", number: str = "308") -> str:
    return f"{birth}{sign}{number}{HETU_CHECK[int(birth + number) % 31]}"


def patient(*values: Any, system: str = HETU) -> dict[str, Any]:
    idents = [{"system": system} if v is None else {"system": system, "value": v} for v in values]
    return {"resourceType": "Patient", "identifier": idents}


HETUS = [
    *(hetu(sign=s) for s in "+-ABCDEFUVWXY"),  # every century sign
    "131052-308T", "131052-308U", "131052-308t", "131052a308T", "131052-30T", "131052-3080T",
    "13105X-308T", "131052-308T\n", "\n131052-308T", "131052-308T ", "", "131052-308G",
    "13105٢-308T", "-31052-308T", hetu(number="000"), hetu(birth="000000"), None,
]  # fmt: skip


@pytest.mark.parametrize("value", HETUS)
def test_hetu_edge_cases(value: str | None) -> None:
    agree("hetu-1", patient(value))
    agree("hetu-1", patient(hetu(), value))


def test_hetu_without_identifiers_or_of_another_system_holds() -> None:
    for resource in [patient(), patient("x", system="urn:other"), {"resourceType": "Patient"}]:
        assert native("hetu-1", resource) is True
        agree("hetu-1", resource)


@pytest.mark.parametrize("value", ["1.2.246.10", "3.1", "1.02", "1", "1.2.", "", None, "0.0"])
def test_oid_and_terhikki_edge_cases(value: str | None) -> None:
    org = {**patient(value, system=SOTE), "resourceType": "Organization"}
    agree("sote-1", org)
    agree("sote-1", {"resourceType": "Organization"})
    for terhikki in [value, "12345678901", "1234567890", "123456789012", "12345678901\n"]:
        agree("terhikki-1", {**patient(terhikki, system=TERHIKKI), "resourceType": "Practitioner"})


@pytest.mark.parametrize("status", ["rejected", "completed", "", None])
@pytest.mark.parametrize("reason", [None, {"text": "ei resursseja"}, {}])
def test_handover_rejection_reason(status: str | None, reason: dict[str, Any] | None) -> None:
    task: dict[str, Any] = {"resourceType": "Task"}
    task |= {} if status is None else {"status": status}
    task |= {} if reason is None else {"statusReason": reason}
    agree("ho-1", task)


# --- generated ----------------------------------------------------------------------------

codings = st.sampled_from(
    [
        {"system": ROLE_CS, "code": "asiakasvastaava"},
        {"system": ROLE_CS, "code": "verkoston-jasen"},
        {"system": f"{BASE}/CodeSystem/professional-role", "code": "asiakasvastaava"},
        {"code": "asiakasvastaava"},
        {"system": ROLE_CS},
    ]
)
roles = st.fixed_dictionaries({}, optional={"coding": st.lists(codings, max_size=3)})
periods = st.fixed_dictionaries(
    {}, optional={"start": st.just("2024-01-01"), "end": st.sampled_from(["2024-06-01", "2025"])}
)
references = st.one_of(
    st.sampled_from(
        [
            *("PractitionerRole/r1", "Practitioner/p1", "urn:uuid:1", "urn:uuid", "#c", "a/b/c"),
            *("PractitionerRole/a/_history/1", "PractitionerRole/", "x/PractitionerRole/a b"),
        ]
    ),
    st.text(alphabet="PractionerRole/_:.#-1 \n", max_size=24),
)
members = st.fixed_dictionaries(
    {},
    optional={
        "reference": references,
        "type": st.sampled_from(["PractitionerRole", "Practitioner", "Organization", ""]),
    },
)
participants = st.fixed_dictionaries(
    {}, optional={"role": st.lists(roles, max_size=2), "period": periods, "member": members}
)
care_teams = st.fixed_dictionaries(
    {"resourceType": st.just("CareTeam")},
    optional={
        "status": st.sampled_from(["active", "inactive", "proposed", "suspended", ""]),
        "participant": st.lists(participants, max_size=4),
    },
)


def splice(text: str, at: int, piece: str) -> str:
    """`text` with the character at `at` replaced by `piece` (a mutation of a valid HETU)."""
    return text[:at] + piece + text[at + 1 :]


signs = st.sampled_from("+-ABCDEFUVWXY")
valid_hetus = st.builds(hetu, st.from_regex(r"\A[0-9]{6}\Z"), signs, st.from_regex(r"\A[0-9]{3}\Z"))
hetu_like = st.one_of(
    valid_hetus,
    valid_hetus.map(str.lower),
    st.builds(splice, valid_hetus, st.integers(0, 11), st.text(max_size=2)),
    st.from_regex(r"\A[0-9]{6}[-+A-Z][0-9]{3}[0-9A-Z]\n?\Z"),
    st.text(max_size=14),
)  # fmt: skip
identifiers = st.lists(
    st.fixed_dictionaries(
        {"system": st.sampled_from([HETU, SOTE, TERHIKKI, "urn:other"])},
        optional={"value": st.one_of(hetu_like, st.from_regex(r"\A[0-9.]{0,12}\Z"))},
    ),
    max_size=3,
)
answers = st.fixed_dictionaries(
    {},
    optional={
        "valueString": st.sampled_from(["hyvä", ""]),
        "valueCoding": st.fixed_dictionaries(
            {"code": st.just("vaihto")},
            optional={"system": st.sampled_from([f"{BASE}/CodeSystem/feedback-stage", "x"])},
        ),
    },
)
responses = st.fixed_dictionaries(
    {"resourceType": st.just("QuestionnaireResponse")},
    optional={
        "item": st.lists(
            st.fixed_dictionaries(
                {"linkId": st.sampled_from(["stage", "feedback", "other"])},
                optional={"answer": st.lists(answers, max_size=2)},
            ),
            max_size=3,
        )
    },
)
tasks = st.fixed_dictionaries(
    {"resourceType": st.just("Task")},
    optional={
        "status": st.sampled_from(["rejected", "requested", "completed"]),
        "statusReason": st.just({"text": "ei aikaa"}),
    },
)
GENERATED = {
    "cn-1": care_teams,
    "cn-2": care_teams,
    "hetu-1": identifiers.map(lambda i: {"resourceType": "Patient", "identifier": i}),
    "sote-1": identifiers.map(lambda i: {"resourceType": "Organization", "identifier": i}),
    "terhikki-1": identifiers.map(lambda i: {"resourceType": "Practitioner", "identifier": i}),
    "ho-1": tasks,
    "cf-1": responses,
    "cf-2": responses,
}


@pytest.mark.parametrize("key", sorted(GENERATED))
def test_native_equals_fhirpath_on_generated_resources(key: str) -> None:
    @FAST
    @given(GENERATED[key])
    def check(resource: dict[str, Any]) -> None:
        agree(key, resource)

    check()


@FAST
@given(valid_hetus)
def test_generated_valid_hetus_hold(value: str) -> None:
    assert native("hetu-1", patient(value)) is True


ODD = st.one_of(
    st.none(), st.booleans(), st.integers(), st.just([]), st.just({}), st.just([None]),
    st.lists(st.text(max_size=3), max_size=2), st.just({"extension": []}), st.text(max_size=3),
)  # fmt: skip
FIELDS = [
    *("status", "statusReason", "participant", "role", "coding", "system", "code", "period"),
    *("end", "member", "reference", "type", "identifier", "value", "item", "linkId", "answer"),
    *("valueString", "valueCoding"),
]


@pytest.mark.parametrize("key", sorted(GENERATED))
def test_odd_shapes_are_answered_alike_or_left_to_fhirpath(key: str) -> None:
    @FAST
    @given(GENERATED[key], st.data())
    def check(drawn: dict[str, Any], data: st.DataObject) -> None:
        resource = copy.deepcopy(drawn)  # strategies share their st.just values: never mutate them
        node = data.draw(st.sampled_from(list(_dicts(resource))))
        name = data.draw(st.sampled_from(FIELDS))
        node[data.draw(st.sampled_from([name, f"_{name}"]))] = copy.deepcopy(data.draw(ODD))
        mine = native(key, resource)
        assert mine is None or mine == fhirpath(key, resource), (resource, mine)

    check()


def _dicts(value: Any) -> Any:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _dicts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dicts(v)


# --- the hook -----------------------------------------------------------------------------


def client_network(expression: str | None = None) -> dict[str, Any]:
    """The client-network profile, its cn-1 text replaced when `expression` is given."""
    sd = copy.deepcopy(
        fhir_profiles.structure_definitions()[f"{BASE}/StructureDefinition/client-network"]
    )
    for element in sd["differential"]["element"]:
        for c in element.get("constraint", []):
            if c["key"] == "cn-1" and expression is not None:
                c["expression"] = expression
    return sd  # fmt: skip


def issues_with(sd: dict[str, Any], resource: dict[str, Any]) -> list[str]:
    """Issues of a catalog of `sd` alone, compiled now (not default_catalog(): the tests patch
    NATIVE, and a catalog compiled under the patch would keep it); bindings are not checked."""
    catalog = Catalog([sd], lambda url: None, fhir_profiles.selection())
    return [i.diagnostics for i in profile_issues(resource, catalog)]


def sample_team() -> dict[str, Any]:
    return next(r for r in sample_resources() if r["resourceType"] == "CareTeam")


def test_the_validator_runs_the_native_form_of_an_unchanged_invariant(monkeypatch: Any) -> None:
    calls: list[str] = []
    key = ("cn-1", EXPRESSION["cn-1"])
    monkeypatch.setitem(NATIVE, key, lambda value: calls.append("cn-1") or False)
    found = issues_with(client_network(), sample_team())
    assert calls == ["cn-1"]
    assert any("invariant cn-1" in d for d in found)  # the native answer decided


def test_a_changed_expression_text_is_evaluated_by_fhirpath(monkeypatch: Any) -> None:
    calls: list[str] = []
    for key, predicate in list(NATIVE.items()):
        monkeypatch.setitem(NATIVE, key, lambda v, p=predicate: calls.append("native") or p(v))
    resource = sample_team()
    assert not any("cn-1" in d for d in issues_with(client_network(), resource))
    calls.clear()
    changed = EXPRESSION["cn-1"].replace(".count() = 1", ".count() = 2")
    found = issues_with(client_network(changed), resource)
    assert any("invariant cn-1" in d for d in found)  # fhirpathpy read the changed text
    assert calls == ["native"]  # cn-2 still native; cn-1 not


def test_an_unmodelled_shape_is_handed_to_fhirpath() -> None:
    seen: list[Any] = []
    evaluate = with_native("ho-1", EXPRESSION["ho-1"], lambda v, env: seen.append(v) or [True])
    assert evaluate({"status": "rejected"}, {}) == [False]
    odd = {"_status": {"extension": []}}
    assert evaluate(odd, {}) == [True] and seen == [odd]
    assert with_native("ho-1", EXPRESSION["ho-1"] + " ", truthy) is truthy  # type: ignore[arg-type]
    assert profile_native.native_predicate("ho-1", "true") is None
