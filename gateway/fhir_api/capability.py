"""The CapabilityStatement at GET [base]/metadata (http://hl7.org/fhir/R4/capabilitystatement.html).

It lists exactly what this gateway serves: the resource types of `RESOURCE_TYPES`, the
interactions routed in routes.py and the search parameters of `gateway.search.registry`. It is
built once (cached) and only the request base is filled in per request; it must never claim an
interaction, format or parameter that is not implemented.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson

import fhir_profiles
import gateway
from gateway.fhir_api.context import RESOURCE_TYPES, FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import Operation, capability_entry
from gateway.search.registry import SearchParam, params_for
from gateway.security.authority import token_url

# Type-level interactions every served type supports (TypeRestfulInteraction, R4).
TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
# System-level interactions (SystemRestfulInteraction, R4); no system-wide search.
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system")
FORMATS = ("application/fhir+json", "application/fhir+xml")
PATCH_FORMATS = ("application/json-patch+json",)
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def _search_param(p: SearchParam) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": p.code, "definition": p.url, "type": p.type}
    if p.description:
        entry["documentation"] = p.description
    return entry


def _reference_params(resource_type: str) -> list[SearchParam]:
    ps = params_for(resource_type).values()
    return sorted((p for p in ps if p.type == "reference"), key=lambda p: p.code)


def search_includes(resource_type: str) -> list[str]:
    """`_include` values for a type: each of its reference parameters, as `Type:param`."""
    return [f"{resource_type}:{p.code}" for p in _reference_params(resource_type)]


def search_revincludes(resource_type: str) -> list[str]:
    """`_revinclude` values for a type: served types' reference parameters that can point at it
    (a parameter without declared targets may point at any type)."""
    out = []
    for source in RESOURCE_TYPES:
        for p in _reference_params(source):
            if not p.targets or resource_type in p.targets:
                out.append(f"{source}:{p.code}")
    return out


def supported_profiles(resource_type: str) -> list[str]:
    """Our profiles of a type (fhir_profiles/profiles): writes are validated against them."""
    return sorted(
        sd["url"]
        for sd in fhir_profiles.structure_definitions().values()
        if sd.get("kind") == "resource" and sd.get("type") == resource_type
    )


# Subscriptions Backport IG: the SubscriptionTopics this server supports (R4 has no
# SubscriptionTopic resource; the topics are data in fhir_profiles/topics/).
TOPIC_CANONICAL = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "capabilitystatement-subscriptiontopic-canonical"
)


def resource_capability(
    resource_type: str, operations: tuple[Operation, ...] = ()
) -> dict[str, Any]:
    """The rest.resource entry of one served type."""
    entry = {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchInclude": search_includes(resource_type),
        "searchRevInclude": search_revincludes(resource_type),
        "searchParam": [
            _search_param(p)
            for p in sorted(params_for(resource_type).values(), key=lambda p: p.code)
        ],
    }
    profiles = supported_profiles(resource_type)
    if profiles:
        entry["supportedProfile"] = profiles
    ops = [capability_entry(op) for op in operations if resource_type in op.resource_types]
    if ops:
        entry["operation"] = ops
    if resource_type == "Subscription":  # the topics a Subscription.criteria may name
        entry["extension"] = [
            {"url": TOPIC_CANONICAL, "valueCanonical": url}
            for url in sorted(fhir_profiles.load_topics_data())
        ]
    return entry


@cache
def _static_part(operations: tuple[Operation, ...] = ()) -> tuple[dict[str, Any], orjson.Fragment]:
    """Everything but the request base, built on first use and kept for the process."""
    head = {
        "resourceType": "CapabilityStatement",
        "name": "FhirPlanGateway",
        "title": "fhir-plan-gateway FHIR R4 server",
        "status": "active",
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "publisher": "fhir-plan-gateway",
        "kind": "instance",
        "software": {"name": "fhir-plan-gateway", "version": gateway.__version__},
        "fhirVersion": "4.0.1",
        "format": list(FORMATS),
        "patchFormat": list(PATCH_FORMATS),
    }
    resources = [resource_capability(t, operations) for t in RESOURCE_TYPES]
    # Pre-serialised: the large part is written out verbatim on every request.
    return head, orjson.Fragment(orjson.dumps(resources))


def smart_security(token_endpoint: str) -> dict[str, Any]:
    """rest.security for SMART Backend Services (http://hl7.org/fhir/smart-app-launch/
    conformance.html: the oauth-uris extension names the token endpoint)."""
    return {
        "service": [{"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}]}],
        "description": (
            "SMART Backend Services: client_credentials with private_key_jwt. Optional request "
            "headers: X-Acting-Practitioner-Role (a PractitionerRole of the calling "
            "organisation), X-Purpose-Of-Use (a v3-ActReason code, compared with Consent "
            "provision.purpose), X-Request-Id (echoed, recorded in AuditEvents). What an "
            "organisation sees follows the clients' patient-privacy Consents; hidden data "
            "answers as if it did not exist."
        ),
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [{"url": "token", "valueUri": token_endpoint}],
            }
        ],
    }


def build(
    base: str, token_endpoint: str | None = None, operations: tuple[Operation, ...] = ()
) -> dict[str, Any]:
    """The CapabilityStatement for a service reached at `base` (e.g. http://host/fhir); with
    `token_endpoint` when every FHIR request must carry a bearer token; listing `operations`
    (rest.resource.operation per type, rest.operation for the system level)."""
    head, resources = _static_part(operations)
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": (
            "Plan exchange for the client's named coordinator (asiakasvastaava), shared "
            "client plan (asiakassuunnitelma) and network responsibilities."
        ),
    }
    if token_endpoint:
        rest["security"] = smart_security(token_endpoint)
    rest["resource"] = resources
    rest["interaction"] = [{"code": code} for code in SYSTEM_INTERACTIONS]
    system_ops = [capability_entry(op) for op in operations if op.system]
    if system_ops:
        rest["operation"] = system_ops
    return {
        **head,
        "implementation": {"description": "fhir-plan-gateway", "url": base},
        "rest": [rest],
    }


def capability_statement(svc: Services, req: FhirRequest) -> FhirResponse:
    # Security is advertised only where it is enforced (settings.require_auth).
    token = (
        token_url(svc.settings, req.base.removesuffix("/fhir"))
        if svc.settings.require_auth
        else None
    )
    return FhirResponse(200, build(req.base, token, tuple(svc.operations)))
