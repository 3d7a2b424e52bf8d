"""The view model of the client-readable plan: plain dataclasses of display-ready text.

Templates and the SVG picture read only these; no FHIR structure, code or system URL ever
reaches them (the builder, build.py, turns codes into words). `refs` lists what was shown, for
the disclosure record; it is never rendered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Contact:
    label: str  # "Puhelin" / "Phone"
    value: str  # what the client reads
    href: str = ""  # tel:, mailto: or https: link; "" when not linkable


@dataclass(frozen=True)
class Person:
    """A professional (or, without a name, an organisation) in the client's network."""

    name: str
    role: str = ""
    organization: str = ""
    contacts: tuple[Contact, ...] = ()


@dataclass(frozen=True)
class Coordinator:
    person: Person
    since: str  # formatted date the coordinator's period started


@dataclass(frozen=True)
class GoalView:
    text: str
    own_words: bool
    due: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponsibilityView:
    who: str  # organisation (and person) responsible
    what: str  # the service in plain words
    detail: str  # the agreed task in the network's words
    due: str
    status: str  # plain words, "myöhässä" added when past due
    state: str  # "open" | "done" | "closed" | "late": a CSS class, never shown as text
    peer_support: bool = False


@dataclass(frozen=True)
class Review:
    date: str
    who: str = ""


@dataclass(frozen=True)
class PeerSupport:
    offered: str = ""  # "Tarjottu 14.9.2026"
    answer: str = ""  # the client's answer in plain words
    offered_by: str = ""
    services: tuple[str, ...] = ()  # peer-support responsibilities: "Polku ry: Käynnissä"


@dataclass(frozen=True)
class OverlapView:
    text: str


@dataclass(frozen=True)
class NetworkNode:
    """One actor around the client in the network picture."""

    title: str  # organisation name
    people: tuple[str, ...] = ()  # "Satu Malli, työkykykoordinaattori"
    tasks: tuple[str, ...] = ()  # what they do for the client
    coordinator: bool = False


@dataclass
class ClientPlanView:
    lang: str
    client_name: str
    title: str
    period: str
    generated: str  # print date (volatile)
    solution: str = ""
    coordinator: Coordinator | None = None
    goals: list[GoalView] = field(default_factory=list)
    responsibilities: list[ResponsibilityView] = field(default_factory=list)
    review: Review | None = None
    peer_support: PeerSupport = field(default_factory=PeerSupport)
    overlaps: list[OverlapView] = field(default_factory=list)
    network: list[NetworkNode] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)  # "Type/id" of every resource shown

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready structure (golden files compare this)."""
        return asdict(self)
