"""Who may write what (writes.check_write): holders, Task owners, plan contributors, custodians.

The world: org-cust is p1's custodian and lets org-b read p1's records; org-c has no consent;
org-m manages p2, who has no Consent yet; p-new is not stored. r-a/r-b are roles of org-a/org-b.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.consent.context import ConsentContext
from gateway.consent.model import Caller
from gateway.consent.vocabulary import CUSTODIAN_EXTENSION, SECURITY_LABELS
from gateway.consent.writes import WriteRefused, check_write, stamp_custodian
from gateway.errors import FhirError
from tests.gateway.consent.builders import NOW, DictLoader, consent, patient, plan, provision, ref

Resource = dict[str, Any]
ROLES = [
    {"resourceType": "PractitionerRole", "id": "r-a", "organization": ref("Organization/org-a")},
    {"resourceType": "PractitionerRole", "id": "r-b", "organization": ref("Organization/org-b")},
]
TURVAKIELTO = (SECURITY_LABELS, "turvakielto")
LABEL = [{"system": SECURITY_LABELS, "code": "sensitive"}]


def custodian_ext(target: str) -> Resource:
    return {"url": CUSTODIAN_EXTENSION, "valueReference": ref(target)}


def task(**extra: Any) -> Resource:
    """p1's Task: requested by the custodian, owned by the partner org-b."""
    out: Resource = {
        "resourceType": "Task",
        "id": "t1",
        "status": "requested",
        "intent": "order",
        "for": ref("Patient/p1"),
        "requester": ref("Organization/org-cust"),
        "owner": ref("Organization/org-b"),
        "description": "Työkykyarvio",
    }
    return {**out, **extra}


def care_plan(**extra: Any) -> Resource:
    """p1's plan: authored by the custodian, org-b contributes."""
    out: Resource = {
        **plan(id="x1"),
        "status": "active",
        "intent": "plan",
        "author": ref("Organization/org-cust"),
        "contributor": [ref("Organization/org-b")],
        "activity": [{"detail": {"status": "scheduled"}}],
    }
    return {**out, **extra}


def privacy(id: str = "c9", client: str = "p1", custodian: str = "org-cust") -> Resource:
    return consent(provision("permit", "org-b"), id=id, client=client, custodian=custodian)


def world(*extra: Resource) -> ConsentContext:
    stored = [
        *ROLES,
        patient("p1"),
        patient("p2", managing="org-m"),
        consent(provision("permit", "org-b")),
        *extra,
    ]
    return ConsentContext(DictLoader(stored), NOW)


def write(
    org: str,
    interaction: str,
    old: Resource | None,
    new: Resource | None,
    *stored: Resource,
    role: str | None = None,
) -> Resource | None:
    ctx = world(*stored, *([old] if old else []))
    return check_write(Caller(org, role), interaction, old, new, ctx)


def refused(org: str, interaction: str, old: Any, new: Any, *stored: Resource) -> WriteRefused:
    with pytest.raises(WriteRefused) as info:
        write(org, interaction, old, new, *stored)
    return info.value


# -- rule 0 and 1 -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("interaction", "new"), [("update", task(status="ready")), ("delete", None)]
)
def test_a_target_the_caller_may_not_see_is_answered_as_absent(
    interaction: str, new: Resource | None
) -> None:
    err = refused("org-c", interaction, task(), new)
    assert err.hidden and err.status == 404 and err.rule == "hidden-target"
    assert "Task" not in err.message and err.path == ""


def test_a_visible_target_the_caller_may_not_change_is_forbidden_not_hidden() -> None:
    err = refused("org-b", "update", care_plan(contributor=[]), care_plan(status="revoked"))
    assert (err.hidden, err.status, err.rule, err.path) == (False, 403, "not-holder", "CarePlan")
    assert isinstance(err, FhirError)


def test_only_the_gateway_writes_audit_events() -> None:
    event = {"resourceType": "AuditEvent", "id": "a1"}
    assert refused("org-cust", "create", None, event).rule == "gateway-written"


def test_an_unknown_interaction_is_refused_and_inconsistent_arguments_are_errors() -> None:
    assert refused("org-cust", "export", None, task()).rule == "unknown-interaction"
    for interaction, old, new in [
        ("delete", None, None),
        ("delete", task(), task()),
        ("create", task(), task()),
        ("patch", None, task()),
        ("update", task(), None),
        ("update", task(), care_plan()),
    ]:
        with pytest.raises(ValueError):
            write("org-cust", interaction, old, new)


# -- rule 2: creating in one's own name -------------------------------------------------------
def test_a_requester_creates_work_for_a_partner_as_it_is() -> None:
    new = task(meta={"versionId": "7", "lastUpdated": "2020-01-01T00:00:00Z"})
    stored = write("org-cust", "create", None, new)
    assert stored is not None and stored is not new
    assert "meta" not in stored and "extension" not in stored  # volatile meta dropped; no stamp
    assert new["meta"]["versionId"] == "7"  # the input is unchanged


@pytest.mark.parametrize("rtype", ["Task", "ServiceRequest"])
@pytest.mark.parametrize(
    "requester", ["Organization/org-cust", "PractitionerRole/r-a", "PractitionerRole/r-unknown"]
)
def test_a_foreign_requester_is_refused(rtype: str, requester: str) -> None:
    new = {**task(), "resourceType": rtype, "requester": ref(requester)}
    err = refused("org-b", "create", None, new)
    assert (err.status, err.rule, err.path) == (403, "own-name", f"{rtype}.requester")
    assert requester not in err.message


def test_a_requester_may_be_the_callers_own_role() -> None:
    stored = write("org-b", "create", None, task(requester=ref("PractitionerRole/r-b")))
    assert stored is not None and "extension" not in stored


def test_a_record_the_creator_would_not_hold_is_stamped_with_its_custodianship() -> None:
    new = task()
    del new["requester"]  # only the partner (owner) is named: org-cust would not hold it
    stored = write("org-cust", "create", None, new)
    assert stored is not None
    assert stored["extension"] == [custodian_ext("Organization/org-cust")]
    assert "extension" not in new


def test_an_owner_naming_itself_is_still_stamped_so_it_holds_the_task_for_writing() -> None:
    new = task(owner=ref("Organization/org-cust"))
    del new["requester"]
    stored = write("org-cust", "update", None, new)  # update-as-create
    assert stored is not None and stored["extension"] == [custodian_ext("Organization/org-cust")]


@pytest.mark.parametrize("target", ["Organization/org-b", "PractitionerRole/r-a", "Patient/p1"])
def test_a_foreign_custodian_extension_is_refused(target: str) -> None:
    new = care_plan(extension=[custodian_ext(target)])
    err = refused("org-cust", "create", None, new)
    assert (err.rule, err.path) == ("foreign-custodian", "CarePlan.extension:custodian")


def test_an_own_custodian_extension_is_kept_once() -> None:
    new = care_plan(
        author=ref("Organization/org-b"), extension=[custodian_ext("PractitionerRole/r-b")]
    )
    stored = write("org-b", "create", None, new)
    assert stored is not None and stored["extension"] == new["extension"]


def test_a_practitioner_role_is_created_only_for_the_callers_organisation() -> None:
    mine = {
        "resourceType": "PractitionerRole",
        "id": "r-c",
        "organization": ref("Organization/org-c"),
    }
    assert write("org-c", "create", None, mine) is not None
    theirs = {**mine, "organization": ref("Organization/org-a")}
    assert refused("org-c", "create", None, theirs).path == "PractitionerRole.organization"


# -- rule 3: the client's record ----------------------------------------------------------------
def test_writing_into_the_record_of_a_client_the_caller_may_not_see_is_refused() -> None:
    new = care_plan(author=ref("Organization/org-c"), contributor=[])
    err = refused("org-c", "create", None, new)
    assert (err.rule, err.path) == ("invisible-client", "CarePlan.subject")
    # org-b sees p1 under consent, org-cust is the custodian: both may write into the record
    assert write("org-b", "create", None, {**new, "author": ref("Organization/org-b")})
    assert write("org-cust", "create", None, {**new, "author": ref("Organization/org-cust")})


def test_a_new_client_may_be_written_by_anyone() -> None:
    new = {**care_plan(author=ref("Organization/org-c")), "subject": ref("Patient/p-new")}
    assert write("org-c", "create", None, new) is not None
    pat = patient("p-new", managing="org-c")
    assert write("org-c", "create", None, pat) is not None


def test_the_patients_managing_organisation_writes_into_its_record() -> None:
    new = {
        **care_plan(author=ref("Organization/org-m"), contributor=[]),
        "subject": ref("Patient/p2"),
    }
    assert write("org-m", "create", None, new) is not None
    assert refused("org-b", "create", None, {**new, "author": ref("Organization/org-b")})


def test_a_holder_may_not_move_a_record_to_a_client_it_may_not_see() -> None:
    err = refused("org-cust", "update", task(), task(**{"for": ref("Patient/p2")}))
    assert (err.rule, err.path) == ("invisible-client", "Task.for")


def test_the_owner_updates_a_protected_clients_task_it_cannot_see_the_patient_of() -> None:
    old = task()
    ctx = ConsentContext(
        DictLoader([patient("p1", [TURVAKIELTO]), consent(provision("permit", "org-b")), old]), NOW
    )
    stored = check_write(Caller("org-b"), "update", old, task(status="accepted"), ctx)
    assert stored is not None and stored["status"] == "accepted"


# -- rule 4: the client's privacy Consent --------------------------------------------------------
def test_a_non_custodian_may_not_create_a_consent_naming_itself() -> None:
    err = refused("org-b", "create", None, privacy(custodian="org-b"))
    assert (err.rule, err.path) == ("consent-custodian", "Consent.patient")


def test_a_custodian_writes_the_clients_consents() -> None:
    assert write("org-cust", "create", None, privacy()) is not None
    old = privacy()
    assert write("org-cust", "update", old, {**old, "status": "inactive"}) is not None
    assert write("org-cust", "delete", old, None) is None


def test_a_consent_must_name_its_writer_as_organisation() -> None:
    err = refused("org-cust", "create", None, privacy(custodian="org-b"))
    assert (err.rule, err.path) == ("consent-organization", "Consent.organization")


def test_the_first_custodian_of_a_client_bootstraps_by_naming_itself() -> None:
    assert write("org-m", "create", None, privacy(client="p2", custodian="org-m")) is not None
    assert write("org-c", "create", None, privacy(client="p-new", custodian="org-c")) is not None
    # naming another organisation does not bootstrap
    assert refused("org-m", "create", None, privacy(client="p2", custodian="org-b")).rule == (
        "consent-custodian"
    )
    # nor may an organisation that cannot see the stored client take it over
    err = refused("org-c", "create", None, privacy(client="p2", custodian="org-c"))
    assert err.rule == "invisible-client"


def test_a_non_custodian_may_not_delete_or_move_a_consent() -> None:
    old = privacy()
    assert refused("org-b", "delete", old, None).rule == "not-holder"
    # a custodian of p1 that is not one of p2: moving the Consent to p2 is refused
    moved = {**old, "patient": ref("Patient/p2")}
    p2_consent = privacy(id="c-p2", client="p2", custodian="org-m")
    assert refused("org-cust", "update", old, moved, p2_consent).rule == "consent-custodian"
    # without a custodian yet, p2 is still a client org-cust may not see
    assert refused("org-cust", "update", old, moved).rule == "invisible-client"


def test_other_consents_follow_the_general_rules() -> None:
    treatment = {**privacy(custodian="org-b"), "scope": {"coding": [{"code": "treatment"}]}}
    assert write("org-b", "create", None, treatment) is not None


# -- rule 5: who changes an existing record ---------------------------------------------------
def test_the_task_owner_changes_its_work_state() -> None:
    new = task(
        status="in-progress",
        businessStatus={"text": "started"},
        note=[{"text": "aloitettu"}],
        executionPeriod={"start": "2026-11-01"},
        lastModified="2026-11-01T12:00:00Z",
        meta={"versionId": "9", "tag": [{"code": "x"}]},
    )
    stored = write("org-b", "patch", task(), new)
    assert stored is not None and stored["status"] == "in-progress"
    assert stored["meta"] == {"tag": [{"code": "x"}]}


def test_the_owner_acting_through_its_role_changes_status() -> None:
    old = task(owner=ref("PractitionerRole/r-b"))
    assert write("org-b", "update", old, {**old, "status": "accepted"}, role="r-b")


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("owner", ref("Organization/org-c")),
        ("for", ref("Patient/p-new")),
        ("requester", ref("Organization/org-b")),
        ("description", "jotain muuta"),
        ("input", [{"type": {"text": "x"}, "valueString": "y"}]),
    ],
)
def test_the_task_owner_may_not_change_anything_else(element: str, value: Any) -> None:
    err = refused("org-b", "update", task(), task(status="accepted", **{element: value}))
    assert (err.rule, err.path) == ("task-owner", f"Task.{element}")
    assert str(value) not in err.message


def test_the_task_owner_may_not_remove_an_element_or_delete() -> None:
    new = task()
    del new["description"]
    assert refused("org-b", "update", task(), new).path == "Task.description"
    assert refused("org-b", "delete", task(), None).rule == "task-owner"


def test_the_owner_may_not_set_meta_security() -> None:
    err = refused("org-b", "update", task(), task(status="accepted", meta={"security": LABEL}))
    assert (err.rule, err.path) == ("holder-security", "Task.meta.security")
    assert "meta.security is set by the record holder" in err.message


def test_the_requester_reassigns_and_edits_its_task_and_may_set_security() -> None:
    new = task(owner=ref("Organization/org-c"), description="uusi", meta={"security": LABEL})
    stored = write("org-cust", "update", task(), new)
    assert stored is not None and stored["owner"] == ref("Organization/org-c")


def test_a_holder_may_not_change_the_requester_to_another_organisation() -> None:
    err = refused("org-cust", "update", task(), task(requester=ref("Organization/org-b")))
    assert (err.rule, err.path) == ("own-name", "Task.requester")


def test_a_client_custodian_changes_a_record_held_by_others_keeping_its_requester() -> None:
    old = task(requester=ref("Organization/org-d"), owner=ref("Organization/org-e"))
    stored = write("org-cust", "update", old, {**old, "description": "korjattu"})
    assert stored is not None and stored["requester"] == ref("Organization/org-d")
    assert write("org-cust", "delete", old, None) is None


def test_a_contributor_edits_the_plans_activities() -> None:
    new = care_plan(activity=[{"detail": {"status": "completed"}}], note=[{"text": "ok"}])
    stored = write("org-b", "update", care_plan(), new)
    assert stored is not None and stored["activity"] == new["activity"]


def test_a_contributor_through_its_role_edits_the_plan() -> None:
    old = care_plan(contributor=[ref("PractitionerRole/r-b")])
    assert write("org-b", "update", old, {**old, "status": "completed"})


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("author", ref("Organization/org-b")),
        ("subject", ref("Patient/p-new")),
        ("contributor", [ref("Organization/org-b"), ref("Organization/org-c")]),
    ],
)
def test_a_contributor_may_not_change_who_the_plan_is_of_or_by(element: str, value: Any) -> None:
    err = refused("org-b", "update", care_plan(), care_plan(**{element: value}))
    assert (err.rule, err.path) == ("plan-contributor", f"CarePlan.{element}")


def test_a_contributor_may_not_change_security_or_custody_nor_delete() -> None:
    old = care_plan(meta={"security": LABEL})
    assert refused("org-b", "update", old, care_plan()).rule == "holder-security"
    stamped = care_plan(extension=[custodian_ext("Organization/org-b")])
    assert refused("org-b", "update", care_plan(), stamped).path == "CarePlan.extension:custodian"
    assert refused("org-b", "delete", care_plan(), None).rule == "plan-contributor"
    other = care_plan(extension=[{"url": "https://example.org/x", "valueString": "y"}])
    assert write("org-b", "update", care_plan(), other) is not None


def test_nobody_else_changes_another_organisations_directory_entry() -> None:
    org = {"resourceType": "Organization", "id": "org-a", "name": "A"}
    assert refused("org-c", "update", org, {**org, "name": "B"}).rule == "not-holder"


# -- stamping and purity ------------------------------------------------------------------------
def test_stamping_adds_the_extension_once_and_never_mutates() -> None:
    resource = care_plan(extension=[{"url": "https://example.org/x", "valueString": "y"}])
    before = copy.deepcopy(resource)
    once = stamp_custodian(resource, "org-b")
    twice = stamp_custodian(once, "org-b")
    assert resource == before
    assert once == twice and once["extension"][-1] == custodian_ext("Organization/org-b")
    assert len(once["extension"]) == 2
    once["extension"][0]["valueString"] = "z"
    assert resource == before  # no nested value is shared


ORGS = ["org-cust", "org-b", "org-c", "org-m"]
REFS = [
    *(f"Organization/{o}" for o in ORGS),
    "PractitionerRole/r-a",
    "PractitionerRole/r-b",
    "Practitioner/pr1",
]
CLIENTS = ["Patient/p1", "Patient/p2", "Patient/p-new"]


@st.composite
def resources(draw: st.DrawFn, rtype: str) -> Resource:
    def some(pool: list[str]) -> Any:
        return draw(st.one_of(st.none(), st.sampled_from(pool).map(ref)))

    fields: dict[str, Any] = {
        "Task": {"for": some(CLIENTS), "requester": some(REFS), "owner": some(REFS)},
        "CarePlan": {"subject": some(CLIENTS), "author": some(REFS)},
        "ServiceRequest": {"subject": some(CLIENTS), "requester": some(REFS)},
        "Consent": {"patient": some(CLIENTS)},
        "Organization": {},
    }[rtype]
    out: Resource = {"resourceType": rtype, "id": "w1"}
    out.update({k: v for k, v in fields.items() if v is not None})
    if rtype == "CarePlan" and draw(st.booleans()):
        out["contributor"] = [ref(draw(st.sampled_from(REFS)))]
    if rtype == "Consent":
        out["scope"] = privacy()["scope"]
        out["organization"] = [ref(f"Organization/{draw(st.sampled_from(ORGS))}")]
    if draw(st.booleans()):
        out["status"] = draw(st.sampled_from(["requested", "active", "completed"]))
    if draw(st.booleans()):
        out["meta"] = {"versionId": "1", "security": draw(st.sampled_from([[], LABEL]))}
    if draw(st.booleans()):
        out["extension"] = [custodian_ext(draw(st.sampled_from(REFS)))]
    return out


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_check_write_never_mutates_and_a_creator_always_holds_what_it_creates(
    data: st.DataObject,
) -> None:
    rtype = data.draw(
        st.sampled_from(["Task", "CarePlan", "ServiceRequest", "Consent", "Organization"])
    )
    interaction = data.draw(st.sampled_from(["create", "update", "patch", "delete"]))
    creating = interaction == "create" or (interaction == "update" and data.draw(st.booleans()))
    old = None if creating else data.draw(resources(rtype))
    new = None if interaction == "delete" else data.draw(resources(rtype))
    caller = Caller(data.draw(st.sampled_from(ORGS)), data.draw(st.sampled_from([None, "r-b"])))
    inputs = copy.deepcopy((old, new))
    try:
        stored = write(caller.organization, interaction, old, new, role=caller.role)
    except WriteRefused as err:
        assert err.status in (403, 404)
        stored = None
    assert (old, new) == inputs
    if stored is not None:
        assert stored is not new and "versionId" not in stored.get("meta", {})
        if old is None:
            assert caller.organization in world().holders(stored)
