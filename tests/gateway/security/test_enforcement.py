"""FHIR requests with require_auth on (the default): 401 without a valid bearer token, 403 when
the scopes do not cover the interaction or the acting PractitionerRole is not the caller's, 200
otherwise. Turning it off takes an explicit setting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey

from gateway.fhir_api.context import FhirRequest, Services
from gateway.samples import SAMPLES_DIR, load_file
from gateway.security import authenticate as auth
from gateway.security import tokens
from gateway.settings import Settings
from tests.gateway.security.helpers import EC_CLIENT, RSA_CLIENT, token
from tests.helpers import ActingClient

JSON = {"Content-Type": "application/fhir+json"}
HEADER = "X-Acting-Practitioner-Role"


@pytest.fixture
def secured(
    client: TestClient, anonymous: ActingClient, services: Services
) -> Iterator[ActingClient]:
    """The sample network, a plan stored by org-sote-keskus (the default test caller), then a
    client that sends no token unless the test gives one."""
    load_file(services, SAMPLES_DIR / "00-network.json")
    r = client.put("/fhir/CarePlan/p1", json=_plan("p1"), headers=JSON)
    assert r.status_code == 201, r.text
    yield anonymous


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


def test_metadata_stays_public(secured: ActingClient) -> None:
    assert secured.get("/fhir/metadata").status_code == 200


def test_no_token(secured: ActingClient) -> None:
    r = secured.get("/fhir/CarePlan/p1")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "value", ["Bearer", "Basic dXNlcjpwdw==", "Bearer not-a-token", "Bearer a.b.c"]
)
def test_bad_authorization_header(secured: ActingClient, value: str) -> None:
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


def test_expired_token(secured: ActingClient, services: Services) -> None:
    assert services.security is not None
    now = int(time.time())
    old = _forged(services, services.security.key, iat=now - 400, exp=now - 100)
    r = secured.get("/fhir/CarePlan/p1", headers=bearer(old))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "expired" in r.json()["issue"][0]["diagnostics"]


def test_token_made_with_another_key(secured: ActingClient, services: Services) -> None:
    other = _forged(services, OctKey.generate_key(256))
    assert secured.get("/fhir/CarePlan/p1", headers=bearer(other)).status_code == 401


def test_token_for_another_organisation_claim(secured: ActingClient, services: Services) -> None:
    assert services.security is not None
    lying = _forged(services, services.security.key, org="org-sote-keskus")
    assert secured.get("/fhir/CarePlan/p1", headers=bearer(lying)).status_code == 401


def test_read_with_a_covering_scope(secured: ActingClient) -> None:
    # as the plan's own organisation: what others may read is the consent gate's tests' business
    access = token(secured, RSA_CLIENT, "system/CarePlan.r")
    r = secured.get("/fhir/CarePlan/p1", headers=bearer(access))
    assert r.status_code == 200, r.text


def test_scope_not_covering_the_interaction(secured: ActingClient) -> None:
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


def test_v1_scope(secured: ActingClient) -> None:
    headers = bearer(token(secured, RSA_CLIENT, "system/CarePlan.write"), **JSON)
    assert secured.put("/fhir/CarePlan/p1", json=_plan("p1"), headers=headers).status_code == 200
    assert secured.get("/fhir/CarePlan/p1", headers=headers).status_code == 403


def test_every_bundle_entry_needs_its_scope(secured: ActingClient) -> None:
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
def test_acting_role_of_the_calling_organisation(secured: ActingClient, client: TestClient) -> None:
    access = token(secured, RSA_CLIENT, "system/CarePlan.r")
    headers = bearer(access, **{HEADER: "PractitionerRole/role-sosiaalityontekija"})
    # role-sosiaalityontekija belongs to org-sosiaalipalvelut, not to the sote centre
    assert secured.get("/fhir/CarePlan/p1", headers=headers).status_code == 403
    role = {
        "resourceType": "PractitionerRole",
        "id": "role-sote-2",
        "organization": {"reference": "Organization/org-sote-keskus"},
    }
    r = client.put("/fhir/PractitionerRole/role-sote-2", json=role, headers=JSON)
    assert r.status_code == 201, r.text  # usable at once: the role is read on every request
    for value in ("role-sote-2", "PractitionerRole/role-sote-2"):
        r = secured.get("/fhir/CarePlan/p1", headers={**headers, HEADER: value})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("value", ["role-missing", "Organization/org-kela"])
def test_unknown_or_malformed_acting_role(secured: ActingClient, value: str) -> None:
    r = secured.get("/fhir/CarePlan/p1", headers=bearer(token(secured), **{HEADER: value}))
    assert r.status_code in (400, 403)


def test_authenticate_gives_the_caller(secured: ActingClient, services: Services) -> None:
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


def test_on_by_default(anonymous: ActingClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAN_GATEWAY_REQUIRE_AUTH", raising=False)
    assert Settings(database_url="sqlite:///unused.db").require_auth
    r = anonymous.get("/fhir/CarePlan/none")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_turned_off_only_explicitly(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PLAN_GATEWAY_REQUIRE_AUTH", value)
    assert not Settings(database_url="sqlite:///unused.db").require_auth
    monkeypatch.setenv("PLAN_GATEWAY_REQUIRE_AUTH", "perhaps")
    with pytest.raises(ValueError, match="PLAN_GATEWAY_REQUIRE_AUTH"):
        Settings(database_url="sqlite:///unused.db")


def test_off_when_turned_off(anonymous: ActingClient, services: Services) -> None:
    """The unsafe local mode: no token asked for (and so no caller, gate or audit)."""
    services.settings.require_auth = False
    assert anonymous.get("/fhir/CarePlan/none").status_code == 404  # no 401


def test_default_test_client_acts_as_sote_keskus(client: TestClient, services: Services) -> None:
    access = client.headers["authorization"].removeprefix("Bearer ")
    caller = auth.authenticate(services, {"authorization": f"Bearer {access}"})
    assert (caller.organization, caller.client_id) == ("org-sote-keskus", RSA_CLIENT)
    assert caller.permits("Task", "d")


def test_acting_as_another_organisation(
    client: TestClient, services: Services, as_org: Callable[..., dict[str, str]]
) -> None:
    headers = as_org("org-kela", "system/CarePlan.rs")
    caller = auth.authenticate(services, {k.lower(): v for k, v in headers.items()})
    assert caller.organization == "org-kela" and not caller.permits("Task", "r")
    assert client.get("/fhir/Task", headers=headers).status_code == 403  # kela's token, not ours
    with pytest.raises(ValueError, match="beyond"):
        as_org("kela", "system/Task.d")
