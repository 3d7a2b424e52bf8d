"""Only the inbox makes a mirror, and only a mirror goes back to the upstream, on both stores.

A local organisation must not make B (us) PATCH A's Tasks with Kela's upstream credentials: the
mirror marker is server-owned (refused on a caller's create, or an update adding or changing
it; kept when an update leaves it out or carries it unchanged), push_back sends only for a Task
under the keyed mirror id of the A Task it names and owned by the upstream's organisation, and
the inbox never takes over a Task it did not make (the event is recorded, not applied, 200)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from adapters.ids import Ids
from gateway.consent.enforcement import Gate
from gateway.delivery import mirror
from gateway.delivery.upstreams import Upstream, load_upstreams
from gateway.errors import FhirError
from gateway.fhir_api.context import Services
from gateway.fhir_api.interactions.update import update_in
from gateway.settings import Settings
from tests.gateway.delivery.upstream_files import SECRET, a_task, notification, write_upstream

A = "https://a.example/fhir"
URL = "/delivery/notifications/a"
CHANNEL = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/fhir+json"}
PATCH = {"Content-Type": "application/json-patch+json"}
CANCEL = [{"op": "replace", "path": "/status", "value": "cancelled"}]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    write_upstream(tmp_path / "upstreams", A)
    settings.upstreams_dir = str(tmp_path / "upstreams")
    return settings


@pytest.fixture
def upstream(services: Services) -> Upstream:
    return load_upstreams(services.settings.upstreams_dir)["a"]


def mid_of(services: Services, upstream: Upstream, a_id: str) -> str:
    assert services.ids is not None
    return mirror.mirror_id(services.ids, upstream, a_id)


def marked(
    a_id: str = "victim", version: int = 1, owner: str = "org-sote-keskus", **more: Any
) -> dict[str, Any]:
    """A Task as a forger writes it: the mirror marker and an identifier naming A's Task."""
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "extension": [mirror._marker("a", version)],
        "identifier": [{"system": f"{A}/Task", "value": a_id}],
        "owner": {"reference": f"Organization/{owner}"},
        **more,
    }


def fhir_rows(svc: Services) -> list[dict[str, Any]]:
    with svc.repo.reader() as session:
        rows = session.query(
            "SELECT stream, destination, payload FROM outbox WHERE channel = 'fhir' ORDER BY pos"
        )
    return [{"stream": s, "url": d, **orjson.loads(p)} for s, d, p in rows]


def stored(svc: Services, id: str) -> dict[str, Any] | None:
    with svc.repo.reader() as session:
        sv = session.current("Task", id)
    return None if sv is None or sv.deleted else orjson.loads(sv.body)


def push(client: TestClient, body: Any) -> Any:
    return client.post(URL, content=orjson.dumps(body), headers=CHANNEL)


def write_marked(svc: Services, id: str, task: dict[str, Any]) -> None:
    """A marked Task that got in some other way (before this guard, a trusted tool inside
    `applying()`): push_back must still not take it for a mirror."""
    with svc.repo.writer() as session, mirror.applying():
        gate = Gate.trusted()
        checked = svc.validator.validate_resource({**task, "id": id}, expect_id=id)
        update_in(svc, session, "http://testserver/fhir", "Task", id, checked, gate=gate)
        gate.flush_into(session)


# -- the marker is server-owned ----------------------------------------------------------------
def test_a_caller_may_not_create_a_task_carrying_the_marker(
    services: Services, org_client: Any, upstream: Upstream
) -> None:
    other = org_client("sote-keskus")
    made = other.post("/fhir/Task", json=marked())
    assert made.status_code == 403, made.text
    assert made.json()["issue"][0]["expression"] == ["Task.extension"]
    put = other.put("/fhir/Task/own-task", json={**marked(), "id": "own-task"})
    assert put.status_code == 403, put.text
    # squatting the mirror id with a marker A's next version would have to beat
    mid = mid_of(services, upstream, "t1")
    squat = {**marked("t1", 999, "org-kela", description="forged"), "id": mid}
    assert other.put(f"/fhir/Task/{mid}", json=squat).status_code == 403
    assert stored(services, "own-task") is None and stored(services, mid) is None
    assert fhir_rows(services) == []


def test_a_caller_may_not_add_the_marker_to_its_own_task(
    services: Services, org_client: Any
) -> None:
    other = org_client("sote-keskus")
    plain = {k: v for k, v in marked().items() if k != "extension"}
    made = other.post("/fhir/Task", json=plain)
    assert made.status_code == 201, made.text
    tid = made.json()["id"]
    add = [{"op": "add", "path": "/extension", "value": [mirror._marker("a", 1)]}]
    assert other.patch(f"/fhir/Task/{tid}", json=add, headers=PATCH).status_code == 403
    put = other.put(f"/fhir/Task/{tid}", json={**marked(), "id": tid})
    assert put.status_code == 403
    assert other.patch(f"/fhir/Task/{tid}", json=CANCEL, headers=PATCH).status_code == 200
    assert mirror.markers(stored(services, tid)) == []
    assert fhir_rows(services) == []


def test_the_mirror_owner_keeps_the_marker_as_the_inbox_left_it(
    client: TestClient, services: Services, org_client: Any, upstream: Upstream
) -> None:
    assert push(client, notification(A, [(1, a_task(), "1")])).status_code == 200
    mid = mid_of(services, upstream, "t1")
    kela = org_client("kela")
    read = kela.get(f"/fhir/Task/{mid}").json()
    changed = orjson.loads(orjson.dumps(read))
    changed["extension"][0]["extension"][1]["valueInteger"] = 999
    assert kela.put(f"/fhir/Task/{mid}", json=changed).status_code == 403
    bump = [{"op": "replace", "path": "/extension/0/extension/1/valueInteger", "value": 7}]
    assert kela.patch(f"/fhir/Task/{mid}", json=bump, headers=PATCH).status_code == 403
    # left out: refused by the Task rules (extension is not the owner's to change) or, for a
    # writer they let change it, the stored marker put back (mirror.shape): it stays either way
    dropped = {k: v for k, v in read.items() if k not in ("extension", "meta")}
    dropped["status"] = "accepted"
    assert kela.put(f"/fhir/Task/{mid}", json=dropped).status_code in (200, 403)
    assert mirror.marker(stored(services, mid)) == ("a", 1)
    # carried unchanged, as read (fhirpy's save): taken, and told to A
    again = kela.get(f"/fhir/Task/{mid}").json()
    again["status"] = "accepted"
    assert kela.put(f"/fhir/Task/{mid}", json=again).status_code == 200
    assert [(r["url"], r["version"]) for r in fhir_rows(services)] == [(f"{A}/Task/t1", 1)]


def test_the_shaper_refuses_every_writer_but_the_inbox() -> None:
    with pytest.raises(FhirError) as refused:
        mirror.shape(None, "create", None, marked())
    assert refused.value.status == 403
    with mirror.applying():
        assert mirror.shape(None, "create", None, marked()) == marked()
    live = marked()
    assert mirror.shape(None, "update", live, {**live, "status": "accepted"}) is not None
    kept = mirror.shape(None, "update", live, {"resourceType": "Task", "status": "accepted"})
    assert kept is not None and mirror.markers(kept) == mirror.markers(live)
    assert mirror.shape(None, "delete", live, None) is None


# -- push_back sends only for a real mirror -------------------------------------------------------
def test_a_marked_task_not_under_its_mirror_id_is_never_pushed(
    services: Services, org_client: Any, upstream: Upstream
) -> None:
    # the reviewer's forgery, had the marker got in: sote-keskus's own Task naming A's victim
    write_marked(services, "forged-1", marked())
    other = org_client("sote-keskus")
    assert other.patch("/fhir/Task/forged-1", json=CANCEL, headers=PATCH).status_code == 200
    # owned by Kela, naming A's victim, but not the victim's mirror id
    write_marked(services, "forged-2", marked(owner="org-kela"))
    kela = org_client("kela")
    assert kela.patch("/fhir/Task/forged-2", json=CANCEL, headers=PATCH).status_code == 200
    # under the victim's mirror id, but not owned by the upstream's organisation
    mid = mid_of(services, upstream, "victim")
    write_marked(services, mid, marked())
    assert other.patch(f"/fhir/Task/{mid}", json=CANCEL, headers=PATCH).status_code == 200
    assert fhir_rows(services) == []


def test_a_mirror_pointed_at_another_a_task_is_not_pushed(
    client: TestClient, services: Services, org_client: Any, upstream: Upstream
) -> None:
    assert push(client, notification(A, [(1, a_task(), "1")])).status_code == 200
    mid = mid_of(services, upstream, "t1")
    kela = org_client("kela")
    task = kela.get(f"/fhir/Task/{mid}").json()
    task["identifier"] = [{"system": f"{A}/Task", "value": "victim"}]
    task["status"] = "cancelled"
    kela.put(f"/fhir/Task/{mid}", json=task)  # the write rules may take it or not
    assert all("victim" not in r["url"] for r in fhir_rows(services))


# -- mirror ids are keyed; the inbox never takes over a Task it did not make -------------------
def test_mirror_ids_are_keyed(upstream: Upstream) -> None:
    one, two = Ids(b"k" * 32), Ids(b"j" * 32)
    assert mirror.mirror_id(one, upstream, "t1") == mirror.mirror_id(one, upstream, "t1")
    assert mirror.mirror_id(one, upstream, "t1") != mirror.mirror_id(two, upstream, "t1")
    assert mirror.mirror_id(one, upstream, "t1") != mirror.mirror_id(one, upstream, "t2")
    assert mirror.mirror_id(one, upstream, "t1") != Ids.derived("upstream-task", "a", "t1")


def test_the_inbox_never_overwrites_a_task_it_did_not_make(
    client: TestClient, services: Services, org_client: Any, upstream: Upstream
) -> None:
    mid = mid_of(services, upstream, "t1")
    squat = {
        "resourceType": "Task",
        "id": mid,
        "status": "requested",
        "intent": "order",
        "description": "forged by sote-keskus",
        "owner": {"reference": "Organization/org-sote-keskus"},
    }
    other = org_client("sote-keskus")
    assert other.put(f"/fhir/Task/{mid}", json=squat).status_code == 201
    answer = push(client, notification(A, [(1, a_task(), "1")]))
    assert answer.status_code == 200, answer.text  # A's relay retries any 4xx for 72 h
    assert "0 event(s) applied, 0 already had, 1 refused" in answer.text
    task = stored(services, mid)
    assert task is not None and task["description"] == "forged by sote-keskus"
    assert task["meta"]["versionId"] == "1" and mirror.markers(task) == []
    # recorded: the same event again is a repeat; A's next version is refused as well
    assert "1 already had" in push(client, notification(A, [(1, a_task(), "1")])).text
    assert "1 refused" in push(client, notification(A, [(2, a_task(), "2")])).text
    # deleted, it is still not the inbox's to bring back
    assert other.delete(f"/fhir/Task/{mid}").status_code in (200, 204)
    assert "1 refused" in push(client, notification(A, [(3, a_task(), "3")])).text
    assert stored(services, mid) is None
    assert fhir_rows(services) == []


def test_a_squat_with_the_marker_cannot_hide_as_event(
    client: TestClient, services: Services, org_client: Any, upstream: Upstream
) -> None:
    """The reviewer's second repro: a marker of version 999 at the mirror id (refused now), then
    A's event is applied and Kela sees A's Task."""
    mid = mid_of(services, upstream, "t1")
    squat = {**marked("t1", 999, "org-kela", description="forged by sote-keskus"), "id": mid}
    assert org_client("sote-keskus").put(f"/fhir/Task/{mid}", json=squat).status_code == 403
    answer = push(client, notification(A, [(1, a_task(), "1")]))
    assert "1 event(s) applied" in answer.text
    got = org_client("kela").get(f"/fhir/Task/{mid}").json()
    assert got["description"] == a_task()["description"] and mirror.marker(got) == ("a", 1)
