"""FHIR requests with require_auth on: 401 without a valid bearer token, 403 when the scopes do
not cover the interaction or the acting PractitionerRole is not the caller's, 200 otherwise."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey

from gateway.fhir_api.context import FhirRequest, Services
from gateway.samples import SAMPLES_DIR, load_file
from gateway.security import authenticate as auth
from gateway.security import tokens
from tests.gateway.security.helpers import EC_CLIENT, RSA_CLIENT, token

JSON = {"Content-Type": "application/fhir+json"}
HEADER = "X-Acting-Practitioner-Role"


@pytest.fixture
def secured(client: TestClient, services: Services) -> Iterator[TestClient]:
    """The sample network loaded, then authentication switched on."""
    load_file(services, SAMPLES_DIR / "00-network.json")
    r = client.put("/fhir/CarePlan/p1", json=_plan("p1"), headers=JSON)
    assert r.status_code == 201, r.text
    services.settings.require_auth = True
    yield client
    services.settings.require_auth = False


def _plan(pid: str) -> dict:
    return {
        "resourceType": "CarePlan",
        "id": pid,
        "status": "active",
        "intent": "plan",
        "subject": {"display": "test"},
    }


def bearer(value: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}", **more}


def test_metadata_stays_public(secured: TestClient) -> None:
    assert secured.get("/fhir/metadata").status_code == 200


def test_no_token(secured: TestClient) -> None:
    r = secured.get("/fhir/CarePlan/p1")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "value", ["Bearer", "Basic dXNlcjpwdw==", "Bearer not-a-token", "Bearer a.b.c"]
)
def test_bad_authorization_header(secured: TestClient, value: str) -> None:
    r = secured.get("/fhir/CarePlan/p1", headers={"Authorization": value})
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]


def _forged(services: Services, key: OctKey, **claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": tokens.ISSUER,
        "sub": EC_CLIENT,
        "org": "org-kela",
        "scope": "system/CarePlan.rs",
        "iat": now,
        "exp": now + 60,
        **claims,
    }
    return jwt.encode({"alg": "HS256", "typ": tokens.TYPE}, body, key, algorithms=["HS256"])


def test_expired_token(secured: TestClient, services: Services) -> None:
    assert services.security is not None
    now = int(time.time())
    old = _forged(services, services.security.key, iat=now - 400, exp=now - 100)
    r = secured.get("/fhir/CarePlan/p1", headers=bearer(old))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "expired" in r.json()["issue"][0]["diagnostics"]


def test_token_made_with_another_key(secured: TestClient, services: Services) -> None:
    other = _forged(services, OctKey.generate_key(256))
    assert secured.get("/fhir/CarePlan/p1", headers=bearer(other)).status_code == 401


def test_token_for_another_organisation_claim(secured: TestClient, services: Services) -> None:
    assert services.security is not None
    lying = _forged(services, services.security.key, org="org-sote-keskus")
    assert secured.get("/fhir/CarePlan/p1", headers=bearer(lying)).status_code == 401


def test_read_with_a_covering_scope(secured: TestClient) -> None:
    r = secured.get("/fhir/CarePlan/p1", headers=bearer(token(secured, scope="system/CarePlan.r")))
    assert r.status_code == 200, r.text


def test_scope_not_covering_the_interaction(secured: TestClient) -> None:
    headers = bearer(token(secured, scope="system/CarePlan.s"))
    r = secured.get("/fhir/CarePlan/p1", headers=headers)  # read needs r
    assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
    assert secured.get("/fhir/CarePlan", headers=headers).status_code == 200  # search needs s
    assert secured.get("/fhir/Task", headers=headers).status_code == 403  # another type
    assert (
        secured.put("/fhir/CarePlan/p1", json=_plan("p1"), headers={**headers, **JSON}).status_code
        == 403
    )
    assert secured.get("/fhir/_history", headers=headers).status_code == 403  # system: needs *.s


def test_v1_scope(secured: TestClient) -> None:
    headers = bearer(token(secured, RSA_CLIENT, "system/CarePlan.write"), **JSON)
    assert secured.put("/fhir/CarePlan/p1", json=_plan("p1"), headers=headers).status_code == 200
    assert secured.get("/fhir/CarePlan/p1", headers=headers).status_code == 403


def test_every_bundle_entry_needs_its_scope(secured: TestClient) -> None:
    headers = bearer(token(secured, RSA_CLIENT, "system/CarePlan.ru"), **JSON)
    entries = [
        {"resource": _plan("p2"), "request": {"method": "PUT", "url": "CarePlan/p2"}},
        {"request": {"method": "GET", "url": "CarePlan/p1"}},
    ]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
    assert secured.post("/fhir", json=bundle, headers=headers).status_code == 200
    entries.append({"request": {"method": "DELETE", "url": "CarePlan/p1"}})
    r = secured.post("/fhir", json={**bundle, "entry": entries}, headers=headers)
    assert r.status_code == 403 and "'d' on CarePlan" in r.text
    assert secured.get("/fhir/CarePlan/p1", headers=headers).status_code == 200  # not deleted


# -- the acting professional ------------------------------------------------------------------
def test_acting_role_of_the_calling_organisation(secured: TestClient, services: Services) -> None:
    headers = bearer(token(secured), **{HEADER: "PractitionerRole/role-sosiaalityontekija"})
    # role-sosiaalityontekija belongs to org-sosiaalipalvelut, not to Kela
    assert secured.get("/fhir/CarePlan/p1", headers=headers).status_code == 403
    kela_role = {
        "resourceType": "PractitionerRole",
        "id": "role-kela",
        "organization": {"reference": "Organization/org-kela"},
    }
    services.settings.require_auth = False
    assert (
        secured.put("/fhir/PractitionerRole/role-kela", json=kela_role, headers=JSON).status_code
        == 201
    )
    services.settings.require_auth = True
    for value in ("role-kela", "PractitionerRole/role-kela"):
        r = secured.get("/fhir/CarePlan/p1", headers={**headers, HEADER: value})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("value", ["role-missing", "Organization/org-kela"])
def test_unknown_or_malformed_acting_role(secured: TestClient, value: str) -> None:
    r = secured.get("/fhir/CarePlan/p1", headers=bearer(token(secured), **{HEADER: value}))
    assert r.status_code in (400, 403)


def test_authenticate_gives_the_caller(secured: TestClient, services: Services) -> None:
    access = token(secured, RSA_CLIENT, "system/*.rs")
    headers = {
        "authorization": f"Bearer {access}",
        "x-acting-practitioner-role": "role-terveydenhoitaja",
    }
    caller = auth.authenticate(services, headers)
    assert (caller.organization, caller.client_id) == ("org-sote-keskus", RSA_CLIENT)
    assert caller.acting_role_reference == "PractitionerRole/role-terveydenhoitaja"
    assert caller.permits("Task", "r") and not caller.permits("Task", "c")
    req = FhirRequest(method="DELETE", base="http://testserver/fhir", resource_type="Task", id="t")
    with pytest.raises(Exception, match="'d' on Task"):
        auth.authorize(caller, "/{rtype}/{rid}", req)


def test_off_by_default(client: TestClient) -> None:
    assert client.get("/fhir/CarePlan/none").status_code == 404  # no 401: require_auth is off
