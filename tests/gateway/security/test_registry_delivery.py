"""The registration's `delivery` section: where an organisation's subscription notifications may go.
A malformed section stops the start, naming the field; `covers` keeps to scheme, host, port and
the registered path."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.security.registry import DeliveryLink, RegistrationError, load_registry, registration
from gateway.settings import ORGANISATIONS_DIR

GOOD = {
    "organization": "org-x",
    "client_id": "x",
    "scopes": ["system/Subscription.cruds"],
    "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "kid": "k"}]},
}


def _delivery(section: Any) -> DeliveryLink | None:
    return registration({**GOOD, "delivery": section}).delivery


def test_delivery_is_optional() -> None:
    assert registration(GOOD).delivery is None
    assert _delivery(None) is None


def test_delivery_section() -> None:
    link = _delivery({"endpoints": ["https://x.example/hooks", "http://127.0.0.1:9000/"]})
    assert link == DeliveryLink(("https://x.example/hooks", "http://127.0.0.1:9000/"), "CAREMGT")
    assert _delivery({"endpoints": ["https://x.example/"], "purpose": "COC"}).purpose == "COC"


@pytest.mark.parametrize(
    ("section", "field"),
    [
        (["https://x.example/"], "delivery must be an object"),
        ({}, "delivery.endpoints"),
        ({"endpoints": []}, "delivery.endpoints"),
        ({"endpoints": "https://x.example/"}, "delivery.endpoints"),
        ({"endpoints": [7]}, "delivery.endpoints"),
        ({"endpoints": ["https://x.example/", "http://x.example/"]}, "delivery.endpoints[1]"),
        ({"endpoints": ["http://10.0.0.1/hooks"]}, "delivery.endpoints[0]"),
        ({"endpoints": ["mllp://127.0.0.1:2575"]}, "delivery.endpoints[0]"),
        ({"endpoints": ["/hooks"]}, "delivery.endpoints[0]"),
        ({"endpoints": ["https://u:p@x.example/"]}, "delivery.endpoints[0]"),
        ({"endpoints": ["https://x.example/?a=1"]}, "delivery.endpoints[0]"),
        ({"endpoints": ["https://x.example/#f"]}, "delivery.endpoints[0]"),
        ({"endpoints": ["https://x.example:port/"]}, "delivery.endpoints[0]"),
        ({"endpoints": ["https://x.example/"], "purpose": "care mgt"}, "delivery.purpose"),
        ({"endpoints": ["https://x.example/"], "purpose": 1}, "delivery.purpose"),
    ],
)
def test_bad_delivery(section: Any, field: str) -> None:
    with pytest.raises(RegistrationError, match=re.escape(field)):
        _delivery(section)


@pytest.mark.parametrize(
    ("url", "covered"),
    [
        ("https://x.example/hooks", True),
        ("https://x.example/hooks/", True),
        ("https://x.example/hooks/kela/task?x=1", True),
        ("https://X.EXAMPLE:443/hooks", True),  # host case and the default port
        ("https://x.example/hooks-evil", False),  # a path boundary, not a string prefix
        ("https://x.example/hooks/../admin", False),
        ("https://x.example/hooks/%2e%2e/admin", False),
        ("https://x.example/", False),
        ("http://x.example/hooks", False),  # scheme
        ("https://x.example:8443/hooks", False),  # port
        ("https://y.example/hooks", False),  # host
        ("https://x.example.evil/hooks", False),
        ("https://x.example:bad/hooks", False),
        ("https://other.example/", True),  # the second endpoint covers the whole host
    ],
)
def test_covers(url: str, covered: bool) -> None:
    link = DeliveryLink(("https://x.example/hooks", "https://other.example/"))
    assert link.covers(url) is covered


def test_partner_samples_register_https_delivery() -> None:
    registry = load_registry(ORGANISATIONS_DIR)
    for client_id in ("kela", "tyollisyyspalvelut", "jarjesto", "sote-keskus", "typ"):
        organisation = registry.client(client_id)
        link = organisation.delivery if organisation else None
        assert link is not None and link.purpose == "CAREMGT"
        assert all(e.startswith("https://") for e in link.endpoints)
