"""What a Subscription asks for (Subscriptions Backport IG on R4), validated once when it is
written and kept as a `SubscriptionSpec`, so matching and delivery never re-read the resource.

Every rejection is an invalid FhirError at the FHIR path of the problem. It must never echo a
header value (they carry the partner's credentials); the endpoint URL may be named. The spec
itself holds those headers: never log `to_json()`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway.delivery.topics import Filters, Topic, load_topics, parse_filter
from gateway.errors import Category, FhirError, invalid
from gateway.security.registry import LOOPBACK, Organisation

# http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-<name>
BACKPORT_DEFINITIONS = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT = BACKPORT_DEFINITIONS + "/backport-"
FILTER_CRITERIA = BACKPORT + "filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "payload-content"
HEARTBEAT_PERIOD = BACKPORT + "heartbeat-period"
TIMEOUT = BACKPORT + "timeout"
MAX_COUNT = BACKPORT + "max-count"

PAYLOADS = ("empty", "id-only", "full-resource")
MIME_TYPES = ("application/fhir+json", "application/json")  # the relay speaks JSON only
MAX_HEADERS = 10
# Headers the relay sets itself: a Subscription must not change how the request is framed.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection"}
)
# channel.extension: url -> (value[x] key, lowest, highest). A heartbeat more often than every
# 10 s, a wait beyond 60 s or a bundle beyond 100 events costs the gateway more than it helps.
LIMITS = {
    HEARTBEAT_PERIOD: ("valueUnsignedInt", 10, 86_400),
    TIMEOUT: ("valueUnsignedInt", 1, 60),
    MAX_COUNT: ("valuePositiveInt", 1, 100),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
Json = Mapping[str, Any]


@dataclass(frozen=True)
class SubscriptionSpec:
    topic: str  # the topic's canonical URL
    resource_type: str
    filters: Filters
    endpoint: str
    headers: tuple[str, ...] = ()  # "Name: value", sent with every notification
    payload: str = "id-only"  # empty | id-only | full-resource
    heartbeat_s: int | None = None
    timeout_s: int = 10
    max_count: int = 20  # events per notification bundle
    purpose: str = "CAREMGT"  # v3-ActReason the notifications are disclosed under
    # Subscription.end (µs since the epoch): nothing happening from then on is queued, and the
    # relay turns the subscription off (R4: "the time for the server to turn it off")
    end_us: int | None = None

    def ended(self, now_us: int) -> bool:
        return self.end_us is not None and self.end_us <= now_us

    def to_json(self) -> str:
        doc = asdict(self)
        if doc["end_us"] is None:  # (as specs stored before `end` was kept read)
            del doc["end_us"]
        return orjson.dumps(doc).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> SubscriptionSpec:
        doc = orjson.loads(text)
        doc["filters"] = tuple((name, tuple(values)) for name, values in doc["filters"])
        doc["headers"] = tuple(doc["headers"])
        # fields a later version stored and this one does not know are left out
        return cls(**{k: v for k, v in doc.items() if k in _SPEC_FIELDS})


_SPEC_FIELDS = frozenset(f.name for f in fields(SubscriptionSpec))


@lru_cache(maxsize=4096)
def stored_spec(text: str) -> SubscriptionSpec:
    """A spec as stored in the `subscriptions` row, parsed once per distinct text (matching and
    the relay read it for every write and every round)."""
    return SubscriptionSpec.from_json(text)


def parse_subscription(
    resource: Json, organisation: Organisation | None, test_mode: bool
) -> SubscriptionSpec:
    """The spec of an R4 Subscription body. `organisation` None (a gateway without
    authentication) skips the registered-endpoint rule; `test_mode` allows http on loopback."""
    topic = _topic(resource.get("criteria"))
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        raise invalid("a Subscription needs a channel", "Subscription.channel", code="required")
    if channel.get("type") != "rest-hook":
        raise FhirError(
            Category.NOT_SUPPORTED,
            "only channel.type rest-hook is supported",
            ("Subscription.channel.type",),
        )
    extensions = _channel_extensions(channel)
    return SubscriptionSpec(
        topic=topic.url,
        resource_type=topic.resource_type,
        filters=_filters(topic, resource.get("_criteria")),
        endpoint=_endpoint(channel.get("endpoint"), organisation, test_mode),
        headers=_headers(channel.get("header")),
        payload=_payload(channel.get("payload"), channel.get("_payload")),
        heartbeat_s=extensions.get(HEARTBEAT_PERIOD),
        timeout_s=extensions.get(TIMEOUT, 10),
        max_count=extensions.get(MAX_COUNT, 20),
        purpose=organisation.delivery.purpose
        if organisation and organisation.delivery
        else "CAREMGT",
        end_us=_end(resource.get("end")),
    )


def _end(value: Any) -> int | None:
    """Subscription.end as µs since the epoch: an instant, with its time zone (R4 `instant`)."""
    if value is None:
        return None
    when = None
    if isinstance(value, str) and _INSTANT.fullmatch(value):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value)
    if when is None:
        raise invalid(
            "end must be an instant with a time zone, e.g. 2027-01-31T23:59:59+02:00",
            "Subscription.end",
        )
    return (when - _EPOCH) // timedelta(microseconds=1)


def _topic(criteria: Any) -> Topic:
    topics = load_topics()
    url = criteria.split("|", 1)[0] if isinstance(criteria, str) else None
    if url not in topics:
        known = ", ".join(sorted(topics))
        raise invalid(
            f"criteria must be the canonical URL of a topic this gateway offers: {known}",
            "Subscription.criteria",
        )
    return topics[url]


def _filters(topic: Topic, criteria_element: Any) -> Filters:
    """The backport-filter-criteria extensions on `_criteria` (each ANDed with the others)."""
    out: Filters = ()
    for i, ext in enumerate(_list(criteria_element, "extension", "Subscription.criteria")):
        if isinstance(ext, dict) and ext.get("url") == FILTER_CRITERIA:
            path = f"Subscription.criteria.extension[{i}]"
            out += parse_filter(topic, ext.get("valueString"), path)
    return out


def _endpoint(endpoint: Any, organisation: Organisation | None, test_mode: bool) -> str:
    path = "Subscription.channel.endpoint"
    if not isinstance(endpoint, str) or not endpoint:
        raise invalid("a rest-hook channel needs an endpoint", path, code="required")
    shown = endpoint[:200]
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise invalid(f"channel.endpoint '{shown}' is not an absolute URL", path) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(f"channel.endpoint '{shown}' is not an absolute http(s) URL", path)
    if parts.username is not None or parts.fragment or any(c in endpoint for c in " \r\n\t"):
        raise invalid("channel.endpoint must not carry user info, a fragment or spaces", path)
    # Path parameters (";"), a double-encoded or escaped character ("%25", "\\") could route
    # differently at the receiver than the registered path prefix says: refused outright.
    if any(c in parts.path for c in (";", "\\")) or "%25" in parts.path.lower():
        raise invalid("channel.endpoint's path must not hold ';', '\\' or '%25'", path)
    # TLS always, except plain http to this machine in delivery test mode (settings).
    if parts.scheme == "http" and not (test_mode and parts.hostname in LOOPBACK):
        raise invalid(f"channel.endpoint '{shown}' must be https", path)
    if organisation is not None and not (
        organisation.delivery and organisation.delivery.covers(endpoint)
    ):
        raise invalid(
            f"channel.endpoint '{shown}' is not one of the organisation's registered delivery"
            " endpoints",
            path,
        )
    return endpoint


def _headers(headers: Any) -> tuple[str, ...]:
    if headers is None:
        return ()
    if not isinstance(headers, list) or len(headers) > MAX_HEADERS:
        raise invalid(
            f"channel.header must be a list of at most {MAX_HEADERS} 'Name: value' strings",
            "Subscription.channel.header",
        )
    for i, header in enumerate(headers):
        name, sep, _ = header.partition(":") if isinstance(header, str) else ("", "", "")
        if not (sep and _TOKEN.fullmatch(name)) or any(c in header for c in "\r\n\0"):
            raise invalid(
                "each channel.header must be 'Name: value' on one line",
                f"Subscription.channel.header[{i}]",
            )
        if name.lower() in RESERVED_HEADERS:
            raise invalid(f"channel.header may not set {name}", f"Subscription.channel.header[{i}]")
    return tuple(headers)


def _payload(mime: Any, payload_element: Any) -> str:
    """The backport-payload-content code; without it id-only when a MIME type is given and
    empty when not (R4: no channel.payload, no body)."""
    path = "Subscription.channel.payload"
    content = None
    for i, ext in enumerate(_list(payload_element, "extension", path)):
        if isinstance(ext, dict) and ext.get("url") == PAYLOAD_CONTENT:
            content = ext.get("valueCode")
            if content not in PAYLOADS:
                raise invalid(
                    f"payload content must be one of {', '.join(PAYLOADS)}",
                    f"{path}.extension[{i}]",
                )
    if mime is None:
        if content not in (None, "empty"):
            raise invalid(f"payload content {content} needs channel.payload (a MIME type)", path)
        return "empty"
    if not isinstance(mime, str) or mime.split(";", 1)[0].strip() not in MIME_TYPES:
        raise FhirError(
            Category.NOT_SUPPORTED, "channel.payload must be application/fhir+json", (path,)
        )
    return content or "id-only"


def _channel_extensions(channel: Json) -> dict[str, int]:
    """The heartbeat-period, timeout and max-count extensions, each once and within bounds."""
    out: dict[str, int] = {}
    for i, ext in enumerate(_list(channel, "extension", "Subscription.channel")):
        url = ext.get("url") if isinstance(ext, dict) else None
        if url not in LIMITS:
            continue
        key, lowest, highest = LIMITS[url]
        value, name = ext.get(key), url.removeprefix(BACKPORT)
        path = f"Subscription.channel.extension[{i}]"
        if url in out:
            raise invalid(f"{name} may be given once", path)
        if type(value) is not int or not lowest <= value <= highest:
            raise invalid(f"{name} needs {key} between {lowest} and {highest}", path)
        out[url] = value
    return out


def _list(element: Any, key: str, path: str) -> list[Any]:
    if element is None:
        return []
    value = element.get(key, []) if isinstance(element, dict) else None
    if not isinstance(value, list):
        raise invalid(f"{path}.{key} must be a list", f"{path}.{key}")
    return value


def check_endpoint(endpoint: Any, organisation: Organisation | None, test_mode: bool) -> str:
    """The channel.endpoint rules on their own (the relay checks them again before each push:
    the organisation's registration may have changed since the Subscription was written)."""
    return _endpoint(endpoint, organisation, test_mode)
