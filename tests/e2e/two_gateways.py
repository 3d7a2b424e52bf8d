"""Two real gateways for the partner-delivery test: A (the coordinator's side, the samples
loaded) and B (Kela's own gateway, empty), each uvicorn in a subprocess on its own loopback port
and fresh database, relays running as deployed.

A registers Kela's delivery endpoint at B (`delivery.endpoints` in a temporary copy of the
demo registrations, delivery test mode on: plain http on the loopback); B has A as its upstream
"a" (gateway/delivery/upstreams.py), calling A as client `kela` with the demo key. Both ports
are chosen before either starts, as each must name the other. Never reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.security.demo import demo_key_path
from gateway.settings import ORGANISATIONS_DIR
from tests.e2e.server import ROOT, Gateway, _wait_ready, free_port, fresh_database

SECRET = "kela-channel-secret"  # what A sends B with every notification (Subscription header)
UPSTREAM = "a"  # B's name for A
_CLEARED = ("PLAN_GATEWAY_BASE_URL", "PLAN_GATEWAY_UPSTREAMS", "PLAN_GATEWAY_ORGANISATIONS")


@dataclass(frozen=True)
class Pair:
    a: Gateway  # the coordinator's side
    b: Gateway  # Kela's gateway, A's partner

    @property
    def endpoint(self) -> str:
        """Where A pushes Kela's notifications: B's receiving route for upstream "a"."""
        return f"{self.b.root}/delivery/notifications/{UPSTREAM}"


@contextmanager
def serve(port: int, database_url: str, workdir: Path, env: dict[str, str]) -> Iterator[Gateway]:
    """`uvicorn gateway.app:create_app --factory` on `port` with these PLAN_GATEWAY_* settings."""
    base = f"http://127.0.0.1:{port}/fhir"
    log = workdir / f"server-{port}.log"
    cmd = [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    cmd += ["--no-access-log", "--timeout-keep-alive", "300"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=_env(database_url, workdir, env), stdout=out, stderr=out
        )
    try:
        _wait_ready(proc, base, log)
        yield Gateway(base, database_url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if "Traceback" in log.read_text():
        raise AssertionError(f"a gateway logged an unexpected error:\n{log.read_text()[-6000:]}")


def _env(database_url: str, workdir: Path, env: dict[str, str]) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    out.update(
        {
            "PLAN_GATEWAY_DATABASE": database_url,
            "PLAN_GATEWAY_TOKEN_KEY_FILE": str(workdir / "token-key.json"),
            "PLAN_GATEWAY_ID_KEY_FILE": str(workdir / "pseudonym-key.hex"),
            **env,
        }
    )
    return out


def load_samples(database_url: str, workdir: Path) -> None:
    """The sample network and clients (samples/bundles) into A's database, as `plan-gateway
    load` does."""
    code = "from gateway.cli import main; main()"
    cmd = [sys.executable, "-c", code, "load", str(ROOT / "samples" / "bundles")]
    done = subprocess.run(
        [*cmd, "--database", database_url],
        cwd=workdir,
        env=_env(database_url, workdir, {}),
        capture_output=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the samples did not load:\n{done.stdout.decode()[-3000:]}")


def registrations(folder: Path, endpoint_root: str) -> Path:
    """The demo registrations, Kela's delivery endpoint at B."""
    shutil.copytree(ORGANISATIONS_DIR, folder)
    path = folder / "kela.json"
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    doc["delivery"] = {"endpoints": [f"{endpoint_root}/delivery/notifications/"]}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return folder


def upstreams(folder: Path, a_base: str) -> Path:
    """B's upstream "a": A, called as client kela with the demo key."""
    folder.mkdir(parents=True)
    doc = {
        "name": UPSTREAM,
        "base": a_base,
        "client_id": "kela",
        "key": str(demo_key_path(ORGANISATIONS_DIR, "kela")),
        "organization": "org-kela",
        "secret_sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
    }
    (folder / f"{UPSTREAM}.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


@contextmanager
def two_gateways(backend: str, tmp_path_factory: Any, worker: str) -> Iterator[Pair]:
    workdir = tmp_path_factory.mktemp(f"two-gateways-{backend}")
    port_a, port_b = free_port(), free_port()
    root_a, root_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    dir_a, dir_b = workdir / "a", workdir / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    url_a = fresh_database(backend, dir_a, "twogw_a", worker)
    url_b = fresh_database(backend, dir_b, "twogw_b", worker)
    load_samples(url_a, dir_a)
    env_a = {
        "PLAN_GATEWAY_ORGANISATIONS": str(registrations(workdir / "organisations", root_b)),
        "PLAN_GATEWAY_DELIVERY_TEST_MODE": "1",
    }
    env_b = {"PLAN_GATEWAY_UPSTREAMS": str(upstreams(workdir / "upstreams", f"{root_a}/fhir"))}
    with ExitStack() as stack:
        a = stack.enter_context(serve(port_a, url_a, dir_a, env_a))
        b = stack.enter_context(serve(port_b, url_b, dir_b, env_b))
        yield Pair(a, b)
