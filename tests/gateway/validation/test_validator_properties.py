"""Property: whatever JSON arrives, validation answers a 400 FhirError or a body, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import FhirError
from gateway.fhir_api.context import RESOURCE_TYPES
from gateway.validation.validator import Validator

ODD = ["", " ", "2024-13-01", "2024-02-30T25:00:00Z", "Patient/1", "#x", "active", "\x00", "1e400"]
NAMES = ["id", "status", "subject", "reference", "coding", "system", "code", "value", "url",
    "extension", "text", "div", "_status", "valueString", "resourceType", "contained", "given",
    "name", "activity", "detail", "intent", "meta", "versionId", "period", "start"]  # fmt: skip
KEYS = ["id", "meta", "text", "status", "intent", "subject", "identifier", "activity", "contained",
    "extension", "_status", "name", "birthDate", "gender", "owner", "period", "note", "active",
    "telecom", "for", "focus", "input", "provision", "lifecycleStatus", "target"]  # fmt: skip

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(ODD),
)
json_value = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(NAMES), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(RESOURCE_TYPES),
    st.dictionaries(st.sampled_from(KEYS), json_value, max_size=5),
    st.one_of(st.none(), st.text(max_size=5)),
)
def test_odd_resources_never_crash(rtype: str, body: dict[str, Any], url_id: str | None) -> None:
    resource = {**body, "resourceType": rtype}
    if url_id is not None:
        resource["id"] = url_id
    try:
        Validator().validate_resource(resource, url_id)
    except FhirError as e:
        assert e.status == 400
        assert all(issue.expression for issue in e.issues)
