"""Start and stop uvicorn servers (2 workers, 127.0.0.1, a free port) for one benchmark run.

Each server runs in its own process group and is stopped with SIGTERM, then SIGKILL to that group
only if it does not exit; `Servers` stops every server it started, also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its live descendants."""
    return _cpu(pid) + sum(tree_cpu(c) for c in _children(pid))


def postgres_cpu(database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving `database` (its server-side cost; other
    sessions' backends, e.g. a test suite running beside us, are not counted)."""
    total = 0.0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()
            if title.startswith(b"postgres:") and f" {database} ".encode() in title:
                total += _cpu(int(cmdline.parent.name))
        except (OSError, ValueError):
            pass
    return total


class Server:
    def __init__(self, name: str, factory: str, env: dict[str, str], log_dir: Path, workers: int):
        self.name, self.port = name, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        cmd = [
            sys.executable, "-m", "uvicorn", factory, "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--app-dir", str(ROOT), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")
            try:
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {path} in {timeout}s:\n{self.tail()}")

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid)

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Workers left behind by a killed master share its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class Servers:
    """Context manager owning every server started through it."""

    def __init__(self, log_dir: Path, workers: int = 2) -> None:
        self.log_dir, self.workers, self.started = log_dir, workers, []

    def start(self, name: str, factory: str, env: dict[str, str], ready_path: str) -> Server:
        server = Server(name, factory, env, self.log_dir, self.workers)
        self.started.append(server)
        server.wait_ready(ready_path)
        return server

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        for server in reversed(self.started):
            server.stop()
