"""Our conformance resources, read-only: the profiles, extensions, CodeSystems, ValueSets and
Questionnaire compiled from fhir_profiles/fsh, and the OperationDefinitions of the `$`-operations.

Public like /metadata (they describe the API, never a client). Served from the compiled files in
memory; they are never stored, so nobody can change them through the API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import fhir_profiles
from gateway.errors import Category, FhirError, invalid
from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
from gateway.fhir_api.operations import definitions
from gateway.security.scopes import CONFORMANCE_TYPES

Interaction = Callable[[Services, FhirRequest], FhirResponse]
TYPES = CONFORMANCE_TYPES  # served read-only, public (security/scopes.py)

# Search parameters these read-only endpoints understand (conformance resources are few).
SEARCH_PARAMS = frozenset({"url", "_id", "name", "_count", "_format", "_pretty"})


@cache
def _compiled(resource_type: str) -> Mapping[str, dict[str, Any]]:
    by_url = {
        "StructureDefinition": fhir_profiles.structure_definitions,
        "CodeSystem": fhir_profiles.code_systems,
        "ValueSet": fhir_profiles.value_sets,
        "Questionnaire": fhir_profiles.questionnaires,
    }[resource_type]()
    return {r["id"]: r for r in by_url.values()}


def _all(svc: Services, resource_type: str) -> Mapping[str, dict[str, Any]]:
    if resource_type == "OperationDefinition":
        return definitions(svc.operations)
    return _compiled(resource_type)


def reader(rtype: str) -> Interaction:
    """GET [base]/<rtype>/<id>."""

    def read(svc: Services, req: FhirRequest) -> FhirResponse:
        rid = req.id or ""
        found = _all(svc, rtype).get(rid)
        if found is None:
            raise FhirError(Category.NOT_FOUND, f"{rtype}/{rid[:64]} is not known")
        return FhirResponse(200, found)

    return read


def searcher(rtype: str) -> Interaction:
    """GET [base]/<rtype>?url=…|_id=…|name=…"""

    def search(svc: Services, req: FhirRequest) -> FhirResponse:
        return _search(svc, req, rtype)

    return search


def _search(svc: Services, req: FhirRequest, rtype: str) -> FhirResponse:
    for name, _ in req.params:
        if name.split(":")[0] not in SEARCH_PARAMS:
            raise invalid(f"{rtype} is searched by url, _id or name only", name[:60])
    matches = [
        r
        for r in _all(svc, rtype).values()
        if _matches(r, "url", req.param("url"), canonical=True)
        and _matches(r, "id", req.param("_id"))
        and _matches(r, "name", req.param("name"))
    ]
    matches.sort(key=lambda r: r["id"])
    return FhirResponse(
        200,
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": [{"relation": "self", "url": f"{req.base}/{rtype}"}],
            "entry": [
                {
                    "fullUrl": f"{req.base}/{rtype}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in matches
            ],
        },
    )


def _matches(
    resource: Mapping[str, Any], key: str, wanted: str | None, canonical: bool = False
) -> bool:
    if wanted is None:
        return True
    if canonical:
        wanted = wanted.split("|", 1)[0]  # a canonical may carry |version
    return resource.get(key) == wanted
