"""`ConsentContext`: what one request needs to decide, loaded once for a whole page.

A request builds one context (one `now`, one loader). `prepare(resources)` collects every client,
PractitionerRole and Provenance target a page of resources refers to and loads the missing ones
in three bulk calls (targets and roles, then Patients, then Consents), so a page of 100 Tasks of
one client reads that client's Consents once. `clients()` and `holders()` prepare lazily, so
correctness never depends on a caller remembering to prepare; only speed does. The loader is the
only I/O: the next session implements it over the Repository.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.consent.model import Client
from gateway.consent.records import (
    Key,
    client_links,
    holder_orgs,
    holder_refs,
    reference_key,
    role_organization,
)

Resource = Mapping[str, Any]


class ConsentLoader(Protocol):
    def read(self, keys: Collection[Key]) -> Mapping[Key, Resource]:
        """Current live versions of these resources; missing and deleted ones are left out."""

    def consents(self, client_ids: Collection[str]) -> Iterable[Resource]:
        """Every stored Consent whose `patient` is one of these clients, in any status."""


@dataclass
class ConsentContext:
    loader: ConsentLoader
    now: datetime  # the request's time: every decision in the request uses this one instant
    _read: dict[Key, Resource | None] = field(default_factory=dict)
    _consents: dict[str, list[Resource]] = field(default_factory=dict)

    def prepare(self, resources: Iterable[Resource]) -> None:
        """Load, in bulk, what deciding on these resources needs and is not loaded yet."""
        page = [r for r in resources if isinstance(r, Mapping)]
        links = [client_links(r) for r in page]
        roles = {k for r in page for k in holder_refs(r) if k[0] == "PractitionerRole"}
        self._load({k for _, via in links for k in via} | roles)
        ids = {c for direct, _ in links for c in direct}
        ids.update(c for _, via in links for k in via for c in self._direct_clients(k))
        self._load({("Patient", c) for c in ids})
        missing = sorted(c for c in ids if c not in self._consents)
        if missing:
            for c in missing:
                self._consents[c] = []
            for consent in self.loader.consents(missing):
                key = reference_key(consent.get("patient"))
                if key and key[0] == "Patient" and key[1] in self._consents:
                    self._consents[key[1]].append(consent)

    def forget(self, resource: Resource) -> None:
        """Drop what a write of `resource` makes stale (itself; its client's Consents when it is
        a Consent), so later decisions in the same request see the write."""
        key = (str(resource.get("resourceType")), str(resource.get("id")))
        self._read.pop(key, None)
        if key[0] == "Consent":
            client = reference_key(resource.get("patient"))
            if client and client[0] == "Patient":
                self._consents.pop(client[1], None)

    def clients(self, resource: Resource) -> tuple[Client, ...]:
        """The clients a resource is tied to, each with their Patient and Consents."""
        self.prepare([resource])
        direct, via = client_links(resource)
        ids = set(direct).union(*(self._direct_clients(k) for k in via))
        return tuple(
            Client(c, self._read.get(("Patient", c)), tuple(self._consents.get(c, ())))
            for c in sorted(ids)
        )

    def holders(self, resource: Resource) -> frozenset[str]:
        """The organisations that hold this record (custodian table + extension). Loads only
        the PractitionerRoles it names: a record holder is decided without client data."""
        refs = holder_refs(resource)
        self._load({k for k in refs if k[0] == "PractitionerRole"})
        roles = {rid: self._role_org(rid) for rtype, rid in refs if rtype == "PractitionerRole"}
        return holder_orgs(refs, roles)

    def _role_org(self, role_id: str) -> str | None:
        role = self._read.get(("PractitionerRole", role_id))
        return role_organization(role) if role else None

    def _direct_clients(self, key: Key) -> frozenset[str]:
        """A one-hop target's own direct clients (never through a further hop)."""
        target = self._read.get(key)
        return client_links(target)[0] if target else frozenset()

    def _load(self, keys: set[Key]) -> None:
        missing = sorted(k for k in keys if k not in self._read)
        if missing:
            found = self.loader.read(missing)
            for k in missing:
                self._read[k] = found.get(k)
