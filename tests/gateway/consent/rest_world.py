"""The random consent world of world.py, made storable and searchable, and an independent model of
every REST answer a caller should get from it.

`world.build` renders only the elements the consent rules read; `complete` adds what FHIR
validation requires (status, intent, …) and a few searchable elements (a Patient family name and
identifier, CarePlan/Goal statuses, a `display` on every client reference, which masking must
remove). Nothing added here changes who holds a record or which client it belongs to.

`Expect` answers, from the model alone (reference_model.may_see / masked over world.World and the
references listed in REFS), what a caller should get: the visible matches of a search, its
includes (`:iterate` as in FHIR R4: iterate specs follow newly included resources), chains and
`_has` probes evaluated as if hidden resources did not exist.
"""

from __future__ import annotations

import copy
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.gateway.consent.reference_model import Query, Thing, masked, may_see
from tests.gateway.consent.world import ROLES, World

Key = tuple[str, str]
Json = dict[str, Any]

CLIENT_SYSTEM = "urn:example:client-number"
FAMILIES = [
    "Virtanen",
    "Korhonen",
    "Nieminen",
    "Makinen",
    "Laine",
    "Heikkinen",
    "Koskinen",
    "Jarvinen",
    "Lehtonen",
    "Saarinen",
    "Salminen",
    "Hamalainen",
]  # fmt: skip  (no name is a prefix of another: string search matches prefixes)
CAREPLAN_STATUSES = ["active", "completed", "draft", "on-hold"]
GOAL_STATUSES = ["active", "completed", "proposed"]
REDACTED = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "REDACTED")
WHEN = "2026-11-01T09:00:00Z"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# (source type, search parameter) -> the elements holding its references, in this world.
REFS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Patient", "organization"): ("managingOrganization",),
    ("CarePlan", "subject"): ("subject",),
    ("CarePlan", "patient"): ("subject",),
    ("CarePlan", "care-team"): ("careTeam",),
    ("Goal", "subject"): ("subject",),
    ("Goal", "patient"): ("subject",),
    ("CareTeam", "subject"): ("subject",),
    ("CareTeam", "patient"): ("subject",),
    ("Task", "patient"): ("for",),
    ("Task", "subject"): ("for",),
    ("Task", "owner"): ("owner",),
    ("Task", "requester"): ("requester",),
    ("ServiceRequest", "subject"): ("subject",),
    ("ServiceRequest", "patient"): ("subject",),
    ("ServiceRequest", "requester"): ("requester",),
    ("Provenance", "target"): ("target",),
    ("Communication", "subject"): ("subject",),
    ("Communication", "patient"): ("subject",),
    ("Communication", "sender"): ("sender",),
    ("Consent", "patient"): ("patient",),
    ("Consent", "organization"): ("organization",),
}
# Which search parameter ties each type to its client (for `Type?<param>=Patient/x`).
PATIENT_PARAM = {
    "CarePlan": "patient",
    "Goal": "patient",
    "CareTeam": "patient",
    "Task": "patient",
    "ServiceRequest": "patient",
    "Communication": "patient",
    "Consent": "patient",
}


def _refs_of(value: Any) -> Iterable[str]:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict) and isinstance(item.get("reference"), str):
            yield item["reference"]


def _named(ref: dict[str, Any]) -> None:
    if ref["reference"].startswith("Patient/"):
        ref["display"] = f"Asiakas {ref['reference'].split('/')[1]}"


def _fill_empty(prov: Any, path: str = "p") -> None:
    """An empty nested provision (no type, no conditions: it flips its parent) is invalid JSON
    for FHIR ("an object must not be empty"); an element id, which no rule reads, keeps it."""
    if not isinstance(prov, dict):
        return
    if not prov:
        prov["id"] = path
    for n, child in enumerate(prov.get("provision") or []):
        _fill_empty(child, f"{path}-{n}")


def complete(fhir: Json, rng: random.Random) -> Json:
    """`fhir` with what validation needs and the searchable extras (a new dict)."""
    r = copy.deepcopy(fhir)
    rtype = r["resourceType"]
    for name in ("subject", "for", "patient"):
        if isinstance(r.get(name), dict) and "reference" in r[name]:
            _named(r[name])
    if rtype == "Patient":
        r["name"] = [{"family": rng.choice(FAMILIES), "given": ["Testi"]}]
        r["identifier"] = [{"system": CLIENT_SYSTEM, "value": r["id"]}]
    elif rtype == "CarePlan":
        r |= {"status": rng.choice(CAREPLAN_STATUSES), "intent": "plan"}
        if "subject" in r:  # the client's network, held by whoever holds the CareTeam
            team = r["subject"]["reference"].replace("Patient/", "CareTeam/") + "-team"
            r["careTeam"] = [{"reference": team}]
    elif rtype == "Goal":
        r |= {"lifecycleStatus": rng.choice(GOAL_STATUSES), "description": {"text": "Tavoite"}}
    elif rtype == "CareTeam":
        r["status"] = "active"
    elif rtype == "Task":
        r |= {"status": "requested", "intent": "order"}
    elif rtype == "ServiceRequest":
        r |= {"status": "active", "intent": "order"}
    elif rtype == "Provenance":
        r["recorded"] = WHEN
    elif rtype == "Communication":
        r["status"] = "completed"
    elif rtype == "Consent":
        r["category"] = [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}]
        r["policyRule"] = {"coding": [{"system": V3_ACT_CODE, "code": "OPTIN"}]}
        _fill_empty(r.get("provision"))
    elif rtype == "DocumentReference":
        attachment = {"contentType": "text/plain", "data": "bG9wcHV5aHRlZW52ZXRv"}
        r |= {"status": "current", "content": [{"attachment": attachment}]}
    elif rtype == "Basic":
        r["code"] = {"text": "muu"}
    elif rtype == "AuditEvent":
        r |= {
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
            "recorded": WHEN,
            "agent": [{"who": {"display": "kirjaaja"}, "requestor": True}],
            "source": {"observer": {"display": "lähde"}},
        }
    return r


def registration(org: str, template: Path) -> Json:
    """A registration for world organisation `org` (client id `client-<org>`, all scopes),
    with a demo public key (minted tokens never use it)."""
    doc = json.loads(template.read_text(encoding="utf-8"))
    return {
        "organization": org,
        "client_id": f"client-{org}",
        "name": f"Test organisation {org}",
        "scopes": ["system/*.cruds"],
        "jwks": doc["jwks"],
    }


def key_of(reference: str) -> Key | None:
    parts = reference.split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else None


@dataclass
class Stored:
    """The stored world: resources by key, their model Things and reference graph."""

    world: World
    resources: dict[Key, Json]
    things: dict[Key, Thing]
    forward: dict[Key, dict[str, list[Key]]] = field(default_factory=dict)
    reverse: dict[tuple[Key, str, str], list[Key]] = field(default_factory=dict)

    @classmethod
    def of(cls, world: World, rng: random.Random) -> Stored:
        resources = {
            (r["resourceType"], r["id"]): complete(r, rng)
            for r in world.stored
            if r["id"] != "orphan"  # a CarePlan needs a subject: this one stays unstored
        }
        things = {(f["resourceType"], f["id"]): t for t, f in world.records}
        for role, org in ROLES.items():
            things[("PractitionerRole", role)] = Thing("PractitionerRole", None, {org})
        out = cls(world, resources, things)
        reverse: dict[tuple[Key, str, str], list[Key]] = defaultdict(list)
        for key, r in resources.items():
            out.forward[key] = {}
            for (source, param), paths in REFS.items():
                if source != key[0]:
                    continue
                targets = [
                    k for p in paths for ref in _refs_of(r.get(p)) if (k := key_of(ref)) is not None
                ]
                out.forward[key][param] = targets
                for t in targets:
                    reverse[(t, source, param)].append(key)
        out.reverse = dict(reverse)
        return out

    def of_type(self, rtype: str) -> list[Key]:
        return [k for k in self.resources if k[0] == rtype]

    def targets(self, key: Key, param: str) -> list[Key]:
        """Stored resources `key` references through `param`."""
        return [t for t in self.forward.get(key, {}).get(param, []) if t in self.resources]


class Expect:
    """What a caller (`q`) may see of the stored world, and the answers that follow from it."""

    def __init__(self, stored: Stored, q: Query) -> None:
        self.s, self.q = stored, q
        clients = stored.world.clients
        self.visible = {k for k in stored.resources if may_see(clients, stored.things[k], q)}
        self.masked = {k for k in self.visible if masked(clients, stored.things[k], q)}

    def sees(self, key: Key) -> bool:
        return key in self.visible

    def audit_visible(self, resource: Json) -> bool:
        """A gateway-written AuditEvent (not in the world): the audit trail is shown only to
        the custodians of every client it names in role Patient (and to nobody when it names
        none): never under a permit."""
        named = {
            ref.split("/")[1]
            for e in resource.get("entity") or []
            for ref in _refs_of(e.get("what"))
            if ref.startswith("Patient/")
            and any(c.get("code") == "1" for c in [(e.get("role") or {})])
        }
        clients = self.s.world.clients
        return bool(named) and all(
            c in clients and may_see(clients, Thing("AuditEvent", c, set()), self.q) for c in named
        )

    # -- searches -------------------------------------------------------------------------------
    def search(self, rtype: str, pred: Callable[[Key, Json], bool]) -> set[Key]:
        return {
            k for k in self.s.of_type(rtype) if k in self.visible and pred(k, self.s.resources[k])
        }

    def refers(self, source: str, param: str, target: Key) -> Callable[[Key, Json], bool]:
        return lambda k, _r: target in self.s.forward[k].get(param, [])

    def chain(self, source: str, param: str, target_pred: Callable[[Key, Json], bool]) -> set[Key]:
        """`Source?param.X=v`: visible sources referencing a visible target that matches."""

        def pred(k: Key, _r: Json) -> bool:
            return any(
                t in self.visible and target_pred(t, self.s.resources[t])
                for t in self.s.targets(k, param)
            )

        return self.search(source, pred)

    def has(
        self, rtype: str, source: str, param: str, source_pred: Callable[[Key, Json], bool]
    ) -> set[Key]:
        """`Type?_has:Source:param:X=v`: visible rtype resources referenced by a visible
        matching Source."""
        found = {
            t
            for k in self.s.of_type(source)
            if k in self.visible and source_pred(k, self.s.resources[k])
            for t in self.s.targets(k, param)
        }
        return {t for t in found if t[0] == rtype and t in self.visible}

    def includes(
        self,
        matches: set[Key],
        includes: list[tuple[str, str, bool]],
        revincludes: list[tuple[str, str, bool]],
    ) -> set[Key]:
        """Visible resources the include specs (source, param, iterate) reach from `matches`:
        every spec on the matches, then the iterate specs on what each round newly included;
        nothing is reached through a hidden resource."""
        seen, found, frontier, first = set(matches), set(), set(matches), True
        while frontier:
            new: set[Key] = set()
            for key in frontier:
                for source, param, iterate in includes:
                    if (first or iterate) and key[0] == source:
                        new.update(self.s.targets(key, param))
                for source, param, iterate in revincludes:
                    if first or iterate:
                        new.update(self.s.reverse.get((key, source, param), []))
            fresh = {k for k in new - seen if k in self.s.resources}
            seen |= fresh
            fresh &= self.visible
            found |= fresh
            frontier, first = fresh, False
        return found

    def history(self, rtype: str | None) -> set[Key]:
        return {k for k in self.visible if rtype is None or k[0] == rtype}
