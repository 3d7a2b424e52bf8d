"""One builder per IHE BALP pattern (https://profiles.ihe.net/ITI/BALP/): FHIR R4 AuditEvents as
pure functions of an `AuditContext` and the references of what happened.

Builders never touch storage, the clock (the context carries `when`) or a log, and never put
anything but ids and codes into an event: patients appear as `Patient/<id>` entities (type 1,
role 1) so that `AuditEvent?patient=<id>` finds every event about a client.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from gateway.audit import codes
from gateway.audit import parts as p
from gateway.audit.context import AuditContext

Json = p.Json


def _rest_subtype(interaction: str) -> codes.Code:
    if interaction not in codes.INTERACTIONS:
        raise ValueError(f"not a FHIR restful interaction: {interaction[:40]}")
    return (codes.RESTFUL_INTERACTION, interaction, interaction)


def _read(ctx: AuditContext, interaction: str, what: str, patient_ids: Sequence[str]) -> Json:
    # BALP Read: data flows server -> client, so the server is the Source Role ID.
    agents = [
        p.client_agent(ctx, codes.DESTINATION_ROLE),
        p.server_agent(ctx, codes.SOURCE_ROLE),
        *p.requestor_agents(ctx, codes.RECIPIENT),
    ]
    entities = [p.data_entity(what), *p.patient_entities(patient_ids)]
    subtype = _rest_subtype(interaction)
    return p.event(ctx, codes.REST, [subtype], codes.ACTION_READ, agents, entities)


def read(ctx: AuditContext, what: str, patient_ids: Sequence[str] = ()) -> Json:
    """BALP (Patient)Read: GET [type]/[id] answered; `what` is `Type/id`."""
    return _read(ctx, "read", what, patient_ids)


def vread(ctx: AuditContext, what: str, version: str, patient_ids: Sequence[str] = ()) -> Json:
    """BALP (Patient)Read with subtype vread: GET [type]/[id]/_history/[vid] answered."""
    return _read(ctx, "vread", f"{what}/_history/{version}", patient_ids)


def query_page(
    ctx: AuditContext,
    path: str,
    params: Sequence[tuple[str, str]],
    patient_ids: Sequence[str],
    interaction: str = "search-type",
) -> Json:
    """BALP (Patient)Query for ONE page of a search or history: the request (base64, personal
    values redacted) and every patient the page discloses. `path` is `CarePlan`,
    `CarePlan/1/_history`…; the caller builds one event per page it serves."""
    if interaction not in codes.PAGED_INTERACTIONS:
        raise ValueError(f"not a paged interaction: {interaction[:40]}")
    agents = [
        p.client_agent(ctx, codes.SOURCE_ROLE),
        p.server_agent(ctx, codes.DESTINATION_ROLE),
        *p.requestor_agents(ctx, codes.RECIPIENT),
    ]
    entities = [p.query_entity(path, params), *p.patient_entities(patient_ids)]
    subtype = _rest_subtype(interaction)
    return p.event(ctx, codes.REST, [subtype], codes.ACTION_EXECUTE, agents, entities)


def _write(ctx: AuditContext, interaction: str, what: str, patient_ids: Sequence[str]) -> Json:
    # BALP Create/Update/Delete: the request flows client -> server; the user is the author.
    agents = [
        p.client_agent(ctx, codes.SOURCE_ROLE),
        p.server_agent(ctx, codes.DESTINATION_ROLE),
        *p.requestor_agents(ctx, codes.AUTHOR),
    ]
    entities = [p.data_entity(what), *p.patient_entities(patient_ids)]
    action = codes.WRITE_ACTIONS[interaction]
    return p.event(ctx, codes.REST, [_rest_subtype(interaction)], action, agents, entities)


def create(ctx: AuditContext, what: str, patient_ids: Sequence[str] = ()) -> Json:
    """BALP (Patient)Create: `what` is the new `Type/id/_history/1` (or `Type/id`)."""
    return _write(ctx, "create", what, patient_ids)


def update(ctx: AuditContext, what: str, patient_ids: Sequence[str] = ()) -> Json:
    """BALP (Patient)Update: PUT [type]/[id]."""
    return _write(ctx, "update", what, patient_ids)


def patch(ctx: AuditContext, what: str, patient_ids: Sequence[str] = ()) -> Json:
    """BALP (Patient)Update with subtype patch: PATCH [type]/[id]."""
    return _write(ctx, "patch", what, patient_ids)


def delete(ctx: AuditContext, what: str, patient_ids: Sequence[str] = ()) -> Json:
    """BALP (Patient)Delete: DELETE [type]/[id]."""
    return _write(ctx, "delete", what, patient_ids)


def export(ctx: AuditContext, patient_id: str, what: Sequence[str]) -> Json:
    """BALP PrivacyDisclosure.Source (DCM 110106 Export, subtype disclose): data leaving the
    gateway other than as a REST answer (CDA export, rendered plan, final summary, a push to a
    partner). `ctx` names the recipient organisation; `what` the disclosed documents/resources."""
    agents = [
        p.server_agent(ctx, codes.SOURCE_ROLE),
        p.client_agent(ctx, codes.DESTINATION_ROLE),
        *p.requestor_agents(ctx, codes.RECIPIENT),
    ]
    entities = [p.patient_entity(patient_id), *(p.data_entity(w, codes.REPORT_ROLE) for w in what)]
    return p.event(ctx, codes.EXPORT, [codes.DISCLOSE], codes.ACTION_READ, agents, entities)


class Decision(StrEnum):
    """A consent decision and the AuditEvent.outcome it is recorded with."""

    PERMIT = codes.OUTCOME_SUCCESS
    PARTIAL = codes.OUTCOME_MINOR  # allowed, but some of the answer withheld or masked
    DENY = codes.OUTCOME_SERIOUS


def consent_decision(
    ctx: AuditContext,
    patient_id: str | None,
    decision: Decision,
    consent_ids: Sequence[str] = (),
    what: str | None = None,
    reason: str | None = None,
    token_id: str | None = None,
) -> Json:
    """BALP AuthZconsent (DCM 110113 Security Alert): a permit, partial or deny decision.

    Subtype AuthZ-Consent when Consents decided it (each an entity), else AuthZ-Role (custody or
    the absence of any permit). `reason` becomes outcomeDesc and must be a fixed phrase from the
    decision rules, never record data; `token_id` is the access token's jti.
    """
    agents = [
        p.client_agent(ctx, codes.APPLICATION),
        *p.requestor_agents(ctx, codes.RECIPIENT),
        p.server_agent(ctx, codes.AUTH_SERVER),
    ]
    entities = [p.patient_entity(patient_id)] if patient_id else []
    entities += [_consent_entity(c) for c in consent_ids]
    if what:
        entities.append(p.data_entity(what))
    if token_id:
        entities.append(_token_entity(token_id))
    subtype = codes.AUTHZ_CONSENT if consent_ids else codes.AUTHZ_ROLE
    return p.event(
        ctx,
        codes.SECURITY_ALERT,
        [subtype],
        codes.ACTION_EXECUTE,
        agents,
        entities,
        codes.SECURITY_SERVER,
        outcome=decision.value,
        outcome_desc=reason,
    )


def _consent_entity(consent_id: str) -> Json:
    return {"what": {"reference": f"Consent/{consent_id}"}, "type": p.coding(codes.CONSENT_TYPE)}


def _token_entity(token_id: str) -> Json:
    return {
        "what": {"identifier": {"value": codes.JTI_PREFIX + token_id}},
        "type": p.coding(codes.OAUTH_TOKEN_TYPE),
    }


def token_request(
    ctx: AuditContext,
    scope: str,
    token_id: str | None = None,
    granted_scope: str | None = None,
    error: str | None = None,
) -> Json:
    """IHE IUA ITI-71 / DCM 110114 User Authenticated (subtypes Login, Get Access Token): one
    POST /auth/token, issued or refused (`ctx.outcome`, `error` the OAuth error code).

    The recorded request holds grant type and requested scope only, never the client assertion
    (a credential). `token_id` is the issued token's jti.
    """
    agents = [
        p.client_agent(ctx, codes.APPLICATION),
        p.server_agent(ctx, codes.OAUTH_SERVICE),
        *p.requestor_agents(ctx, codes.RECIPIENT),
    ]
    form = [("grant_type", "client_credentials"), ("scope", scope)]
    entities = [p.query_entity("auth/token", form)]
    if token_id:
        entities.append(_issued_entity(token_id, granted_scope or scope))
    return p.event(
        ctx,
        codes.USER_AUTHENTICATED,
        [codes.LOGIN, codes.GET_ACCESS_TOKEN],
        codes.ACTION_EXECUTE,
        agents,
        entities,
        codes.SECURITY_SERVER,
        outcome_desc=error,
    )


def _issued_entity(token_id: str, scope: str) -> Json:
    return {
        "what": {"identifier": {"value": codes.JTI_PREFIX + token_id}},
        "type": p.coding(codes.SYSTEM_OBJECT),
        "role": p.coding(codes.SECURITY_RESOURCE_ROLE),
        "detail": [{"type": "scope", "valueString": scope}],
    }


def provenance(ctx: AuditContext, interaction: str, target: str, custodian_extension: str) -> Json:
    """R4 Provenance of one write made by a named professional: `target` is the version written
    (`Type/id/_history/n`), the author agent the acting PractitionerRole on behalf of the calling
    organisation, which also holds the Provenance (`custodian_extension`: the consent gate's
    custodian extension URL) so that it sees what it recorded."""
    if not ctx.practitioner_role_id or not ctx.organization_id:
        raise ValueError("a write's Provenance names the acting role and its organisation")
    org = {"reference": f"Organization/{ctx.organization_id}"}
    return {
        "resourceType": "Provenance",
        "extension": [{"url": custodian_extension, "valueReference": org}],
        "target": [{"reference": target}],
        "recorded": ctx.recorded,
        "activity": {
            "coding": [
                {"system": codes.DATA_OPERATION, "code": codes.PROVENANCE_ACTIVITY[interaction]}
            ]
        },
        "agent": [
            {
                "type": p.concept(codes.PROVENANCE_AUTHOR),
                "who": {"reference": f"PractitionerRole/{ctx.practitioner_role_id}"},
                "onBehalfOf": org,
            }
        ],
    }
