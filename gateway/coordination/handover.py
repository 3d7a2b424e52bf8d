"""The escorted handover of the coordinator (saattaen vaihtaen): `CareTeam/{id}/$handover`
proposes, `Task/{id}/$accept-handover` / `$reject-handover` answer, `Task/$overdue-handovers`
reports the unanswered ones past their window.

Until the receiver accepts, the current coordinator stays responsible; acceptance switches the
coordinator, the plan(s) and the Task in ONE transaction with a Provenance. Only the receiver
answers; a handover past its answer-by window is reported and never accepted. Nothing here
writes outside `common.apply`, and a refused request changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.coordination import network
from gateway.coordination.common import (
    UPDATE,
    Params,
    acting_role,
    apply,
    body_of,
    caller_org,
    conflict,
    next_version,
    now,
    ok,
    parameters,
    part,
    provenance_entry,
    put,
    read_visible,
    refuse,
    search_visible,
    version_of,
    where,
)
from gateway.coordination.coordinator import (
    apply_once,
    changed_answer,
    check_holder,
    open_handovers,
    plan_entries,
    read_network,
    role_org,
    switched,
    writable,
)
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, Param
from gateway.search.dates import date_range

ANSWER_WINDOW = timedelta(days=14)  # the default answer-by: two weeks from the proposal
TITLE = "Asiakasvastaavan vaihto saattaen vaihtaen (escorted handover of the coordinator)"


# -- $handover ------------------------------------------------------------------------------------
def propose(svc: Services, req: FhirRequest) -> FhirResponse:
    params = Params.of(req, allowed={"to", "reason", "answer-by", "note"})
    to = params.ref("to", required=True, types=("PractitionerRole",))
    reason = params.coding("reason", required=True)
    answer_by = params.date("answer-by") or (req.gate.now + ANSWER_WINDOW).date().isoformat()
    note = params.str("note")
    assert to is not None and reason is not None and req.id is not None
    if reason["system"] != network.HANDOVER_REASON:
        raise invalid(f"reason is a code of {network.HANDOVER_REASON}", where("reason"))
    if date_range(answer_by, where("answer-by"))[1] < network.instant(now(req)):
        raise invalid("answer-by must not be in the past", where("answer-by"))
    team = read_network(svc, req, req.id)
    check_holder(svc, req, team, "handover-proposer")
    role_org(svc, req, to, where("to"))
    if team.get("status") != "active":
        raise conflict("network-active", "the network is not active", "CareTeam.status")
    current = current_member(team)
    if current == to:
        raise conflict("already-coordinator", "this role is the coordinator already", where("to"))
    if any(_requester(t) == current for t in open_handovers(svc, req, req.id)):
        raise _one_open()
    task = _task(req, team, current or "", to, reason, answer_by, note)
    condition = "&".join(
        [
            f"code={'|'.join(network.HANDOVER)}",
            f"focus=CareTeam/{req.id}",
            f"requester={current}",
            f"status={','.join(network.OPEN_STATUSES)}",
        ]
    )
    entry = {
        "resource": task,
        "request": {"method": "POST", "url": "Task", "ifNoneExist": condition},
    }
    (created,) = apply(svc, req, [entry], authority="handover-proposer")
    if created.status != 201:  # another proposal won the race: it stands, this one is not made
        raise _one_open()
    return ok(body_of(created), 201)


def _one_open() -> FhirError:
    return conflict(
        "one-open-handover",
        "the network already has an open handover; it must be answered first",
        "Task.focus",
    )


def _task(
    req: FhirRequest,
    team: dict[str, Any],
    current: str,
    to: str,
    reason: dict[str, str],
    answer_by: str,
    note: str | None,
) -> dict[str, Any]:
    stamp = now(req)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "businessStatus": _business("lahetetty"),
        "intent": "order",
        "code": {"coding": [{"system": network.TASK_TYPE, "code": network.HANDOVER[1]}]},
        "description": TITLE,
        "focus": {"reference": f"CareTeam/{team['id']}"},
        "for": team.get("subject"),
        "authoredOn": stamp,
        "lastModified": stamp,
        "requester": {"reference": current},
        "owner": {"reference": to},
        "restriction": {"period": {"end": answer_by}},
        "reasonCode": {"coding": [reason]},
    }
    if note:
        task["note"] = [{"time": stamp, "text": note}]
    return task


def _business(code: str) -> dict[str, Any]:
    return {"coding": [{"system": network.BUSINESS_STATUS, "code": code}]}


def _requester(task: dict[str, Any]) -> str | None:
    return network.member({"member": task.get("requester")})


def current_member(team: dict[str, Any]) -> str | None:
    """The current coordinator's reference; 409 when the network has none or several."""
    try:
        return network.member(network.current(team))
    except network.Refused as no:
        raise conflict(no.rule, no.message, no.path) from None


# -- answering: the receiver only -----------------------------------------------------------------
def open_handover(svc: Services, req: FhirRequest) -> dict[str, Any]:
    """The handover Task of the request, if the caller is its receiver and it is still open."""
    assert req.id is not None
    task = read_visible(svc, req, "Task", req.id)
    if not network.is_handover(task):
        raise invalid("the Task is not a coordinator handover", "Task.code")
    owner = network.member({"member": task.get("owner")}) or ""
    org, role = caller_org(req), acting_role(req)
    if org is not None:
        owner_org = role_org(svc, req, owner, "Task.owner") if owner else None
        if org != owner_org or role not in (None, owner):
            raise refuse(
                "handover-receiver",
                "only the receiving coordinator (the Task's owner) answers a handover",
                "Task.owner",
                req,
                f"Task/{req.id}",
            )
    if task.get("status") not in network.OPEN_STATUSES:
        raise conflict("handover-closed", "the handover has been answered already", "Task.status")
    writable(task)
    return task


def overdue(task: dict[str, Any], at_us: int) -> bool:
    """Whether the answer-by window (restriction.period.end, inclusive) is over at `at_us`."""
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    return isinstance(end, str) and date_range(end)[1] < at_us


def accept(svc: Services, req: FhirRequest) -> FhirResponse:
    note = Params.of(req, allowed={"note"}).str("note")
    task = open_handover(svc, req)
    when = now(req)
    if overdue(task, network.instant(when)):
        raise conflict(
            "handover-overdue",
            "the answer-by window is over; the current coordinator stays (propose anew)",
            "Task.restriction.period.end",
        )
    team = _network_of(svc, req, task)
    owner = network.member({"member": task.get("owner")}) or ""
    previous = current_member(team)
    if previous != _requester(task):
        raise conflict(
            "handover-stale",
            "the coordinator changed after this handover was proposed",
            "Task.requester",
        )
    org = role_org(svc, req, owner, "Task.owner")
    entries = [put(switched(team, owner, org, when), version_of(team))]
    targets = [next_version(team)]
    for entry, target in plan_entries(svc, req, team["id"], owner, org):
        entries.append(entry)
        targets.append(target)
    done = network.closed_handover(task, "completed", "valmis", when)
    done["output"] = [
        {"type": {"text": "CareTeam"}, "valueReference": {"reference": targets[0]}},
    ]
    if note:
        done["note"] = [*(done.get("note") or []), {"time": when, "text": note}]
    entries.append(put(done, version_of(task)))
    targets.append(next_version(task))
    activity = {"system": network.TASK_TYPE, "code": network.HANDOVER[1]}
    prov = provenance_entry(req, targets, activity, _reason_text(task))
    prov["resource"]["activity"]["text"] = "accept-handover (vaihto hyväksytty)"
    apply_once(svc, req, [*entries, prov], "handover-receiver")
    return ok(changed_answer(targets, previous or "", owner, when))


def _network_of(svc: Services, req: FhirRequest, task: dict[str, Any]) -> dict[str, Any]:
    key = network.member({"member": task.get("focus")}) or ""
    if not key.startswith("CareTeam/"):
        raise invalid("a handover's focus is its client network (CareTeam)", "Task.focus")
    try:
        return read_network(svc, req, key.split("/", 1)[1])
    except FhirError as err:
        if err.category is not Category.NOT_FOUND:
            raise
        raise conflict(
            "receiver-consent",
            "the receiving organisation may not see the client's network (no consent yet)",
            "Task.focus",
        ) from None


def _reason_text(task: dict[str, Any]) -> str | None:
    codings = (task.get("reasonCode") or {}).get("coding") or [{}]
    return codings[0].get("code")


def reject(svc: Services, req: FhirRequest) -> FhirResponse:
    reason = Params.of(req, allowed={"reason"}).str("reason", required=True)
    task = open_handover(svc, req)
    when = now(req)
    rejected = network.closed_handover(task, "rejected", "hylatty", when, reason)
    target = next_version(task)
    prov = provenance_entry(req, [target], UPDATE, reason)
    prov["resource"]["activity"]["text"] = "reject-handover (vaihto hylätty)"
    apply_once(svc, req, [put(rejected, version_of(task)), prov], "handover-receiver")
    return ok(parameters(part("task", valueReference={"reference": target})))


# -- $overdue-handovers ---------------------------------------------------------------------------
def overdue_handovers(svc: Services, req: FhirRequest) -> FhirResponse:
    """The open handovers past their window that the caller may see; changes nothing."""
    at = Params.of(req, allowed={"date"}).date("date") or now(req)
    at_us = date_range(at, where("date"))[0]
    criteria = [
        ("code", "|".join(network.HANDOVER)),
        ("status", ",".join(network.OPEN_STATUSES)),
    ]
    late = [t for t in search_visible(svc, req, "Task", criteria) if overdue(t, at_us)]
    late.sort(key=lambda t: date_range(t["restriction"]["period"]["end"])[1])
    return ok(parameters(part("date", valueDateTime=at), [_late(t) for t in late]))


def _late(task: dict[str, Any]) -> dict[str, Any]:
    return part(
        "handover",
        part=[
            part("task", valueReference={"reference": f"Task/{task['id']}"}),
            part("careteam", valueReference=task.get("focus")),
            part("patient", valueReference=task.get("for")),
            part("requester", valueReference=task.get("requester")),
            part("owner", valueReference=task.get("owner")),
            part("answer-by", valueDate=task["restriction"]["period"]["end"]),
            part("status", valueCode=task.get("status")),
        ],
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        name="handover",
        handler=propose,
        resource_types=("CareTeam",),
        instance=True,
        title="Propose an escorted handover (saattaen vaihtaen)",
        description=(
            "Proposes the network's coordinator role to `to`: a coordinator-handover Task "
            "(requester the current coordinator, owner the proposed PractitionerRole, answer by "
            "`answer-by`, default 14 days). Only a holder of the network proposes; one open "
            "handover per network."
        ),
        parameters=(
            Param("to", "Reference", min=1, documentation="the proposed PractitionerRole"),
            Param("reason", "Coding", min=1, documentation="handover-reason"),
            Param("answer-by", "date"),
            Param("note", "string"),
            Param("return", "Task", use="out", min=1),
        ),
    ),
    Operation(
        name="accept-handover",
        handler=accept,
        resource_types=("Task",),
        instance=True,
        title="Accept the handover (ottaa koppi)",
        description=(
            "The receiver accepts: the old coordinator's period ends, the new one starts, the "
            "plan(s) follow and the Task completes, in one transaction with a Provenance. Never "
            "past the answer-by window."
        ),
        parameters=(
            Param("note", "string"),
            Param("careteam", "Reference", use="out", min=1),
        ),
    ),
    Operation(
        name="reject-handover",
        handler=reject,
        resource_types=("Task",),
        instance=True,
        title="Reject the handover",
        description="The receiver rejects, with a reason; the current coordinator stays.",
        parameters=(
            Param("reason", "string", min=1),
            Param("task", "Reference", use="out", min=1),
        ),
    ),
    Operation(
        name="overdue-handovers",
        handler=overdue_handovers,
        resource_types=("Task",),
        affects_state=False,
        title="Handovers past their answer-by window",
        description="Open handovers the caller may see whose window is over; changes nothing.",
        parameters=(
            Param("date", "dateTime", documentation="as of (default now)"),
            Param("handover", "Parameters", use="out", max="*"),
        ),
    ),
)
