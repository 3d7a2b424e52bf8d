"""Search: SearchParameter registry, index extraction and query execution.

PLACEHOLDER until the search engine lands: indexes nothing and matches nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.errors import Category, FhirError
from gateway.storage.base import IndexRows

if TYPE_CHECKING:
    from gateway.fhir_api.context import FhirRequest, FhirResponse, Services
    from gateway.storage.base import Session


class SearchEngine:
    def index(self, resource: dict[str, Any]) -> IndexRows:
        return IndexRows()

    def match_keys(
        self, session: Session, resource_type: str, params: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        raise FhirError(Category.NOT_SUPPORTED, "search is not implemented yet")

    def search(self, svc: Services, req: FhirRequest) -> FhirResponse:
        raise FhirError(Category.NOT_SUPPORTED, "search is not implemented yet")
