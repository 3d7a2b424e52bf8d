"""Subscription bodies (Backport IG on R4) become a SubscriptionSpec, or are refused with the FHIR
path of the problem; a spec survives its JSON round trip."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.delivery.subscription_spec import (
    BACKPORT,
    SubscriptionSpec,
    parse_subscription,
)
from gateway.errors import Category, FhirError
from gateway.security.registry import Organisation, registration

TOPIC = "https://fhir-plan-gateway.example/SubscriptionTopic/task-responsibility"
ENDPOINT = "https://kela.example/fhir-notifications"


def _organisation(*endpoints: str, delivery: bool = True) -> Organisation:
    doc: dict[str, Any] = {
        "organization": "org-kela",
        "client_id": "kela",
        "scopes": ["system/Subscription.cruds"],
        "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "kid": "k"}]},
    }
    if delivery:
        doc["delivery"] = {"endpoints": list(endpoints or [ENDPOINT]), "purpose": "COC"}
    return registration(doc)


KELA = _organisation()


def _subscription(**channel: Any) -> dict[str, Any]:
    # The smallest Subscription the gateway takes: a topic, one filter, a rest-hook channel.
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Kelan vastuutehtävät",
        "criteria": TOPIC,
        "_criteria": {
            "extension": [
                {
                    "url": BACKPORT + "filter-criteria",
                    "valueString": "Task?owner=Organization/org-kela",
                }
            ]
        },
        "channel": {"type": "rest-hook", "endpoint": ENDPOINT + "/task", **channel},
    }


def _refused(
    body: dict[str, Any], organisation: Organisation | None = KELA, test_mode: bool = False
) -> FhirError:
    with pytest.raises(FhirError) as caught:
        parse_subscription(body, organisation, test_mode)
    return caught.value


def test_the_smallest_subscription() -> None:
    spec = parse_subscription(_subscription(), KELA, test_mode=False)
    assert spec == SubscriptionSpec(
        topic=TOPIC,
        resource_type="Task",
        filters=(("owner", ("Organization/org-kela",)),),
        endpoint=ENDPOINT + "/task",
        payload="empty",  # R4: no channel.payload, no body
        purpose="COC",  # the registration's
    )
    assert (spec.timeout_s, spec.max_count, spec.heartbeat_s, spec.headers) == (10, 20, None, ())


def test_everything_given() -> None:
    body = _subscription(
        header=["Authorization: Bearer s3cret", "X-Tenant: kela"],
        payload="application/fhir+json",
        _payload={
            "extension": [{"url": BACKPORT + "payload-content", "valueCode": "full-resource"}]
        },
        extension=[
            {"url": BACKPORT + "heartbeat-period", "valueUnsignedInt": 3600},
            {"url": BACKPORT + "timeout", "valueUnsignedInt": 30},
            {"url": BACKPORT + "max-count", "valuePositiveInt": 5},
            {"url": "https://other.example/ext", "valueString": "ignored"},
        ],
    )
    body["_criteria"]["extension"].append(
        {"url": BACKPORT + "filter-criteria", "valueString": "status=requested,accepted"}
    )
    spec = parse_subscription(body, KELA, test_mode=False)
    assert spec.headers == ("Authorization: Bearer s3cret", "X-Tenant: kela")
    assert spec.payload == "full-resource"
    assert (spec.heartbeat_s, spec.timeout_s, spec.max_count) == (3600, 30, 5)
    assert spec.filters == (
        ("owner", ("Organization/org-kela",)),
        ("status", ("requested", "accepted")),
    )
    assert SubscriptionSpec.from_json(spec.to_json()) == spec


def test_payload_defaults_to_id_only_with_a_mime_type() -> None:
    body = _subscription(payload="application/fhir+json; fhirVersion=4.0")
    assert parse_subscription(body, KELA, test_mode=False).payload == "id-only"


def test_no_filters_and_no_organisation() -> None:
    body = _subscription()
    del body["_criteria"]
    # A gateway without authentication: only the URL rules apply.
    body["channel"]["endpoint"] = "https://anywhere.example/hook"
    spec = parse_subscription(body, None, test_mode=False)
    assert (spec.filters, spec.purpose) == ((), "CAREMGT")


@pytest.mark.parametrize(
    ("criteria", "path"),
    [
        ("Task?owner=Organization/org-kela", "Subscription.criteria"),  # R4 query criteria
        ("https://fhir-plan-gateway.example/SubscriptionTopic/nope", "Subscription.criteria"),
        (None, "Subscription.criteria"),
    ],
)
def test_unknown_topic(criteria: Any, path: str) -> None:
    body = _subscription()
    body["criteria"] = criteria
    error = _refused(body)
    assert (error.category, error.expression) == (Category.INVALID, (path,))
    assert TOPIC in error.message  # the known topics are listed


def test_a_bad_filter_names_its_extension() -> None:
    body = _subscription()
    body["_criteria"]["extension"].insert(0, {"url": "https://other.example/x", "valueString": "?"})
    body["_criteria"]["extension"].append(
        {"url": BACKPORT + "filter-criteria", "valueString": "Task?nope=1"}
    )
    assert _refused(body).expression == ("Subscription.criteria.extension[2]",)


@pytest.mark.parametrize("kind", ["websocket", "email", "message", None])
def test_only_rest_hook(kind: Any) -> None:
    error = _refused(_subscription(type=kind))
    assert error.category is Category.NOT_SUPPORTED
    assert error.expression == ("Subscription.channel.type",)
    assert "rest-hook" in error.message


def test_no_channel() -> None:
    body = _subscription()
    del body["channel"]
    assert _refused(body).expression == ("Subscription.channel",)


@pytest.mark.parametrize(
    ("endpoint", "says"),
    [
        (None, "needs an endpoint"),
        ("", "needs an endpoint"),
        ("/relative/hook", "absolute"),
        ("ftp://kela.example/fhir-notifications", "absolute"),
        ("https://kela.example:notaport/fhir-notifications", "absolute"),
        ("https://user:pw@kela.example/fhir-notifications", "user info"),
        ("https://kela.example/fhir-notifications#x", "fragment"),
        ("https://kela.example/fhir-notifications/..;/admin", "%25"),
        ("https://kela.example/fhir-notifications/%252e%252e/admin", "%25"),
        ("https://kela.example/fhir-notifications\\\\..\\\\admin", "%25"),
        ("http://kela.example/fhir-notifications", "must be https"),
        ("http://127.0.0.1:9000/fhir-notifications", "must be https"),  # loopback, test mode off
        ("https://evil.example/fhir-notifications", "registered delivery endpoints"),
        ("https://kela.example:8443/fhir-notifications", "registered delivery endpoints"),
        ("https://kela.example/fhir-notifications-evil", "registered delivery endpoints"),
        ("https://kela.example/fhir-notifications/../admin", "registered delivery endpoints"),
        ("https://kela.example/other", "registered delivery endpoints"),
    ],
)
def test_bad_endpoint(endpoint: Any, says: str) -> None:
    error = _refused(_subscription(endpoint=endpoint))
    assert (error.category, error.expression) == (
        Category.INVALID,
        ("Subscription.channel.endpoint",),
    )
    assert says in error.message


def test_registered_endpoints_cover_their_paths() -> None:
    for endpoint in (
        ENDPOINT,
        ENDPOINT + "/",
        ENDPOINT + "/a/b?x=1",
        "https://KELA.example:443/fhir-notifications",
    ):
        assert (
            parse_subscription(_subscription(endpoint=endpoint), KELA, False).endpoint == endpoint
        )


def test_an_organisation_without_delivery_may_not_subscribe() -> None:
    error = _refused(_subscription(), _organisation(delivery=False))
    assert "registered delivery endpoints" in error.message


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost"])
def test_http_on_loopback_only_in_test_mode(host: str) -> None:
    endpoint = f"http://{host}:9000/hook"
    organisation = _organisation(f"http://{host}:9000/")
    assert (
        parse_subscription(_subscription(endpoint=endpoint), organisation, True).endpoint
        == endpoint
    )
    assert parse_subscription(_subscription(endpoint=endpoint), None, True).endpoint == endpoint
    assert "https" in _refused(_subscription(endpoint=endpoint), organisation, False).message
    assert "https" in _refused(_subscription(endpoint=endpoint), None, False).message


def test_http_elsewhere_even_in_test_mode() -> None:
    error = _refused(_subscription(endpoint="http://10.0.0.1/hook"), None, test_mode=True)
    assert "https" in error.message


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ("Authorization: Bearer x", "Subscription.channel.header"),  # not a list
        ([f"X-{i}: v" for i in range(11)], "Subscription.channel.header"),
        (["Authorization Bearer x"], "Subscription.channel.header[0]"),  # no colon
        (["ok: 1", "Bad Name: v"], "Subscription.channel.header[1]"),
        (["X: a\r\nHost: evil"], "Subscription.channel.header[0]"),
        (["X: a\nb"], "Subscription.channel.header[0]"),
        ([": v"], "Subscription.channel.header[0]"),
        ([7], "Subscription.channel.header[0]"),
        (["Host: evil.example"], "Subscription.channel.header[0]"),
        (["content-type: text/plain"], "Subscription.channel.header[0]"),
    ],
)
def test_bad_header(headers: Any, path: str) -> None:
    error = _refused(_subscription(header=headers))
    assert error.expression == (path,)
    assert "evil" not in error.message and "Bearer" not in error.message  # values never echoed


@pytest.mark.parametrize(
    ("channel", "path", "category"),
    [
        (
            {"payload": "application/fhir+xml"},
            "Subscription.channel.payload",
            Category.NOT_SUPPORTED,
        ),
        ({"payload": 1}, "Subscription.channel.payload", Category.NOT_SUPPORTED),
        (
            {
                "payload": "application/fhir+json",
                "_payload": {
                    "extension": [{"url": BACKPORT + "payload-content", "valueCode": "everything"}]
                },
            },
            "Subscription.channel.payload.extension[0]",
            Category.INVALID,
        ),
        (
            {
                "_payload": {
                    "extension": [
                        {"url": BACKPORT + "payload-content", "valueCode": "full-resource"}
                    ]
                }
            },
            "Subscription.channel.payload",
            Category.INVALID,
        ),
        (
            {"_payload": {"extension": "x"}},
            "Subscription.channel.payload.extension",
            Category.INVALID,
        ),
    ],
)
def test_bad_payload(channel: dict[str, Any], path: str, category: Category) -> None:
    error = _refused(_subscription(**channel))
    assert (error.category, error.expression) == (category, (path,))


def test_empty_content_without_a_mime_type() -> None:
    body = _subscription(
        _payload={"extension": [{"url": BACKPORT + "payload-content", "valueCode": "empty"}]}
    )
    assert parse_subscription(body, KELA, False).payload == "empty"


@pytest.mark.parametrize(
    "extension",
    [
        {"url": BACKPORT + "timeout", "valueUnsignedInt": 0},
        {"url": BACKPORT + "timeout", "valueUnsignedInt": 61},
        {"url": BACKPORT + "timeout", "valueInteger": 5},  # wrong value[x]
        {"url": BACKPORT + "timeout", "valueUnsignedInt": True},
        {"url": BACKPORT + "max-count", "valuePositiveInt": 101},
        {"url": BACKPORT + "max-count", "valuePositiveInt": "5"},
        {"url": BACKPORT + "heartbeat-period", "valueUnsignedInt": 1},
        {"url": BACKPORT + "heartbeat-period", "valueUnsignedInt": 86_401},
    ],
)
def test_bad_channel_extension(extension: dict[str, Any]) -> None:
    padding = {"url": "https://other.example/ext", "valueString": "x"}
    error = _refused(_subscription(extension=[padding, extension]))
    assert (error.category, error.expression) == (
        Category.INVALID,
        ("Subscription.channel.extension[1]",),
    )
    assert "between" in error.message


def test_a_channel_extension_given_twice() -> None:
    twice = [{"url": BACKPORT + "timeout", "valueUnsignedInt": 5}] * 2
    error = _refused(_subscription(extension=twice))
    assert error.expression == ("Subscription.channel.extension[1]",)
    assert "once" in error.message


def test_spec_json_round_trip() -> None:
    spec = SubscriptionSpec(
        topic=TOPIC,
        resource_type="Task",
        filters=(("owner", ("Organization/a", "Organization/b")), ("status", ("requested",))),
        endpoint=ENDPOINT,
        headers=("Authorization: Bearer x",),
        payload="id-only",
        heartbeat_s=60,
    )
    again = SubscriptionSpec.from_json(spec.to_json())
    assert again == spec
    assert isinstance(again.filters[0][1], tuple)
    assert SubscriptionSpec.from_json(spec.to_json().encode()) == spec


def test_end_is_kept_in_microseconds_and_stored_specs_read_across_versions() -> None:
    """Subscription.end as µs since the epoch (its offset applied); a spec with no end stores no
    end_us (as specs stored before it existed, which still read), and a stored field this
    version does not know is left out rather than failing every read."""
    ended = parse_subscription({**_subscription(), "end": "2030-01-01T02:00:00+02:00"}, KELA, False)
    assert ended.end_us == 1_893_456_000_000_000
    assert ended.ended(ended.end_us) and not ended.ended(ended.end_us - 1)
    assert SubscriptionSpec.from_json(ended.to_json()) == ended
    plain = parse_subscription(_subscription(), KELA, False)
    assert plain.end_us is None and not plain.ended(2**62)
    assert "end_us" not in plain.to_json()
    assert SubscriptionSpec.from_json(plain.to_json()) == plain
    newer = plain.to_json().replace('"filters"', '"from_the_future":1,"filters"')
    assert SubscriptionSpec.from_json(newer) == plain
