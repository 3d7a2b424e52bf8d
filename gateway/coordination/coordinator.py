"""The named coordinator (asiakasvastaava) of a client network: `CareTeam/{id}/$coordinator` (who
was it on a date) and `$designate-coordinator` (name a new one), plus the steps a handover's
acceptance shares with a designation.

Exactly one coordinator at a time: a change ends the current coordinator participant's period
and adds the new one from the same instant, in ONE transaction with the plan(s) that follow the
coordinator and a Provenance (gateway/coordination/network.py holds the pure rules). The reads
go through the caller's gate; nothing is written outside `common.apply`, nothing undated.
"""

from __future__ import annotations

from typing import Any

from gateway.consent.records import reference_key
from gateway.coordination import network
from gateway.coordination.common import (
    UPDATE,
    Params,
    apply,
    caller_org,
    conflict,
    next_version,
    now,
    ok,
    parameters,
    part,
    provenance_entry,
    put,
    read_ref,
    read_visible,
    refuse,
    search_visible,
    version_of,
    where,
)
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param
from gateway.search.dates import date_range

# A designation may be dated this far ahead of the server's clock (clocks differ a little).
SKEW_US = 5 * 60 * 1_000_000


# -- steps shared with the handover ---------------------------------------------------------------
def read_network(svc: Services, req: FhirRequest, id: str) -> dict[str, Any]:
    """The client network as the caller sees it (404 if hidden); 400 for another CareTeam."""
    team = read_visible(svc, req, "CareTeam", id)
    if not network.is_network(team):
        raise invalid("the CareTeam is not a client network (category LA28865-6)", "CareTeam")
    return team


def role_org(svc: Services, req: FhirRequest, role: str, path: str) -> str:
    """`Organization/<id>` of a stored PractitionerRole (400 naming `path` if there is none)."""
    try:
        found = read_ref(svc, req, role)
    except FhirError as err:
        if err.category is not Category.NOT_FOUND:
            raise
        raise invalid(f"{role} is not a known PractitionerRole", path) from None
    key = reference_key(found.get("organization"))
    if key is None or key[0] != "Organization":
        raise invalid(f"{role} names no organization", path)
    return "/".join(key)


def holders(svc: Services, req: FhirRequest, team: dict[str, Any]) -> set[str]:
    """Who holds the network: its managing organisations (and custodian extension), and the
    current coordinator's organisation."""
    refs = network.holder_refs(team) + [network.member(p) for p in network.open_coordinators(team)]
    found = set()
    for ref in refs:
        if ref and ref.startswith("Organization/"):
            found.add(ref)
        elif ref and ref.startswith("PractitionerRole/"):
            found.add(role_org(svc, req, ref, "CareTeam.participant.member"))
    return found


def check_holder(svc: Services, req: FhirRequest, team: dict[str, Any], rule: str) -> None:
    """403 unless the caller's organisation holds the network (no caller: auth off, trusted)."""
    org = caller_org(req)
    if org is not None and org not in holders(svc, req, team):
        raise refuse(
            rule,
            "only the network's managing organisation or the current coordinator's "
            "organisation may change its coordinator",
            "CareTeam.managingOrganization",
            req,
            f"CareTeam/{team['id']}",
        )


def writable(resource: dict[str, Any]) -> None:
    """409 when the caller sees only a redacted copy: it is never written back."""
    if network.is_masked(resource):
        raise conflict(
            "redacted-view",
            f"the caller sees a redacted {resource['resourceType']}; a holder makes this change",
            resource["resourceType"],
        )


def switched(
    team: dict[str, Any], role: str, org: str, when: str, note: str | None = None
) -> dict[str, Any]:
    """The CareTeam after the change (409 naming the rule it would break)."""
    writable(team)
    try:
        changed = network.switch(team, role, when, note)
    except network.Refused as no:
        path = where(no.path) if no.path in ("coordinator", "date") else no.path
        raise conflict(no.rule, no.message, path) from None
    return network.with_manager(changed, org)


def plan_entries(
    svc: Services, req: FhirRequest, team_id: str, role: str, org: str
) -> list[tuple[dict[str, Any], str]]:
    """(transaction entry, versioned reference) for each live plan on the network, following
    the new coordinator (author = its organisation)."""
    plans = search_visible(svc, req, "CarePlan", [("care-team", f"CareTeam/{team_id}")])
    out = []
    for plan in plans:
        if plan.get("status") not in network.LIVE_PLAN_STATUSES:
            continue
        writable(plan)
        out.append((put(network.follow(plan, role, org), version_of(plan)), next_version(plan)))
    return out


def open_handovers(svc: Services, req: FhirRequest, team_id: str) -> list[dict[str, Any]]:
    """The handover Tasks on this network still waiting for an answer, as the caller sees them."""
    return search_visible(
        svc,
        req,
        "Task",
        [
            ("code", "|".join(network.HANDOVER)),
            ("focus", f"CareTeam/{team_id}"),
            ("status", ",".join(network.OPEN_STATUSES)),
        ],
    )


def apply_once(
    svc: Services, req: FhirRequest, entries: list[dict[str, Any]], authority: str
) -> None:
    """`common.apply`, a version that changed since it was read answered as a 409."""
    try:
        apply(svc, req, entries, authority=authority)
    except FhirError as err:
        if err.category is not Category.PRECONDITION_FAILED:
            raise
        raise conflict(
            "changed-meanwhile",
            "the network, plan or handover changed while this request ran; read it and retry",
            "CareTeam",
        ) from None


def _at(when: str) -> int:
    """The first microsecond of the `date` parameter (400 naming it when it is no date)."""
    return date_range(when, where("date"))[0]


# -- $designate-coordinator -----------------------------------------------------------------------
def designate(svc: Services, req: FhirRequest) -> FhirResponse:
    params = Params.of(req, allowed={"coordinator", "date", "note"})
    role = params.ref("coordinator", required=True, types=("PractitionerRole",))
    when = params.date("date") or now(req)
    note = params.str("note")
    assert role is not None and req.id is not None
    if _at(when) > network.instant(now(req)) + SKEW_US:
        raise invalid("a designation may not be dated in the future", where("date"))
    team = read_network(svc, req, req.id)
    check_holder(svc, req, team, "network-holder")
    org = role_org(svc, req, role, where("coordinator"))
    first = network.is_first(team)
    entries = [put(switched(team, role, org, when, note), version_of(team))]
    previous = "" if first else network.member(network.current(team)) or ""  # exactly one
    targets = [next_version(team)]
    for entry, target in plan_entries(svc, req, req.id, role, org):
        entries.append(entry)
        targets.append(target)
    reason = "Asiakasvastaava nimettiin toisin (another coordinator was named)"
    for task in open_handovers(svc, req, req.id):
        writable(task)
        closed = network.closed_handover(task, "cancelled", "peruttu", when, reason)
        entries.append(put(closed, version_of(task)))
        targets.append(next_version(task))
    prov = provenance_entry(req, targets, UPDATE, note)
    prov["resource"]["activity"]["text"] = "designate-coordinator (asiakasvastaavan nimeäminen)"
    apply_once(svc, req, [*entries, prov], "network-holder")
    return ok(changed_answer(targets, previous, role, when))


def changed_answer(targets: list[str], previous: str, role: str, when: str) -> dict[str, Any]:
    """The Parameters answer of a change of coordinator."""
    return parameters(
        part("careteam", valueReference={"reference": targets[0]}),
        part("coordinator", valueReference={"reference": role}),
        part("start", valueDateTime=when),
        [part("previous", valueReference={"reference": previous})] if previous else [],
        [part("plan", valueReference={"reference": t}) for t in targets if t[:9] == "CarePlan/"],
        [part("task", valueReference={"reference": t}) for t in targets if t[:5] == "Task/"],
    )


# -- $coordinator ---------------------------------------------------------------------------------
def coordinator(svc: Services, req: FhirRequest) -> FhirResponse:
    """Who was the coordinator at `date` (default now; a partial date: its first instant, UTC,
    as R4 search reads it), and every coordinator the network has had."""
    params = Params.of(req, allowed={"date"})
    when = params.date("date") or now(req)
    assert req.id is not None
    team = read_network(svc, req, req.id)
    found = network.coordinators_at(team, _at(when))
    return ok(
        parameters(
            part("careteam", valueReference={"reference": f"CareTeam/{req.id}"}),
            part("date", valueDateTime=when),
            [part("coordinator", valueReference=p.get("member")) for p in found],
            [part("period", valuePeriod=p.get("period")) for p in found],
            [
                part(
                    "history",
                    part=[
                        part("coordinator", valueReference=p.get("member")),
                        part("period", valuePeriod=p.get("period")),
                    ],
                )
                for p in network.coordinator_history(team)
            ],
        )
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        name="designate-coordinator",
        handler=designate,
        resource_types=("CareTeam",),
        instance=True,
        title="Designate the coordinator (asiakasvastaavan nimeäminen)",
        description=(
            "Names the client network's coordinator from `date` (default now, never in the "
            "future): ends the current coordinator's period, adds the new participant, the live "
            "plan(s) on the network follow (author = the coordinator's organisation), open "
            "handovers are cancelled; one transaction with a Provenance. Only a holder of the "
            "network (a managing organisation or the current coordinator's) designates."
        ),
        parameters=(
            Param("coordinator", "Reference", min=1, documentation="the PractitionerRole"),
            Param("date", "dateTime", documentation="from when (default now)"),
            Param("note", "string"),
            Param("careteam", "Reference", use="out", min=1),
            Param("coordinator", "Reference", use="out", min=1),
            Param("start", "dateTime", use="out", min=1),
            Param("previous", "Reference", use="out", min=1),
            Param("plan", "Reference", use="out", max="*"),
            Param("task", "Reference", use="out", max="*"),
        ),
    ),
    Operation(
        name="coordinator",
        handler=coordinator,
        resource_types=("CareTeam",),
        instance=True,
        affects_state=False,
        title="The coordinator on a date (kuka oli asiakasvastaava)",
        description="Who was the network's coordinator at `date` (default now), and the history.",
        parameters=(
            Param("date", "dateTime"),
            Param("careteam", "Reference", use="out", min=1),
            Param("coordinator", "Reference", use="out"),
            Param("period", "Period", use="out"),
            Param("history", "Parameters", use="out", max="*"),
        ),
    ),
)
