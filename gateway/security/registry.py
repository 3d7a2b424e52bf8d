"""The organisation registry: which organisations may ask for tokens, with which keys and scopes.

One JSON file per organisation (samples/organisations/*.json by default; the setting
`organisations_dir` points elsewhere). A malformed registration stops the gateway at start: a
half-read registry must never let a client in. Registrations hold public keys only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from gateway.fhir_api.context import ID_RE
from gateway.security.scopes import Scope, ScopeError, parse_scope

# Registered URLs must be TLS-protected (SMART Backend Services, "jku"); plain http only on
# the loopback interface, for local testing.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class RegistrationError(ValueError):
    """A registration file that cannot be used; the message names the file and the field."""


_EVENT = re.compile(r"[A-Z][A-Z0-9]{2}\^[A-Z][A-Z0-9]{2}")


@dataclass(frozen=True)
class Hl7v2Link:
    """How an organisation's record system speaks HL7 v2 with us (registration "hl7v2"): a
    message is its when MSH-3 (sending application) and MSH-4 (sending facility, namespace id
    or universal id) match; `endpoint` is where messages back go (mllp://host:port), `events`
    an optional allow-list ("ADT^A04", ...; None = every event the gateway handles), `purpose`
    the purpose of use its messages are decided under (v3-ActReason; default CAREMGT, care
    management: what the sample consents permit partners).

    MLLP authenticates nobody: MSH-3/MSH-4 are the sender's own claim. `peers` (CIDR networks,
    e.g. ["10.20.0.0/16"]) limits the addresses its messages are accepted from; a deployment
    listening beyond the loopback gives every sender one (and puts TLS in front)."""

    application: str
    facility: str
    endpoint: str | None = None
    events: tuple[str, ...] | None = None
    purpose: str = "CAREMGT"
    peers: tuple[IPv4Network | IPv6Network, ...] = ()

    def allows(self, event: str) -> bool:
        return self.events is None or event in self.events

    def reachable_from(self, address: str | None) -> bool:
        """Whether a message from `address` (an IP address; None: in-process, not a network
        peer) may be this sender's."""
        if not self.peers or address is None:
            return True
        try:
            ip = ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self.peers)


@dataclass(frozen=True)
class DeliveryLink:
    """Where the gateway may push an organisation's subscription notifications (registration
    "delivery"): a Subscription's channel.endpoint must lie under one of `endpoints` (same
    scheme, host and port; the path at or below the registered path), so a token holder cannot
    send a client's data anywhere else. `purpose` (v3-ActReason, default CAREMGT) is the purpose
    of use each notification is disclosed under."""

    endpoints: tuple[str, ...]
    purpose: str = "CAREMGT"

    def covers(self, url: str) -> bool:
        """Whether `url` lies under one of the registered endpoints."""
        return any(_under(url, registered) for registered in self.endpoints)


def _under(url: str, registered: str) -> bool:
    try:
        got, base = urlsplit(url), urlsplit(registered)
        same = (got.scheme, got.hostname, _port(got)) == (base.scheme, base.hostname, _port(base))
    except ValueError:  # an unreadable port
        return False
    # A path boundary: /hooks covers /hooks and /hooks/x, never /hooks-evil nor /hooks/../x.
    if {".", ".."} & set(unquote(got.path).split("/")):
        return False
    prefix = base.path.rstrip("/") + "/"
    return same and (got.path == base.path or (got.path or "/").startswith(prefix))


def _port(parts: SplitResult) -> int | None:
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)


@dataclass(frozen=True)
class Organisation:
    organization: str  # the FHIR Organization id of the calling organisation
    client_id: str
    name: str
    scopes: tuple[Scope, ...]
    scope_text: tuple[str, ...]  # as registered, for the CLI's default request
    jwks: tuple[dict[str, Any], ...] = ()  # inline public JWKs
    jwks_url: str | None = None
    jku: tuple[str, ...] = ()  # JWKS URLs an assertion may name in its `jku` header
    hl7v2: Hl7v2Link | None = None  # its record system's HL7 v2 link, if it has one
    delivery: DeliveryLink | None = None  # where its subscription notifications may go

    def allowed_jku(self) -> tuple[str, ...]:
        return self.jku + ((self.jwks_url,) if self.jwks_url else ())


class Registry:
    def __init__(self, organisations: list[Organisation]) -> None:
        self.by_client: dict[str, Organisation] = {}
        for org in organisations:
            if org.client_id in self.by_client:
                raise RegistrationError(f"client_id '{org.client_id}' is registered twice")
            self.by_client[org.client_id] = org
        self.by_hl7v2: dict[tuple[str, str], Organisation] = {}
        for org in organisations:
            if org.hl7v2 is None:
                continue
            key = (org.hl7v2.application, org.hl7v2.facility)
            if key in self.by_hl7v2:
                raise RegistrationError(f"HL7 v2 sender {'/'.join(key)} is registered twice")
            self.by_hl7v2[key] = org

    def client(self, client_id: str) -> Organisation | None:
        return self.by_client.get(client_id)

    def find(self, name: str) -> Organisation | None:
        """By client_id or by Organization id (the CLI's --org)."""
        return self.client(name) or next(
            (o for o in self.by_client.values() if o.organization == name), None
        )

    def hl7v2_sender(self, application: str, facility: str) -> Organisation | None:
        """The organisation whose record system sends as MSH-3 `application`, MSH-4 `facility`."""
        return self.by_hl7v2.get((application, facility))


def load_registry(directory: str | Path) -> Registry:
    return Registry([load_registration(p) for p in sorted(Path(directory).glob("*.json"))])


def load_registration(path: Path) -> Organisation:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return registration(doc)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RegistrationError(f"{path.name}: {e}") from None


def registration(doc: dict[str, Any]) -> Organisation:
    org, client_id = str(doc["organization"]), str(doc["client_id"])
    if not ID_RE.match(org):
        raise RegistrationError("organization must be a FHIR Organization id")
    jwks, url = doc.get("jwks"), doc.get("jwks_url")
    if (jwks is None) == (url is None):
        raise RegistrationError("give exactly one of jwks (inline) and jwks_url")
    keys = tuple(_public(k) for k in jwks["keys"]) if jwks is not None else ()
    try:
        scopes = tuple(parse_scope(s) for s in doc["scopes"])
    except ScopeError as e:
        raise RegistrationError(str(e)) from None
    return Organisation(
        organization=org,
        client_id=client_id,
        name=str(doc.get("name", org)),
        scopes=scopes,
        scope_text=tuple(doc["scopes"]),
        jwks=keys,
        jwks_url=_https(url) if url is not None else None,
        jku=tuple(_https(u) for u in doc.get("jku", [])),
        hl7v2=_hl7v2(doc["hl7v2"]) if doc.get("hl7v2") is not None else None,
        delivery=_delivery(doc["delivery"]) if doc.get("delivery") is not None else None,
    )


def _hl7v2(section: dict[str, Any]) -> Hl7v2Link:
    if not isinstance(section, dict):
        raise RegistrationError("hl7v2 must be an object")
    application, facility = section.get("application"), section.get("facility")
    if not (isinstance(application, str) and application and isinstance(facility, str)):
        raise RegistrationError("hl7v2 needs application and facility (MSH-3, MSH-4)")
    endpoint = section.get("endpoint")
    if endpoint is not None:
        parts = urlsplit(str(endpoint))
        if parts.scheme != "mllp" or not parts.hostname or parts.port is None:
            raise RegistrationError("hl7v2.endpoint must be mllp://host:port")
    events = section.get("events")
    if events is not None and (
        not isinstance(events, list) or not all(_EVENT.fullmatch(str(e)) for e in events)
    ):
        raise RegistrationError('hl7v2.events must be a list such as ["ADT^A04"]')
    peers = section.get("peers", [])
    try:
        networks = tuple(ip_network(str(p)) for p in peers) if isinstance(peers, list) else None
    except ValueError:
        networks = None
    if networks is None:
        raise RegistrationError('hl7v2.peers must be a list of networks such as ["10.0.0.0/8"]')
    purpose = section.get("purpose", "CAREMGT")
    if not (isinstance(purpose, str) and purpose.isalnum()):
        raise RegistrationError("hl7v2.purpose must be a v3-ActReason code such as CAREMGT")
    return Hl7v2Link(
        application,
        facility,
        str(endpoint) if endpoint is not None else None,
        tuple(events) if events is not None else None,
        purpose,
        networks,
    )


def _delivery(section: dict[str, Any]) -> DeliveryLink:
    if not isinstance(section, dict):
        raise RegistrationError("delivery must be an object")
    endpoints = section.get("endpoints")
    if not (
        isinstance(endpoints, list) and endpoints and all(isinstance(e, str) for e in endpoints)
    ):
        raise RegistrationError("delivery.endpoints must be a non-empty list of https URLs")
    for i, endpoint in enumerate(endpoints):
        _delivery_endpoint(endpoint, f"delivery.endpoints[{i}]")
    purpose = section.get("purpose", "CAREMGT")
    if not (isinstance(purpose, str) and purpose.isalnum()):
        raise RegistrationError("delivery.purpose must be a v3-ActReason code such as CAREMGT")
    return DeliveryLink(tuple(endpoints), purpose)


def _delivery_endpoint(url: str, field: str) -> None:
    try:
        parts = urlsplit(url)
        _port(parts)  # reads the port: ValueError when it is not a number
    except ValueError:
        raise RegistrationError(f"{field} is not a URL") from None
    if not parts.hostname or parts.username is not None or parts.query or parts.fragment:
        raise RegistrationError(f"{field} must be scheme://host[:port]/path, no user or query")
    # TLS unless on the loopback interface, as for jwks_url; the gateway allows even those only
    # in delivery test mode (gateway/delivery/subscription_spec.py).
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)):
        raise RegistrationError(f"{field} must be an https URL (http only on the loopback)")


def _public(jwk: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(jwk, dict) or "kty" not in jwk:
        raise RegistrationError("every key in jwks.keys must be a JWK object")
    if any(name in jwk for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise RegistrationError("a registration holds public keys only")
    return dict(jwk)


def _https(url: str) -> str:
    parts = urlsplit(str(url))
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return str(url)
    raise RegistrationError(f"'{str(url)[:80]}' must be an https URL")
