"""Who is calling: the authenticated organisation, its client, its granted scopes and (when the
request names one) the acting professional's PractitionerRole. Every layer after routes.py reads
this from `FhirRequest.caller`; it is built only by `gateway.security.authenticate`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.security.scopes import Scope, permits


@dataclass(frozen=True)
class Caller:
    organization: str  # FHIR Organization id
    client_id: str
    scopes: tuple[Scope, ...]
    acting_role: str | None = None  # PractitionerRole id, checked to belong to `organization`

    @property
    def organization_reference(self) -> str:
        return f"Organization/{self.organization}"

    @property
    def acting_role_reference(self) -> str | None:
        return f"PractitionerRole/{self.acting_role}" if self.acting_role else None

    def permits(self, resource_type: str, letter: str) -> bool:
        """Whether the granted scopes allow `letter` (c, r, u, d, s) on `resource_type`."""
        return permits(self.scopes, resource_type, letter)

    def acting_as(self, role_id: str) -> Caller:
        return replace(self, acting_role=role_id)
