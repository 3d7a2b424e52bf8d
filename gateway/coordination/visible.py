"""Reading several resources at once through the disclosure gate, for the operations that
gather a plan's surroundings (follow-up, final summary).

Every read goes through `common.read_ref` / `common.search_visible` (gated and audited); a
resource the caller may not see is left out, as if it did not exist. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from gateway.coordination import common
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import FhirRequest, Services

Resource = Mapping[str, Any]

ID_BATCH = 100  # `_id` takes at most 100 comma-separated values (gateway/search)
# What a read of a reference the caller may not follow answers (the gate audits the denial).
UNREADABLE = (Category.NOT_FOUND, Category.GONE, Category.INVALID)


def key(resource: Resource) -> str:
    """The literal reference of a resource: "Type/id"."""
    return f"{resource['resourceType']}/{resource['id']}"


def ids_of(refs: Iterable[str | None], rtype: str) -> list[str]:
    """The ids of the `rtype` references among `refs`, sorted, once each."""
    prefix = f"{rtype}/"
    return sorted({r[len(prefix) :] for r in refs if r and r.startswith(prefix)})


def by_ids(
    svc: Services,
    req: FhirRequest,
    rtype: str,
    ids: list[str],
    criteria: Sequence[tuple[str, str]] = (),
) -> dict[str, Resource]:
    """The visible `rtype` resources of these ids (that also match `criteria`) by reference, in
    audited searches of at most `ID_BATCH` ids each (the search engine's bound on `_id`)."""
    found: dict[str, Resource] = {}
    for start in range(0, len(ids), ID_BATCH):
        batch = ids[start : start + ID_BATCH]
        for r in common.search_visible(svc, req, rtype, [("_id", ",".join(batch)), *criteria]):
            found[f"{rtype}/{r['id']}"] = r
    return found


def readable(svc: Services, req: FhirRequest, refs: Iterable[str]) -> Iterator[Resource]:
    """The resources `refs` name that the caller may read, one read each, lazily, in order."""
    for ref in refs:
        try:
            yield common.read_ref(svc, req, ref)
        except FhirError as err:
            if err.category not in UNREADABLE:
                raise


def visible(
    svc: Services, req: FhirRequest, refs: Iterable[str], known: Mapping[str, Resource]
) -> list[Resource]:
    """The resources `refs` name that the caller may see, in order (`known` ones as they are,
    without reading them again)."""
    out: list[Resource] = []
    for ref in refs:
        out.extend((known[ref],) if ref in known else readable(svc, req, (ref,)))
    return out
