"""The MLLP listener (HL7 v2.5.1 Appendix C, MLLP release 2 framing: SB 0x0B, payload, EB 0x1C
CR 0x0D): many concurrent connections on one asyncio loop, each message handed to a worker thread
(gateway/intake/hl7v2.handle: storage is blocking) and its ACK framed back before the next message
of the same connection is read, so one connection's messages are applied in the order sent.
Junk between frames is skipped; an oversize frame is answered AR and dropped; a connection that
completes no message in IDLE_TIMEOUT_S or does not read its ACK is closed; connections are capped
in all and per address, and refused outright from outside the senders' registered `peers`.
Logs addresses and counts only, never message content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from adapters.hl7v2 import ack as acks
from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.mllp import Deframer, frame
from gateway.fhir_api.context import Services
from gateway.intake.hl7v2 import handle

log = logging.getLogger("gateway.intake.mllp")
READ_CHUNK = 65_536
# A connection that completes no message for this long is closed (senders reconnect): bytes
# that make no message (junk, a frame dribbled byte by byte) do not keep it open.
IDLE_TIMEOUT_S = 300.0
WRITE_TIMEOUT_S = 30.0  # an ACK the peer does not read within this closes the connection
MAX_CONNECTIONS = 512
MAX_PER_ADDRESS = 128  # one host cannot take every connection slot

Handle = Callable[[Services, bytes, str | None], bytes]


class MllpServer:
    """`await start()` / `await stop()` on a running loop, or `start_in_thread()` /
    `stop_thread()` beside a server that owns the main loop (uvicorn: app lifespan)."""

    def __init__(
        self,
        svc: Services,
        host: str = "127.0.0.1",
        port: int = 2575,
        workers: int = 8,
        handler: Handle = handle,
        max_frame: int = 1_000_000,
        reuse_port: bool = False,
    ) -> None:
        self.svc, self.host, self.port = svc, host, port
        self.reuse_port = reuse_port  # several server processes share the port (Linux)
        self.handler, self.max_frame = handler, max_frame
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="mllp")
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._per_address: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (port 0 picks a free one)."""
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, reuse_port=self.reuse_port or None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("MLLP listening on %s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
        self._pool.shutdown(wait=True)

    # -- in a thread of its own -------------------------------------------------------------
    def start_in_thread(self) -> int:
        """Run the listener on its own loop in a daemon thread; returns the bound port."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.start())
            except BaseException as exc:  # port in use: reported to the caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.stop())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="mllp-listener", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.port

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    # -- one connection ---------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = _peer(writer)
        address = peer.rsplit(":", 1)[0]
        refusal = self._refusal(address)
        if refusal is not None or task is None:
            log.warning("MLLP connection from %s refused: %s", peer, refusal)
            writer.close()
            return
        self._connections.add(task)
        self._per_address[address] = self._per_address.get(address, 0) + 1
        try:
            await self._serve(reader, writer, peer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the peer went away or fell silent: nothing to answer
        except asyncio.CancelledError:
            pass  # the listener is stopping (stop() cancels every connection)
        finally:
            self._connections.discard(task)
            left = self._per_address.get(address, 1) - 1
            if left > 0:
                self._per_address[address] = left
            else:
                self._per_address.pop(address, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _refusal(self, address: str) -> str | None:
        """Why a new connection from `address` is refused, or None. When every registered
        sender names its `peers`, nobody else gets a connection at all (a host that is no
        sender cannot hold connection slots); then the slots are shared fairly."""
        security = getattr(self.svc, "security", None)
        registry = security.registry if security is not None else None
        links = [o.hl7v2 for o in registry.by_client.values() if o.hl7v2] if registry else []
        fenced = bool(links) and all(link.peers for link in links)
        if fenced and not any(link.reachable_from(address) for link in links):
            return "not a registered sender's network"
        if len(self._connections) >= MAX_CONNECTIONS:
            return "too many connections"
        if self._per_address.get(address, 0) >= MAX_PER_ADDRESS:
            return "too many connections from one address"
        return None

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        deframer = Deframer(self.max_frame)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IDLE_TIMEOUT_S
        while True:
            data = await asyncio.wait_for(reader.read(READ_CHUNK), deadline - loop.time())
            if not data:
                return
            for payload in self._payloads(deframer, data, writer, peer):
                answer = await loop.run_in_executor(
                    self._pool, self.handler, self.svc, payload, peer
                )
                writer.write(frame(answer))
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
                deadline = loop.time() + IDLE_TIMEOUT_S  # a message completed: time renewed

    @staticmethod
    def _payloads(
        deframer: Deframer, data: bytes, writer: asyncio.StreamWriter, peer: str
    ) -> list[bytes]:
        """The frames `data` completes; an oversize frame is answered AR and dropped, and
        reading goes on after it."""
        while True:
            try:  # frames completed before an oversize one come with the next call
                return deframer.feed(data)
            except Hl7Error as error:
                log.info("MLLP frame from %s refused: %s", peer, error.code)
                writer.write(frame(acks.reject("", "AR", error, datetime.now(UTC)).encode()))
                data = b""


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else "-"
