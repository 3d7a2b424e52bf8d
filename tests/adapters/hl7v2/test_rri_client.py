"""adapters/hl7v2/client.py against a real MLLP receiver on loopback (asyncio, in a thread):
one framed message out, its ACK back, every failure a DeliveryError with a stable code.

`Receiver` is also the record system of tests/gateway/intake/test_return_path.py."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterable
from types import TracebackType

import pytest

from adapters.hl7v2.client import DeliveryError, endpoint, send
from adapters.hl7v2.message import parse
from adapters.hl7v2.mllp import Deframer, frame

MESSAGE = (
    "MSH|^~\\&|PLAN_GATEWAY|TIIMI|PEGASOS|SATSHP|20261014100000||RRI^I12^RRI_I12|RRI0001|P|2.5.1\r"
    "MSA|AA|PGS002001\r"
)


class Receiver:
    """A record system's MLLP listener on 127.0.0.1 (asyncio, its own loop and thread). Each
    message is recorded and answered with the next of `answers`: an MSA-1 code ("AA", "AE", …),
    "silent" (no answer), "close" (hang up) or "other" (an AA to another MSH-10); AA when they run
    out."""

    def __init__(self, answers: Iterable[str] = ()) -> None:
        self.answers = list(answers)
        self.received: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"mllp://127.0.0.1:{self.port}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:  # connections still open (a silent answer)
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deframer = Deframer()
        try:
            while data := await reader.read(4096):
                for payload in deframer.feed(data):
                    text = payload.decode("utf-8")
                    self.received.append(text)
                    answer = self.answers.pop(0) if self.answers else "AA"
                    if answer == "silent":
                        continue
                    if answer == "close":
                        return
                    writer.write(frame(_ack(text, answer).encode("utf-8")))
                    await writer.drain()
        finally:
            writer.close()


def _ack(text: str, answer: str) -> str:
    control_id = "SOMETHING-ELSE" if answer == "other" else parse(text).control_id
    code = "AA" if answer == "other" else answer
    return (
        "MSH|^~\\&|PEGASOS|SATSHP|PLAN_GATEWAY|TIIMI|20261014100001||ACK^I12^ACK|ACK1|P|2.5.1\r"
        f"MSA|{code}|{control_id}\r"
    )


def test_a_message_goes_out_framed_and_its_ack_comes_back() -> None:
    with Receiver() as receiver:
        reply = send(receiver.url, MESSAGE, timeout=2)
    assert (reply.code, reply.control_id, reply.accepted) == ("AA", "RRI0001", True)
    assert receiver.received == [MESSAGE]


@pytest.mark.parametrize("code", ["AE", "AR", "CR"])
def test_a_negative_ack_is_a_reply_not_an_error(code: str) -> None:
    with Receiver([code]) as receiver:
        reply = send(receiver.url, MESSAGE, timeout=2)
    assert (reply.code, reply.accepted) == (code, False)


@pytest.mark.parametrize(("answer", "code"), [("close", "closed"), ("other", "bad-ack")])
def test_no_ack_to_this_message_is_an_error(answer: str, code: str) -> None:
    with Receiver([answer]) as receiver, pytest.raises(DeliveryError) as caught:
        send(receiver.url, MESSAGE, timeout=2)
    assert caught.value.code == code


def test_a_silent_receiver_times_out_in_time() -> None:
    with Receiver(["silent"]) as receiver:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            send(receiver.url, MESSAGE, timeout=0.3)
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 2


def test_nobody_listening_is_refused() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeliveryError) as caught:
        send(f"mllp://127.0.0.1:{port}", MESSAGE, timeout=1)
    assert caught.value.code == "refused"


@pytest.mark.parametrize("url", ["http://127.0.0.1:2576", "mllp://127.0.0.1", "mllp://:99", "x"])
def test_an_endpoint_must_be_mllp_host_port(url: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        endpoint(url)
    assert caught.value.code == "bad-endpoint"


def test_a_message_with_a_block_character_is_never_sent() -> None:
    with Receiver() as receiver, pytest.raises(DeliveryError) as caught:
        send(receiver.url, MESSAGE.replace("PGS002001", "PGS\x1c"), timeout=1)
    assert caught.value.code == "bad-message"
    assert receiver.received == []
