"""Consent rules, one row per rule and edge: periods, nesting, purpose, class, revocation.

Every row: recipient "org-b" (unless named) reads CarePlan x1 of client p1 at NOW
(2026-11-01T12:00Z); the Consent is managed by "org-cust".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.consent.model import Reason, Verdict
from tests.gateway.consent.builders import (
    CAREMGT,
    NOW,
    V3_ACT_REASON,
    classes,
    consent,
    decide_one,
    plan,
    provision,
    purposes,
)

P, D, NA = Verdict.PERMIT, Verdict.DENY, Verdict.NOT_APPLICABLE
CAREPLAN = plan()
GOAL = plan("Goal", "g1")


def permit_b(**conditions: Any) -> dict[str, Any]:
    return consent(provision("permit", "org-b", **conditions))


ROWS: list[tuple[str, list[dict[str, Any]], dict[str, Any], Verdict, Reason | None]] = [
    # (name, consents, decide_one kwargs, verdict, reason)
    ("plain permit", [permit_b()], {}, P, Reason.CONSENT_PERMIT),
    ("no consent", [], {}, NA, Reason.NO_CONSENT),
    ("consent for another org", [consent(provision("permit", "org-c"))], {}, NA, None),
    (
        "consent of another client",
        [consent(provision("permit", "org-b"), client="p2")],
        {},
        NA,
        None,
    ),
    (
        "not a privacy consent",
        [{**permit_b(), "scope": {"coding": [{"code": "research"}]}}],
        {},
        NA,
        None,
    ),
    # Period: start and end inclusive (R4 datatypes.html#Period), partial dates cover their day.
    ("starts exactly now", [permit_b(period={"start": "2026-11-01T12:00:00Z"})], {}, P, None),
    ("ends exactly now", [permit_b(period={"end": "2026-11-01T12:00:00Z"})], {}, P, None),
    ("ends 1 µs before", [permit_b(period={"end": "2026-11-01T11:59:59.999999Z"})], {}, NA, None),
    (
        "starts 1 µs after",
        [permit_b(period={"start": "2026-11-01T12:00:00.000001Z"})],
        {},
        NA,
        None,
    ),
    ("ends today (date)", [permit_b(period={"end": "2026-11-01"})], {}, P, None),
    ("ended yesterday", [permit_b(period={"end": "2026-10-31"})], {}, NA, None),
    ("starts tomorrow", [permit_b(period={"start": "2026-11-02"})], {}, NA, None),
    ("zone offset", [permit_b(period={"end": "2026-11-01T14:00:00+02:00"})], {}, P, None),
    ("zone offset past", [permit_b(period={"end": "2026-11-01T13:59:59+02:00"})], {}, NA, None),
    (
        "start after end",
        [permit_b(period={"start": "2026-12-01", "end": "2026-10-01"})],
        {},
        NA,
        None,
    ),
    ("unreadable period permits nothing", [permit_b(period={"start": "eilen"})], {}, NA, None),
    (
        "a second's last µs",
        [permit_b(period={"end": "2026-11-01T12:00:00Z"})],
        {"now": NOW + timedelta(microseconds=999_999)},
        P,
        None,
    ),
    (
        "the next second",
        [permit_b(period={"end": "2026-11-01T12:00:00Z"})],
        {"now": NOW + timedelta(seconds=1)},
        NA,
        None,
    ),
    (
        "a day's last µs",
        [permit_b(period={"end": "2026-11-01"})],
        {"now": datetime(2026, 11, 1, 23, 59, 59, 999_999, UTC)},
        P,
        None,
    ),
    (
        "the next day",
        [permit_b(period={"end": "2026-11-01"})],
        {"now": datetime(2026, 11, 2, tzinfo=UTC)},
        NA,
        None,
    ),
    # Consent.dateTime: the consent holds from then on.
    ("given now", [{**permit_b(), "dateTime": "2026-11-01T12:00:00Z"}], {}, P, None),
    ("given later", [{**permit_b(), "dateTime": "2026-11-01T12:00:01Z"}], {}, NA, None),
    ("given earlier", [{**permit_b(), "dateTime": "2026-10-01"}], {}, P, None),
    ("unreadable dateTime", [{**permit_b(), "dateTime": "x"}], {}, NA, None),
    # Status: only active consents decide; inactive = revoked.
    *[
        (f"status {s}", [consent(provision("permit", "org-b"), status=s)], {}, NA, None)
        for s in ("inactive", "rejected", "draft", "proposed", "entered-in-error")
    ],
    (
        "revocation: top-level deny",
        [permit_b(), consent(provision("deny", "org-b"), id="c2")],
        {},
        D,
        Reason.CONSENT_DENY,
    ),
    (
        "deny decides whatever the id order",
        [consent(provision("deny", "org-b"), id="a"), permit_b()],
        {},
        D,
        None,
    ),
    (
        "prohibition: deny without actor",
        [permit_b(), consent(provision("deny"), id="c2")],
        {},
        D,
        Reason.PROHIBITION,
    ),
    (
        "root without type is a deny",
        [consent(provision(None, "org-b"))],
        {},
        D,
        Reason.CONSENT_DENY,
    ),
    ("permit without actor shares nothing", [consent(provision("permit"))], {}, NA, None),
    ("no provision decides nothing", [consent(None)], {}, NA, None),
    # Purpose: binds only when the caller states one.
    ("purpose matches", [permit_b(purpose=purposes("CAREMGT"))], {"purpose": CAREMGT}, P, None),
    (
        "purpose differs",
        [permit_b(purpose=purposes("CAREMGT"))],
        {"purpose": (V3_ACT_REASON, "HRESCH")},
        NA,
        None,
    ),
    (
        "purpose unstated: a purpose-bound permit does not apply",
        [permit_b(purpose=purposes("CAREMGT"))],
        {},
        NA,
        None,
    ),
    # Class.
    ("class lists CarePlan", [permit_b(class_=classes("CarePlan"))], {}, P, None),
    ("class lists only Goal", [permit_b(class_=classes("Goal"))], {}, NA, None),
    (
        "class by profile",
        [permit_b(class_=[{"code": "http://x/p"}])],
        {"resource": {**CAREPLAN, "meta": {"profile": ["http://x/p"]}}},
        P,
        None,
    ),
    # Action.
    (
        "action access",
        [
            permit_b(
                action=[
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                "code": "access",
                            }
                        ]
                    }
                ]
            )
        ],
        {},
        P,
        None,
    ),
    (
        "action correct only",
        [
            permit_b(
                action=[
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                "code": "correct",
                            }
                        ]
                    }
                ]
            )
        ],
        {},
        NA,
        None,
    ),
    # Data.
    (
        "deny this instance",
        [
            consent(
                provision(
                    "permit",
                    "org-b",
                    provision=[
                        provision(
                            "deny",
                            data=[
                                {"meaning": "instance", "reference": {"reference": "CarePlan/x1"}}
                            ],
                        )
                    ],
                )
            )
        ],
        {},
        D,
        None,
    ),
    (
        "deny another instance",
        [
            consent(
                provision(
                    "permit",
                    "org-b",
                    provision=[
                        provision(
                            "deny",
                            data=[
                                {"meaning": "instance", "reference": {"reference": "CarePlan/x2"}}
                            ],
                        )
                    ],
                )
            )
        ],
        {},
        P,
        None,
    ),
    (
        "deny dependents of another: unknown, so deny",
        [
            consent(
                provision(
                    "permit",
                    "org-b",
                    provision=[
                        provision(
                            "deny",
                            data=[
                                {"meaning": "dependents", "reference": {"reference": "CarePlan/x2"}}
                            ],
                        )
                    ],
                )
            )
        ],
        {},
        D,
        None,
    ),
    # Nesting: children flip and are exceptions; the deny for the actor, class or period wins.
    (
        "nested deny for Goal: CarePlan",
        [permit_b(provision=[provision("deny", class_=classes("Goal"))])],
        {},
        P,
        None,
    ),
    (
        "nested deny for Goal: Goal",
        [permit_b(provision=[provision("deny", class_=classes("Goal"))])],
        {"resource": GOAL},
        D,
        Reason.CONSENT_DENY,
    ),
    (
        "typeless nested flips to deny",
        [permit_b(provision=[provision(None, class_=classes("Goal"))])],
        {"resource": GOAL},
        D,
        None,
    ),
    (
        "nested deny period now",
        [permit_b(provision=[provision("deny", period={"start": "2026-11-01"})])],
        {},
        D,
        None,
    ),
    (
        "nested deny period past",
        [permit_b(provision=[provision("deny", period={"end": "2026-10-31"})])],
        {},
        P,
        None,
    ),
    (
        "exception to the exception",
        [
            permit_b(
                provision=[
                    provision(
                        "deny",
                        class_=classes("Goal"),
                        provision=[provision(None, period={"start": "2026-10-01"})],
                    )
                ]
            )
        ],
        {"resource": GOAL},
        P,
        None,
    ),
    (
        "exception outside its period",
        [
            permit_b(
                provision=[
                    provision(
                        "deny",
                        class_=classes("Goal"),
                        provision=[provision(None, period={"end": "2026-10-31"})],
                    )
                ]
            )
        ],
        {"resource": GOAL},
        D,
        None,
    ),
    (
        "siblings: the deny wins",
        [
            permit_b(
                provision=[
                    provision("permit", class_=classes("CarePlan")),
                    provision("deny", class_=classes("CarePlan")),
                ]
            )
        ],
        {},
        D,
        None,
    ),
    (
        "mikko: nested deny for another actor",
        [permit_b(provision=[provision("deny", "org-c")])],
        {"org": "org-c"},
        D,
        Reason.CONSENT_DENY,
    ),
    (
        "mikko: named recipient unaffected",
        [permit_b(provision=[provision("deny", "org-c")])],
        {},
        P,
        None,
    ),
    (
        "nested deny inherits purpose",
        [permit_b(purpose=purposes("CAREMGT"), provision=[provision("deny", "org-c")])],
        {"org": "org-c", "purpose": (V3_ACT_REASON, "HRESCH")},
        NA,
        None,
    ),
    (
        "nested deny inherits period",
        [permit_b(period={"end": "2026-10-31"}, provision=[provision("deny", "org-c")])],
        {"org": "org-c"},
        NA,
        None,
    ),
    (
        "nested deny wins over another consent",
        [
            consent(provision("permit", "org-c"), id="c0"),
            permit_b(provision=[provision("deny", "org-c")]),
        ],
        {"org": "org-c"},
        D,
        None,
    ),
    (
        "deny with exceptions (opt-out, permit one)",
        [consent(provision("deny", provision=[provision("permit", "org-b")]))],
        {},
        P,
        None,
    ),
    (
        "deny with exceptions, others",
        [consent(provision("deny", provision=[provision("permit", "org-b")]))],
        {"org": "org-c"},
        D,
        Reason.PROHIBITION,
    ),
    # PractitionerRole recipients.
    (
        "role named, caller acts as it",
        [consent(provision("permit", "PractitionerRole/r1"))],
        {"role": "r1"},
        P,
        None,
    ),
    (
        "role named, caller without role",
        [consent(provision("permit", "PractitionerRole/r1"))],
        {},
        NA,
        None,
    ),
    (
        "org deny binds all its roles",
        [permit_b(), consent(provision("deny", "org-b"), id="c2")],
        {"role": "r1"},
        D,
        None,
    ),
    # Conditions we cannot evaluate: met for a deny, unmet for a permit (fail closed).
    ("permit with securityLabel", [permit_b(securityLabel=[{"code": "R"}])], {}, NA, None),
    (
        "deny with securityLabel",
        [permit_b(), consent(provision("deny", "org-b", securityLabel=[{"code": "R"}]), id="c2")],
        {},
        D,
        None,
    ),
    (
        "permit to a custodian actor",
        [
            consent(
                provision(
                    "permit",
                    **{
                        "actor": [
                            {
                                "role": {"coding": [{"code": "CST"}]},
                                "reference": {"reference": "Organization/org-b"},
                            }
                        ]
                    },
                )
            )
        ],
        {},
        NA,
        None,
    ),
    (
        "deny naming a Practitioner",
        [permit_b(), consent(provision("deny", "Practitioner/p9"), id="c2")],
        {},
        D,
        None,
    ),
    (
        "deny with unreadable period",
        [permit_b(), consent(provision("deny", "org-b", period={"end": "?"}), id="c2")],
        {},
        D,
        None,
    ),
]


@pytest.mark.parametrize(
    ("consents", "kwargs", "verdict", "reason"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_consent_rule(
    consents: list[dict[str, Any]], kwargs: dict[str, Any], verdict: Verdict, reason: Reason | None
) -> None:
    kwargs = dict(kwargs)
    org = kwargs.pop("org", "org-b")
    resource = kwargs.pop("resource", CAREPLAN)
    decision = decide_one(org, resource, consents, **kwargs)
    assert decision.verdict is verdict
    if reason is not None:
        assert decision.reason is reason


def test_deciding_consent_is_named_for_audit() -> None:
    consents = [consent(provision("permit", "org-b"), id="c-permit")]
    assert decide_one("org-b", CAREPLAN, consents).consent == "c-permit"
    consents.append(consent(provision("deny"), id="c-prohibit"))
    decision = decide_one("org-b", CAREPLAN, consents)
    assert (decision.consent, decision.client) == ("c-prohibit", "p1")
