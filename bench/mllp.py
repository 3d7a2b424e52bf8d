"""HL7 v2 end to end over MLLP: ADT^A04 messages (each a new person) sent over N concurrent
connections to the gateway's MLLP listener (gateway/intake/mllp_server.py in its own process:
parse, sender, idempotency log, Patient conditional update in one transaction, AuditEvent, ACK),
against two baselines in the same run: a bare asyncio MLLP server answering every frame with a
canned ACK ("echo": the ceiling of framing, TCP and the client), and the same bare server storing
each frame durably first ("store": one INSERT committed per message in a worker thread, as
bench/baseline.py does for REST; SQLite WAL synchronous=FULL, PostgreSQL). Alternating rounds
(echo, store, gateway, ...), each with new people. Prints msgs/s, p50 and p99 latency
(send -> ACK) and the ratios to the baselines.

    .venv/bin/python bench/mllp.py [--database sqlite|postgres|both] [--messages 2000]
                                   [--connections 8] [--rounds 2]

PostgreSQL: the database plan_gateway_bench (bench/databases.py), dropped and recreated, dropped
at the end. The machine is shared: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.hl7v2.mllp import Deframer, frame  # noqa: E402
from bench.servers import free_port  # noqa: E402

CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"  # HETU check characters
CANNED = b"MSH|^~\\&|G|G|S|S|20250101000000||ACK^A04^ACK|1|P|2.5.1\rMSA|AA|1\r"
MSH = "MSH|^~\\&|PEGASOS|SATSHP^1.2.246.10.2345678.10.0^ISO|PLAN_GATEWAY|TYK|20250314093000||"


def hetu(n: int) -> str:
    """The n-th test HETU (individual numbers 900-999, one day after another from 1.1.1950)."""
    day, individual = divmod(n, 100)
    year, rest = divmod(day, 336)
    month, dd = divmod(rest, 28)
    date = f"{dd + 1:02d}{month + 1:02d}{(50 + year) % 100:02d}"
    number = f"{date}{900 + individual}"
    return f"{date}-{900 + individual}{CHECK[int(number) % 31]}"


def message(n: int, tag: str) -> bytes:
    return (
        f"{MSH}ADT^A04^ADT_A01|B{tag}-{n}|P|2.5.1\rEVN|A04\r"
        f"PID|1||{hetu(n)}^^^&1.2.246.21&ISO^NNFIN||Bench^Person{n}||19500101|F|||"
        f"Katu {n}^^Pori^^28100^FIN^H\r"
    ).encode()


# -- the two servers (subprocesses) ------------------------------------------------------------
async def _echo_server(port: int) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deframer = Deframer()
        while data := await reader.read(65536):
            for _ in deframer.feed(data):
                writer.write(frame(CANNED))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    await server.serve_forever()


async def _store_server(port: int, database: str) -> None:
    """The bare MLLP server that stores each payload (one committed INSERT) before its ACK."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from bench.baseline import INSERT, _open

    run = _open(database, blob="BLOB")
    pool = ThreadPoolExecutor(8)
    loop = asyncio.get_running_loop()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deframer = Deframer()
        while data := await reader.read(65536):
            for payload in deframer.feed(data):
                params = ("Hl7v2", uuid.uuid4().hex, payload)
                await loop.run_in_executor(pool, run, INSERT, params, True)
                writer.write(frame(CANNED))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    await server.serve_forever()


async def _gateway_server(port: int, database: str, workdir: str) -> None:
    from gateway.app import build_services
    from gateway.intake.mllp_server import MllpServer
    from gateway.settings import Settings

    settings = Settings(
        database_url=database,
        token_key_file=f"{workdir}/token-key.json",
        id_key_file=f"{workdir}/pseudonym-key.hex",
    )
    server = MllpServer(build_services(settings), "127.0.0.1", port)
    await server.start()
    await asyncio.Event().wait()


def serve(kind: str, port: int, database: str, workdir: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    cmd += ["--serve-database", database, "--workdir", workdir]
    log = open(Path(workdir) / f"{kind}.log", "wb")  # noqa: SIM115 (kept open for the child)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            asyncio.run(_ping(port))
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the {kind} server did not start: see {log.name}")


async def _ping(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


# -- the client ---------------------------------------------------------------------------------
async def _connection(port: int, messages: list[bytes], latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    deframer, accepted = Deframer(), 0
    for raw in messages:  # MLLP is one message at a time per connection
        start = time.perf_counter()
        writer.write(frame(raw))
        await writer.drain()
        answers: list[bytes] = []
        while not answers:
            answers = deframer.feed(await reader.read(65536))
        latencies.append(time.perf_counter() - start)
        accepted += b"MSA|AA|" in answers[0]
    writer.close()
    return accepted


async def _drive(
    port: int, messages: list[bytes], connections: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    shares = [messages[i::connections] for i in range(connections)]
    start = time.perf_counter()
    accepted = await asyncio.gather(*(_connection(port, s, latencies) for s in shares))
    return time.perf_counter() - start, latencies, sum(accepted)


def measure(port: int, first: int, count: int, connections: int, tag: str) -> dict[str, float]:
    elapsed, latencies, accepted = asyncio.run(
        _drive(port, [message(first + n, tag) for n in range(count)], connections)
    )
    latencies.sort()
    return {
        "rate": count / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "accepted": accepted,
    }


def run_database(kind: str, opts: argparse.Namespace) -> None:
    from bench import databases

    with tempfile.TemporaryDirectory(prefix="bench-mllp-") as tmp:
        dbs = databases.fresh(kind, Path(tmp))
        ports = {"echo": free_port(), "store": free_port(), "gateway": free_port()}
        urls = {"echo": "", "store": dbs.baseline_write, "gateway": dbs.gateway}
        procs = {name: serve(name, port, urls[name], tmp) for name, port in ports.items()}
        try:
            measure(ports["gateway"], 10**6, 100, opts.connections, "warm")  # warm-up
            results: dict[str, list[dict[str, float]]] = {n: [] for n in ports}
            for r in range(opts.rounds):
                for name in ports:
                    first = r * opts.messages
                    tag = f"{name}{r}"
                    results[name].append(
                        measure(ports[name], first, opts.messages, opts.connections, tag)
                    )
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(10)
            if kind == "postgres":
                databases.drop_postgres()
    _report(kind, opts, results)


def _report(kind: str, opts: argparse.Namespace, results: dict[str, list[dict]]) -> None:
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in results.items()}
    print(
        f"\n{kind}: {opts.messages} ADT^A04 x {opts.rounds} rounds, "
        f"{opts.connections} connections, medians"
    )
    print(f"{'':<10}{'msgs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'AA':>7}")
    for name, m in med.items():
        print(f"{name:<10}{m['rate']:>10,.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}{m['accepted']:>7.0f}")
    for base in ("echo", "store"):
        ratio = med["gateway"]["rate"] / med[base]["rate"]
        print(f"gateway / bare MLLP {base}: {ratio:.3f}x msgs/s")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    args.add_argument("--messages", type=int, default=2000)
    args.add_argument("--connections", type=int, default=8)
    args.add_argument("--rounds", type=int, default=2)
    args.add_argument("--serve", choices=("echo", "store", "gateway"), help=argparse.SUPPRESS)
    args.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args.add_argument("--serve-database", help=argparse.SUPPRESS)
    args.add_argument("--workdir", help=argparse.SUPPRESS)
    opts = args.parse_args()
    if opts.serve == "echo":
        asyncio.run(_echo_server(opts.port))
    elif opts.serve == "store":
        asyncio.run(_store_server(opts.port, opts.serve_database))
    elif opts.serve == "gateway":
        asyncio.run(_gateway_server(opts.port, opts.serve_database, opts.workdir))
    else:
        os.environ.pop("PLAN_GATEWAY_MLLP_PORT", None)
        kinds = ("sqlite", "postgres") if opts.database == "both" else (opts.database,)
        for kind in kinds:
            run_database(kind, opts)


if __name__ == "__main__":
    main()
