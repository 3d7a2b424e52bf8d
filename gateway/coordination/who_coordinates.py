"""Who should coordinate a client's work-ability process (seed 003): `$who-should-coordinate`.

The rules are data (mappings/coordination/who-coordinates.json: ordered rows, the first whose
conditions hold decides); `recommend` is the pure evaluator and the operation only reads the
situation flags and answers Parameters. Nothing here writes, and no rule lives in an if-chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.coordination.common import Params, ok, parameters, part, read_ref
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param
from mappings import load

RULES_FILE = "coordination/who-coordinates.json"


@dataclass(frozen=True)
class Rule:
    """One row of the table: when its conditions hold, who coordinates and why."""

    id: str
    seed: str
    when: Mapping[str, bool]
    unit: str
    role: str
    work_ability_coordinator: str
    reason_fi: str
    reason_en: str

    def holds(self, situation: Mapping[str, bool]) -> bool:
        return all(situation.get(flag, False) is value for flag, value in self.when.items())

    def outcome(self) -> tuple[str, str, str]:
        return self.unit, self.role, self.work_ability_coordinator


@dataclass(frozen=True)
class Recommendation:
    """The deciding row, the rows that agree with it (their reasons are given too), and every
    row whose conditions held (some overridden by an earlier one)."""

    rule: Rule
    agreeing: tuple[Rule, ...]
    matched: tuple[str, ...]


def table() -> dict[str, Any]:
    return load(RULES_FILE)  # type: ignore[no-any-return]


def rules() -> tuple[Rule, ...]:
    return tuple(
        Rule(
            id=row["id"],
            seed=row["seed"],
            when=row["when"],
            unit=row["unit"],
            role=row["role"],
            work_ability_coordinator=row["work-ability-coordinator"],
            reason_fi=row["reason"]["fi"],
            reason_en=row["reason"]["en"],
        )
        for row in table()["rules"]
    )


def flags() -> tuple[str, ...]:
    """The situation flags the rules know (the operation's boolean parameters)."""
    return tuple(table()["flags"])


def recommend(situation: Mapping[str, bool]) -> Recommendation:
    """The first row whose conditions hold decides (the last row holds always)."""
    unknown = sorted(set(situation) - set(flags()))
    if unknown:
        raise ValueError(f"unknown situation flags: {', '.join(unknown)}")
    held = [r for r in rules() if r.holds(situation)]
    first = held[0]
    agreeing = tuple(r for r in held if r.outcome() == first.outcome())
    matched = tuple(r.id for r in held if r.when or r is first)  # the default only alone
    return Recommendation(first, agreeing, matched)


# -- the operation --------------------------------------------------------------------------------
def _coding(kind: str, code: str) -> dict[str, str]:
    data = table()
    return {
        "system": data["systems"][kind],
        "code": code,
        "display": data["codes"][kind][code]["fi"],
    }


def answer(found: Recommendation, patient: str | None = None) -> dict[str, Any]:
    """The Parameters answer of a recommendation."""
    rule = found.rule
    return parameters(
        [part("patient", valueReference={"reference": patient})] if patient else [],
        part("unit", valueCoding=_coding("unit", rule.unit)),
        part("role", valueCoding=_coding("role", rule.role)),
        part("work-ability-coordinator", valueCode=rule.work_ability_coordinator),
        part("rule", valueId=rule.id),
        [
            part(
                "reason",
                part=[
                    part("rule", valueId=r.id),
                    part("seed", valueString=table()["seeds"][r.seed]),
                    part("text", valueString=r.reason_fi),
                    part("text-en", valueString=r.reason_en),
                ],
            )
            for r in found.agreeing
        ],
        [part("matched-rule", valueId=rule_id) for rule_id in found.matched],
    )


def who_should_coordinate(svc: Services, req: FhirRequest) -> FhirResponse:
    names = flags()
    params = Params.of(req, allowed={*names, "patient"})
    situation: dict[str, bool] = {}
    for name in names:
        value = params.boolean(name)
        if value is not None:
            situation[name] = value
    patient = params.ref("patient", types=("Patient",))
    if patient is not None:
        read_ref(svc, req, patient)  # 404 unless the caller may see the client
    return ok(answer(recommend(situation), patient))


_FLAGS: dict[str, dict[str, str]] = table()["flags"]

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        name="who-should-coordinate",
        handler=who_should_coordinate,
        system=True,
        affects_state=False,
        # Reads nothing but the optional client: any network member with Patient read may ask.
        scope=("Patient", "r"),
        title="Who should coordinate (kuka koordinoi)",
        description=(
            "Recommends the coordinating unit and role, and whether the work-ability coordinator "
            "is the case manager, is consulted or is not needed, from the client's situation "
            "(seed 003; rules in mappings/coordination/who-coordinates.json, first match wins)."
        ),
        parameters=(
            *(Param(name, "boolean", documentation=text["en"]) for name, text in _FLAGS.items()),
            Param("patient", "Reference", documentation="the client, if the answer is about one"),
            Param("unit", "Coding", use="out", min=1),
            Param("role", "Coding", use="out", min=1),
            Param("work-ability-coordinator", "code", use="out", min=1),
            Param("rule", "id", use="out", min=1),
            Param("reason", "Parameters", use="out", min=1, max="*"),
            Param("matched-rule", "id", use="out", min=1, max="*"),
        ),
    ),
)
