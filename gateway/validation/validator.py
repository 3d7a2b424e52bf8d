"""Validation on write: structure with fhir.resources (R4B models, R4 wire format), plus the
rules those models do not check (added in rules.py). Never changes what the caller sent beyond
dropping server-owned fields (meta.versionId, meta.lastUpdated), which are ignored by spec.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from gateway.errors import Category, FhirError, Issue, invalid
from gateway.fhir_api.context import RESOURCE_TYPES, check_id
from gateway.validation.profiles import profile_issues
from gateway.validation.rules import rule_issues


def _expression(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}"
    return path


def structure_issues(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    """Issues fhir.resources finds in `resource`, each with the element path."""
    model = get_fhir_model_class(resource_type)
    try:
        model.model_validate(resource)
    except ValidationError as e:
        issues = []
        for err in e.errors(include_url=False, include_input=False):
            where = _expression(resource_type, tuple(err.get("loc", ())))
            code = "structure" if err.get("type") == "extra_forbidden" else "value"
            issues.append(Issue(f"{where}: {err.get('msg', 'invalid')}", (where,), code=code))
        return issues
    except Exception:  # fhir_core raises KeyError, ValueError... on odd input, with no path
        return [Issue(f"{resource_type}: {_NO_PATH}", (resource_type,))]
    return []


_NO_PATH = "the resource does not match its model"


def _merged(structure: list[Issue], rules: list[Issue]) -> list[Issue]:
    """Both lists, one issue per path (the structure finding wins); rule issues replace the
    path-less one left when fhir_core fails without saying where."""
    if rules and len(structure) == 1 and structure[0].diagnostics.endswith(_NO_PATH):
        return rules
    seen = {i.expression for i in structure}
    return structure + [i for i in rules if i.expression not in seen]


class Validator:
    """Checks a request body before any storage work starts."""

    def __init__(self, resource_types: tuple[str, ...] = RESOURCE_TYPES) -> None:
        self.resource_types = resource_types

    def validate_body(
        self, resource_type: str, resource: Any, expect_id: str | None
    ) -> dict[str, Any]:
        """The body ready to store, or a FhirError naming every problem with its path.

        `expect_id` is the id from the URL of an update (the body must carry the same id);
        None for a create, where any body id is ignored and the server assigns one.
        """
        if resource is None:
            raise invalid("a resource body is required", resource_type)
        if not isinstance(resource, dict):
            raise invalid("the body must be a JSON object holding one resource", resource_type)
        body_type = resource.get("resourceType")
        if body_type != resource_type:
            raise invalid(
                f"resourceType '{str(body_type)[:40]}' does not match the URL type "
                f"'{resource_type}'",
                "resourceType",
            )
        return self.validate_resource(resource, expect_id)

    def validate_resource(self, resource: dict[str, Any], expect_id: str | None) -> dict[str, Any]:
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or resource_type not in self.resource_types:
            raise invalid(
                f"resourceType '{str(resource_type)[:40]}' is not served by this gateway",
                "resourceType",
            )
        body = dict(resource)
        meta = body.get("meta")
        if isinstance(meta, dict) and ("versionId" in meta or "lastUpdated" in meta):
            # Server-owned (http.html#update): ignored, never stored; an emptied meta goes too.
            kept = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
            if kept:
                body["meta"] = kept
            else:
                del body["meta"]
        if expect_id is None:
            body.pop("id", None)
        else:
            body_id = body.get("id")
            if body_id is None:
                raise invalid(
                    "an update must carry the resource id in the body", f"{resource_type}.id"
                )
            if body_id != expect_id:
                raise invalid(
                    f"the body's id does not match the URL id '{expect_id}'", f"{resource_type}.id"
                )
            check_id(expect_id, f"{resource_type}.id")
        issues = _merged(structure_issues(resource_type, body), rule_issues(resource_type, body))
        if not issues:  # our profiles (profiles.py) only once the base structure holds
            issues = profile_issues(body)
        if issues:
            raise FhirError(Category.INVALID, issues[0].diagnostics, issues=issues)
        return body
