"""transaction Bundles (http://hl7.org/fhir/R4/http.html#transaction): urn:uuid rewriting,
conditional entries, ifMatch, ordering, and all-or-nothing on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.fhir_api.context import Services

P_URN = "urn:uuid:6f1c3a52-0000-4000-8000-000000000001"
SR_URN = "urn:uuid:6f1c3a52-0000-4000-8000-000000000002"


def post_bundle(
    client: TestClient, entries: list[Any], kind: str = "transaction", **kw: Any
) -> Any:
    return client.post(
        "/fhir", json={"resourceType": "Bundle", "type": kind, "entry": entries}, **kw
    )


def post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put(resource: dict[str, Any], **request: str) -> dict:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"resource": resource, "request": {"method": "PUT", "url": url, **request}}


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **fields}


def hetu(value: str) -> list[dict[str, str]]:
    return [{"system": "urn:oid:1.2.246.21", "value": value}]


def key_of(entry: dict[str, Any]) -> str:
    """`Type/id` from a response entry's location."""
    return entry["response"]["location"].split("/fhir/")[1].split("/_history")[0]


def stored_count(client: TestClient) -> int:
    return client.get("/fhir/_history").json()["total"]


def expressions(outcome: dict[str, Any]) -> list[str]:
    return [e for issue in outcome["issue"] for e in issue.get("expression", [])]


# -- urn:uuid rewriting -----------------------------------------------------------------------
def test_urn_uuid_references_are_rewritten_across_entries(client: TestClient) -> None:
    sr = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": P_URN},
    }
    care_plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": P_URN},  # CarePlan -> Patient
        "activity": [{"reference": {"reference": SR_URN}}],  # nested: activity[0].reference
        "extension": [
            {"url": "http://example.org/fhir/ext/client", "valueReference": {"reference": P_URN}}
        ],
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">plan for {P_URN}</div>',
        },
    }
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": SR_URN},  # Task.focus -> ServiceRequest
        "for": {"reference": P_URN},
    }
    # The referring entries come first: ids are assigned before anything is written.
    r = post_bundle(
        client,
        [post(care_plan), post(task), post(sr, SR_URN), post(patient(gender="female"), P_URN)],
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created"] * 4
    plan_key, task_key, sr_key, patient_key = (key_of(e) for e in out["entry"])
    assert patient_key.startswith("Patient/") and sr_key.startswith("ServiceRequest/")

    stored_plan = client.get(f"/fhir/{plan_key}").json()
    assert stored_plan["subject"]["reference"] == patient_key
    assert stored_plan["activity"][0]["reference"]["reference"] == sr_key
    assert stored_plan["extension"][0]["valueReference"]["reference"] == patient_key
    assert (
        patient_key in stored_plan["text"]["div"] and "urn:uuid" not in stored_plan["text"]["div"]
    )
    stored_task = client.get(f"/fhir/{task_key}").json()
    assert stored_task["focus"]["reference"] == sr_key
    assert stored_task["for"]["reference"] == patient_key
    assert client.get(f"/fhir/{sr_key}").json()["subject"]["reference"] == patient_key


def test_response_entries_carry_location_etag_last_modified_and_stored_resource(
    client: TestClient,
) -> None:
    r = post_bundle(client, [post(patient(gender="male"), P_URN)])
    entry = r.json()["entry"][0]
    assert entry["response"]["etag"] == 'W/"1"'
    assert entry["response"]["location"].endswith("/_history/1")
    assert entry["resource"]["meta"]["lastUpdated"] == entry["response"]["lastModified"]
    assert entry["fullUrl"] == f"http://testserver/fhir/{key_of(entry)}"


def test_a_placeholder_naming_no_entry_fails_with_its_path(client: TestClient) -> None:
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "urn:uuid:6f1c3a52-0000-4000-8000-0000000000ff"},
    }
    r = post_bundle(client, [post(patient(), P_URN), post(plan)])
    assert r.status_code == 400
    assert "Bundle.entry[1].resource.subject.reference" in expressions(r.json())
    assert stored_count(client) == 0


# -- all-or-nothing ---------------------------------------------------------------------------
def test_an_invalid_entry_at_index_3_fails_everything_before_storage(client: TestClient) -> None:
    entries = [post(patient()) for _ in range(3)]
    entries.append(post(patient(unknownElement=True)))  # the bad one: an unknown element
    r = post_bundle(client, entries)
    assert r.status_code == 400
    out = r.json()
    assert out["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[3].resource.unknownElement" in expressions(out)
    assert "Bundle.entry[3]" in out["issue"][0]["diagnostics"]
    assert stored_count(client) == 0


def test_an_unknown_resource_type_inside_the_bundle_names_its_path(client: TestClient) -> None:
    entries = [post(patient()) for _ in range(3)]
    entries.append(
        {
            "resource": {"resourceType": "Spaceship"},
            "request": {"method": "PUT", "url": "Patient/x"},
        }
    )
    r = post_bundle(client, entries)
    assert r.status_code == 400
    assert "Bundle.entry[3].resource.resourceType" in expressions(r.json())
    assert stored_count(client) == 0


def test_if_match_mismatch_rolls_back_the_whole_transaction(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1", gender="female"))
    entries = [
        post(patient(gender="male"), P_URN),  # would succeed on its own
        put(patient(id="p1", gender="other"), ifMatch='W/"2"'),  # current is W/"1"
    ]
    r = post_bundle(client, entries)
    assert r.status_code == 412
    assert "Bundle.entry[1]" in r.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient/p1").json()["gender"] == "female"
    assert client.get("/fhir/Patient/_history").json()["total"] == 1  # only the first PUT


def test_if_match_that_matches_updates(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1", gender="female"))
    r = post_bundle(client, [put(patient(id="p1", gender="male"), ifMatch='W/"1"')])
    assert r.json()["entry"][0]["response"]["status"] == "200 OK"
    assert r.json()["entry"][0]["response"]["etag"] == 'W/"2"'


def test_a_failing_patch_rolls_back_earlier_entries(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1", gender="female"))
    ops = [{"op": "test", "path": "/gender", "value": "male"}]  # fails: gender is female
    entries = [post(patient()), patch_entry("Patient/p1", ops)]
    r = post_bundle(client, entries)
    assert r.status_code == 422
    assert "Bundle.entry[1]" in r.json()["issue"][0]["diagnostics"]
    assert stored_count(client) == 1


def test_two_entries_for_one_resource_are_refused(client: TestClient) -> None:
    entries = [
        put(patient(id="p1", gender="female")),
        {"request": {"method": "DELETE", "url": "Patient/p1"}},
    ]
    r = post_bundle(client, entries)
    assert r.status_code == 400
    assert "Bundle.entry[1]" in r.json()["issue"][0]["diagnostics"] or (
        "Bundle.entry[0]" in r.json()["issue"][0]["diagnostics"]
    )
    assert stored_count(client) == 0


def test_a_repeated_full_url_is_refused(client: TestClient) -> None:
    r = post_bundle(client, [post(patient(), P_URN), post(patient(), P_URN)])
    assert r.status_code == 400
    assert "Bundle.entry[1].fullUrl" in expressions(r.json())


# -- ordering ---------------------------------------------------------------------------------
def test_delete_runs_before_post_and_get_after_writes_in_request_order(
    client: TestClient,
) -> None:
    client.put("/fhir/Patient/old", json=patient(id="old"))
    entries = [
        {"request": {"method": "GET", "url": "Patient/new"}},  # runs last: sees the PUT
        post(patient(gender="male"), P_URN),
        put(patient(id="new", gender="female")),
        {"request": {"method": "DELETE", "url": "Patient/old"}},
    ]
    r = post_bundle(client, entries)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["200 OK", "201 Created", "201 Created", "204 No Content"]
    assert r.json()["entry"][0]["resource"]["gender"] == "female"
    assert client.get("/fhir/Patient/old").status_code == 410


def test_absolute_request_urls_on_our_base_are_accepted(client: TestClient) -> None:
    entry = {
        "resource": patient(id="abs"),
        "request": {"method": "PUT", "url": "http://testserver/fhir/Patient/abs"},
    }
    r = post_bundle(client, [entry])
    assert r.json()["entry"][0]["response"]["status"] == "201 Created"
    foreign = {
        "resource": patient(id="x"),
        "request": {"method": "PUT", "url": "http://other.example/fhir/Patient/x"},
    }
    r = post_bundle(client, [foreign])
    assert r.status_code == 400
    assert "Bundle.entry[0].request.url" in expressions(r.json())


# -- PATCH ------------------------------------------------------------------------------------
def patch_entry(url: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(orjson.dumps(ops)).decode(),
    }
    return {"resource": binary, "request": {"method": "PATCH", "url": url}}


def test_json_patch_in_a_binary_is_applied(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1", gender="female"))
    ops = [{"op": "replace", "path": "/gender", "value": "male"}]
    r = post_bundle(client, [patch_entry("Patient/p1", ops)])
    assert r.json()["entry"][0]["response"]["status"] == "200 OK"
    assert client.get("/fhir/Patient/p1").json()["gender"] == "male"


def test_fhirpath_patch_is_refused_clearly(client: TestClient) -> None:
    entry = {
        "resource": {"resourceType": "Parameters", "parameter": []},
        "request": {"method": "PATCH", "url": "Patient/p1"},
    }
    r = post_bundle(client, [entry])
    assert r.status_code == 400
    assert r.json()["issue"][0]["code"] == "not-supported"
    assert "FHIRPath Patch" in r.json()["issue"][0]["diagnostics"]


# -- Prefer -----------------------------------------------------------------------------------
def test_prefer_minimal_leaves_resources_out_of_the_entries(client: TestClient) -> None:
    r = post_bundle(client, [post(patient())], headers={"Prefer": "return=minimal"})
    entry = r.json()["entry"][0]
    assert "resource" not in entry and entry["response"]["status"] == "201 Created"


def test_prefer_operation_outcome_gives_each_entry_an_outcome(client: TestClient) -> None:
    r = post_bundle(client, [post(patient())], headers={"Prefer": "return=OperationOutcome"})
    assert r.json()["entry"][0]["response"]["outcome"]["resourceType"] == "OperationOutcome"


# -- the envelope -----------------------------------------------------------------------------
def test_a_bundle_of_another_type_is_refused_naming_bundle_type(client: TestClient) -> None:
    r = post_bundle(client, [], kind="collection")
    assert r.status_code == 400
    assert expressions(r.json()) == ["Bundle.type"]


def test_a_body_that_is_not_a_bundle_is_refused(client: TestClient) -> None:
    assert client.post("/fhir", json=patient()).status_code == 400
    assert client.post("/fhir", json=[1, 2]).status_code == 400


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        (5, "Bundle.entry[0]"),
        ({"resource": patient()}, "Bundle.entry[0].request"),
        ({"request": {"method": "HEAD", "url": "Patient"}}, "Bundle.entry[0].request.method"),
        ({"request": {"method": "GET"}}, "Bundle.entry[0].request.url"),
        ({"request": {"method": "POST", "url": "Patient"}}, "Bundle.entry[0].resource"),
        ({"request": {"method": "GET", "url": "Nope/1"}}, "Bundle.entry[0].request.url"),
        ({"request": {"method": "DELETE", "url": "Patient"}}, "Bundle.entry[0].request.url"),
        (
            {"request": {"method": "GET", "url": "Patient/1", "bogus": 1}},
            "Bundle.entry[0].request.bogus",
        ),
        (
            {"resource": patient(id="a"), "request": {"method": "PUT", "url": "Patient/b"}},
            "Bundle.entry[0].resource.id",
        ),
        (
            {"resource": {"resourceType": "Goal"}, "request": {"method": "POST", "url": "Patient"}},
            "Bundle.entry[0].resource.resourceType",
        ),
    ],
)
def test_wrong_entry_shapes_are_400_with_the_path(
    client: TestClient, entry: Any, path: str
) -> None:
    r = post_bundle(client, [entry])
    assert r.status_code == 400, r.text
    assert path in expressions(r.json())


def test_too_many_entries_are_refused(client: TestClient, services: Services) -> None:
    services.settings.max_bundle_entries = 2
    r = post_bundle(client, [post(patient()) for _ in range(3)])
    assert r.status_code == 413
    assert stored_count(client) == 0


# -- conditional entries (need gateway.search: match_keys) --------------------------------------
def test_conditional_create_inside_a_transaction_zero_one_many(client: TestClient) -> None:
    query = "identifier=urn:oid:1.2.246.21|010101-923F"
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": P_URN},
    }
    entries = [post(patient(identifier=hetu("010101-923F")), P_URN, ifNoneExist=query), post(plan)]
    first = post_bundle(client, entries)  # 0 matches: created
    assert [e["response"]["status"] for e in first.json()["entry"]] == ["201 Created"] * 2
    patient_key = key_of(first.json()["entry"][0])

    again = post_bundle(client, entries)  # 1 match: that one, and the plan refers to it
    assert again.json()["entry"][0]["response"]["status"] == "200 OK"
    plan_key = key_of(again.json()["entry"][1])
    assert client.get(f"/fhir/{plan_key}").json()["subject"]["reference"] == patient_key

    client.post("/fhir/Patient", json=patient(identifier=hetu("010101-923F")))
    many = post_bundle(client, entries)  # 2 matches: 412, nothing stored
    assert many.status_code == 412
    assert "Bundle.entry[0]" in many.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/CarePlan/_history").json()["total"] == 2


def test_conditional_delete_runs_before_a_conditional_create(client: TestClient) -> None:
    query = "identifier=urn:oid:1.2.246.21|020202-9225"
    client.post("/fhir/Patient", json=patient(identifier=hetu("020202-9225"), gender="female"))
    entries = [
        post(patient(identifier=hetu("020202-9225"), gender="male"), ifNoneExist=query),
        {"request": {"method": "DELETE", "url": f"Patient?{query}"}},
    ]
    r = post_bundle(client, entries)
    assert [e["response"]["status"] for e in r.json()["entry"]] == [
        "201 Created",
        "204 No Content",
    ]


def test_conditional_references_resolve_to_the_one_match(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient(identifier=hetu("030303-9337")))
    pid = created.json()["id"]
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient?identifier=urn:oid:1.2.246.21|030303-9337"},
    }
    r = post_bundle(client, [post(plan)])
    assert r.status_code == 200, r.text
    stored = client.get(f"/fhir/{key_of(r.json()['entry'][0])}").json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"
    plan["subject"] = {"reference": "Patient?identifier=urn:oid:1.2.246.21|nobody"}
    r = post_bundle(client, [post(plan)])
    assert r.status_code == 400
    assert "Bundle.entry[0].resource.subject.reference" in expressions(r.json())


def test_conditional_update_inside_a_transaction(client: TestClient) -> None:
    query = "identifier=urn:oid:1.2.246.21|040404-9449"
    entry = {
        "resource": patient(identifier=hetu("040404-9449"), gender="female"),
        "request": {"method": "PUT", "url": f"Patient?{query}"},
    }
    first = post_bundle(client, [entry])
    assert first.json()["entry"][0]["response"]["status"] == "201 Created"
    entry["resource"]["gender"] = "male"
    second = post_bundle(client, [entry])
    assert second.json()["entry"][0]["response"]["status"] == "200 OK"
    assert key_of(first.json()["entry"][0]) == key_of(second.json()["entry"][0])


def test_a_placeholder_is_type_checked_once_resolved(client: TestClient) -> None:
    org_urn = "urn:uuid:6f1c3a52-0000-4000-8000-0000000000aa"
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": org_urn},  # CarePlan.subject may be Patient or Group only
    }
    org = {"resourceType": "Organization", "name": "Sosiaalitoimi"}
    r = post_bundle(client, [post(org, org_urn), post(plan)])
    assert r.status_code == 400
    assert any(e.startswith("Bundle.entry[1].resource.subject") for e in expressions(r.json()))
    assert stored_count(client) == 0


# -- never a 500 --------------------------------------------------------------------------------
_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_request = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", 3]),
        "url": st.sampled_from(
            ["Patient", "Patient/p1", "Patient?gender=male", "Patient/p1/_history/1", "", "/", "?"]
        )
        | st.text(max_size=12),
    },
    optional={"ifMatch": _junk, "ifNoneExist": _junk, "ifNoneMatch": _junk},
)
_resource = (
    st.sampled_from(
        [patient(), patient(id="p1"), {"resourceType": "Binary"}, {"resourceType": "Bundle"}]
    )
    | _junk
)
_entry = (
    st.fixed_dictionaries(
        {},
        optional={
            "request": _request | _junk,
            "resource": _resource,
            "fullUrl": st.sampled_from([P_URN, SR_URN]) | _junk,
        },
    )
    | _junk
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=st.lists(_entry, max_size=4), kind=st.sampled_from(["transaction", "batch"]))
def test_wrong_shapes_never_cause_a_server_error(
    client: TestClient, entries: list[Any], kind: str
) -> None:
    r = post_bundle(client, entries, kind=kind)
    assert r.status_code < 500, r.text
