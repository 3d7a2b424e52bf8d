"""The state of one import: the document's set id (resource ids derive from it), the entries of
the transaction Bundle being built (deduplicated by fullUrl, in first-seen order) and what was
not recognised. Nothing here reads XML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from adapters.cda.mapping import Structure
from adapters.ids import Ids


@dataclass
class Doc:
    s: Structure
    ids: Ids
    set_root: str
    set_ext: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    unrecognised: list[str] = field(default_factory=list)
    patient: str = ""
    hetu: str = ""  # the client's HETU (recordTarget), the only person named by HETU
    targets: list[str] = field(default_factory=list)  # what the Provenance is about
    custodian: str | None = None  # fullUrls of the header's parties
    authors: list[str] = field(default_factory=list)
    verifier: str | None = None

    def derived(self, *parts: str) -> str:
        """An id from the document's set id and a path inside it (Ids.derived)."""
        return Ids.derived(self.set_root, self.set_ext, *parts)

    def put(self, resource: dict[str, Any], *, target: bool = True) -> str:
        """A `PUT Type/id` entry (idempotent: the same document gives the same body)."""
        full_url = f"urn:uuid:{resource['id']}"
        request = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        self.entries[full_url] = {"fullUrl": full_url, "resource": resource, "request": request}
        if target:
            self.targets.append(full_url)
        return full_url

    def create(self, resource: dict[str, Any], query: str, fixed_id: str) -> str:
        """A conditional create (`ifNoneExist` = `query`): an existing resource that matches is
        reused, never overwritten; `fixed_id` names the entry's fullUrl."""
        full_url = f"urn:uuid:{fixed_id}"
        if full_url not in self.entries:
            request = {"method": "POST", "url": resource["resourceType"], "ifNoneExist": query}
            self.entries[full_url] = {"fullUrl": full_url, "resource": resource, "request": request}
        return full_url

    def is_conditional(self, full_url: str) -> bool:
        entry = self.entries.get(full_url)
        return entry is not None and entry["request"]["method"] == "POST"

    def bundle(self) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": list(self.entries.values()),
        }


def by_identifier(ident: dict[str, str]) -> str:
    """`identifier=<system>|<value>`, escaped for a query string (a HETU may hold '+')."""
    return f"identifier={quote(ident['system'], safe=':/.')}|{quote(ident['value'], safe='')}"


def ref(full_url: str) -> dict[str, str]:
    return {"reference": full_url}
