"""The registration's `hl7v2` section (gateway/security/registry.py): how a record system is
recognised as a sender (MSH-3/MSH-4), where messages back go, which events and purpose."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.security.registry import RegistrationError, Registry, load_registry, registration
from gateway.settings import ORGANISATIONS_DIR

BASE: dict[str, Any] = {
    "organization": "org-x",
    "client_id": "x",
    "scopes": ["system/*.cruds"],
    "jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]},
}


def with_hl7v2(**section: Any) -> dict[str, Any]:
    return {**BASE, "hl7v2": {"application": "APP", "facility": "1.2.3", **section}}


def test_the_sample_record_system_is_registered_as_a_sender() -> None:
    registry = load_registry(ORGANISATIONS_DIR)
    org = registry.hl7v2_sender("PEGASOS", "1.2.246.10.2345678.10.0")
    assert org is not None and org.organization == "org-sote-keskus"
    assert org.hl7v2.endpoint == "mllp://127.0.0.1:2576"
    assert org.hl7v2.purpose == "CAREMGT" and org.hl7v2.events is None
    assert registry.hl7v2_sender("PEGASOS", "1.2.246.10.9") is None


def test_a_section_is_optional_and_read_in_full() -> None:
    assert registration(BASE).hl7v2 is None
    link = registration(
        with_hl7v2(endpoint="mllp://rs.example:2575", events=["ADT^A04"], purpose="TREAT")
    ).hl7v2
    assert (link.endpoint, link.events, link.purpose) == (
        "mllp://rs.example:2575",
        ("ADT^A04",),
        "TREAT",
    )
    assert link.allows("ADT^A04") and not link.allows("ADT^A08")


@pytest.mark.parametrize(
    "section",
    [
        {"application": ""},
        {"facility": 7},
        {"endpoint": "http://rs.example:2575"},
        {"endpoint": "mllp://rs.example"},  # no port
        {"events": ["ADT-A04"]},
        {"events": "ADT^A04"},
        {"purpose": "care mgt"},
        {"peers": "10.0.0.0/8"},
        {"peers": ["10.0.0.300/8"]},
    ],
)
def test_a_bad_section_stops_the_registration(section: dict[str, Any]) -> None:
    with pytest.raises(RegistrationError):
        registration(with_hl7v2(**section))


def test_two_organisations_may_not_share_a_sender() -> None:
    one = registration(with_hl7v2())
    other = registration({**with_hl7v2(), "organization": "org-y", "client_id": "y"})
    with pytest.raises(RegistrationError, match="registered twice"):
        Registry([one, other])


def test_peers_limit_the_addresses_a_sender_is_accepted_from() -> None:
    open_link = registration(with_hl7v2()).hl7v2
    assert open_link.reachable_from("192.0.2.7") and open_link.reachable_from(None)
    link = registration(with_hl7v2(peers=["10.20.0.0/16", "::1/128"])).hl7v2
    assert link.reachable_from("10.20.3.4") and link.reachable_from("::1")
    assert not link.reachable_from("10.21.0.1")
    assert not link.reachable_from("-")  # an address that is none: refused, not in-process
    assert link.reachable_from(None)  # in-process (a file, the CLI): no network peer
