"""gateway/intake/mllp_server.py over real loopback TCP: framing (MLLP release 2), junk and split
frames, an oversize frame answered AR and reading going on, per-connection ordering, many
concurrent connections. The handler is a stand-in here (a fast echo of MSH-10), except in the
last test, which stores through the real pipeline (both stores)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from adapters.hl7v2.mllp import END, START, Deframer, frame
from gateway.intake.hl7v2 import handle
from gateway.intake.mllp_server import MllpServer
from tests.gateway.intake.acks import code, segments
from tests.gateway.intake.conftest import sample


def echo(svc, raw: bytes, peer: str | None) -> bytes:  # type: ignore[no-untyped-def]
    """A stand-in handler: answers `ACK|<the payload's 10th field>` (MSH-10 of a message)."""
    fields = raw.split(b"|")
    return b"ACK|" + (fields[9] if len(fields) > 9 else b"?")


def msg(control: str) -> bytes:
    return f"MSH|^~\\&|PEGASOS|F|G|H|20250101||ADT^A04|{control}|P|2.5.1\rPID|1".encode()


@pytest.fixture
def server() -> Iterator[MllpServer]:
    srv = MllpServer(None, port=0, handler=echo, max_frame=10_000)  # type: ignore[arg-type]
    srv.start_in_thread()
    yield srv
    srv.stop_thread()


def exchange(port: int, data: bytes, answers: int, timeout: float = 10.0) -> list[bytes]:
    """Send `data` (already framed, any junk included) and read `answers` ACK frames."""

    async def run() -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        deframer, got = Deframer(), []
        while len(got) < answers:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            got += deframer.feed(chunk)
        writer.close()
        return got

    return asyncio.run(run())


def test_one_frame_gets_one_framed_answer(server) -> None:
    assert exchange(server.port, frame(msg("C1")), 1) == [b"ACK|C1"]


def test_junk_between_frames_is_skipped_and_frames_may_arrive_in_pieces(server) -> None:
    data = b"junk\r\n" + frame(msg("C1")) + b"\x00\xff" + frame(msg("C2"))
    assert exchange(server.port, data, 2) == [b"ACK|C1", b"ACK|C2"]

    async def split() -> list[bytes]:  # one byte at a time, END split across writes
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for byte in frame(msg("C3")):
            writer.write(bytes([byte]))
            await writer.drain()
        deframer = Deframer()
        got: list[bytes] = []
        while not got:
            got = deframer.feed(await asyncio.wait_for(reader.read(100), 10))
        writer.close()
        return got

    assert asyncio.run(split()) == [b"ACK|C3"]


def test_an_oversize_frame_is_answered_ar_and_the_next_frame_is_read(server) -> None:
    big = START + b"x" * 20_000 + END
    answers = exchange(server.port, big + frame(msg("C2")), 2)
    assert segments(answers[0])["MSA"][1] == "AR"
    assert "too-large" in segments(answers[0])["ERR"][7]
    assert answers[1] == b"ACK|C2"


def test_one_connection_is_answered_in_order(server) -> None:
    data = b"".join(frame(msg(f"C{n}")) for n in range(50))
    assert exchange(server.port, data, 50) == [f"ACK|C{n}".encode() for n in range(50)]


def test_many_concurrent_connections_are_served() -> None:
    lock = threading.Lock()
    seen: list[bytes] = []

    def slow(svc, raw, peer):  # type: ignore[no-untyped-def]
        time.sleep(0.01)  # storage-like latency, in the worker threads
        with lock:
            seen.append(raw)
        return echo(svc, raw, peer)

    srv = MllpServer(None, port=0, handler=slow, workers=16)  # type: ignore[arg-type]
    srv.start_in_thread()
    try:

        async def client(n: int) -> list[bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            deframer, got = Deframer(), []
            for k in range(5):
                writer.write(frame(msg(f"N{n}-{k}")))
                await writer.drain()
                while len(got) <= k:
                    got += deframer.feed(await asyncio.wait_for(reader.read(4096), 10))
            writer.close()
            return got

        async def all_clients() -> list[list[bytes]]:
            return await asyncio.gather(*(client(n) for n in range(100)))

        started = time.perf_counter()
        results = asyncio.run(all_clients())
        elapsed = time.perf_counter() - started
    finally:
        srv.stop_thread()
    assert results == [[f"ACK|N{n}-{k}".encode() for k in range(5)] for n in range(100)]
    assert len(seen) == 500
    assert elapsed < 500 * 0.01 / 2  # served in parallel, not one after another


def test_messages_over_mllp_are_stored_and_acked(intake) -> None:
    srv = MllpServer(intake, port=0, handler=handle)
    srv.start_in_thread()
    try:
        data = frame(sample("adt-a04")) + frame(sample("adt-a08")) + frame(b"garbage")
        answers = exchange(srv.port, data, 3)
    finally:
        srv.stop_thread()
    assert [code(a) for a in answers] == ["AA", "AA", "AR"]
    assert segments(answers[0])["MSA"][2] == "PGS000123"
    with intake.repo.reader() as session:
        rows = session.query("SELECT control_id FROM hl7v2_messages ORDER BY control_id")
    assert [r[0] for r in rows] == ["PGS000123", "PGS000456"]


async def closed_or_read(reader: asyncio.StreamReader) -> bytes:
    """What the server sends before it closes: b"" when it closes (or resets) at once."""
    try:
        return await asyncio.wait_for(reader.read(100), 5)
    except ConnectionResetError:
        return b""


def test_a_host_outside_every_senders_network_gets_no_connection(intake) -> None:
    """Every registered sender names its peers (the sample record system: loopback), so a
    connection from elsewhere is closed before it can hold a slot."""
    srv = MllpServer(intake, port=0, handler=echo)
    assert srv._refusal("127.0.0.1") is None
    assert srv._refusal("192.0.2.10") == "not a registered sender's network"


def test_one_address_cannot_take_every_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.intake import mllp_server

    monkeypatch.setattr(mllp_server, "MAX_PER_ADDRESS", 2)
    srv = MllpServer(None, port=0, handler=echo)  # type: ignore[arg-type]
    srv.start_in_thread()
    try:

        async def run() -> tuple[bytes, list[bytes]]:
            held = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(2)]
            answers = []
            for reader, writer in held:  # an answer on each: both accepted and counted
                writer.write(frame(msg("X1")))
                answers += Deframer().feed(await asyncio.wait_for(reader.read(100), 5))
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(frame(msg("X3")))
            third = await closed_or_read(reader)
            for _, w in [*held, (reader, writer)]:
                w.close()
            return third, answers

        third, answers = asyncio.run(run())
    finally:
        srv.stop_thread()
    assert third == b""
    assert answers == [b"ACK|X1", b"ACK|X1"]


def test_bytes_that_complete_no_message_do_not_keep_a_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.intake import mllp_server

    monkeypatch.setattr(mllp_server, "IDLE_TIMEOUT_S", 0.5)
    srv = MllpServer(None, port=0, handler=echo)  # type: ignore[arg-type]
    srv.start_in_thread()
    try:

        async def run() -> float:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            started = time.perf_counter()
            for _ in range(20):  # a junk byte every 0.1 s: no message ever completes
                try:
                    writer.write(b"x")
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0.1)
                if reader.at_eof():
                    break
            await closed_or_read(reader)
            writer.close()
            return time.perf_counter() - started

        elapsed = asyncio.run(run())
    finally:
        srv.stop_thread()
    assert elapsed < 1.5  # closed after the idle time, not kept open by the junk
