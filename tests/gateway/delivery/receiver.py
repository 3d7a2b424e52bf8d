"""A real rest-hook receiver for delivery tests: an aiohttp.web server on a loopback port, in a
thread of its own, that records every notification it is sent and answers as told (a status
per request, a delay, or a sequence of answers)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def status_parameters(self) -> dict[str, Any]:
        return self.body["entry"][0]["resource"]

    @property
    def kind(self) -> str:
        return next(
            p["valueCode"] for p in self.status_parameters["parameter"] if p["name"] == "type"
        )

    @property
    def event_numbers(self) -> list[int]:
        return [
            int(next(q["valueString"] for q in p["part"] if q["name"] == "event-number"))
            for p in self.status_parameters["parameter"]
            if p["name"] == "notification-event"
        ]

    @property
    def focuses(self) -> list[str]:
        out = []
        for p in self.status_parameters["parameter"]:
            if p["name"] == "notification-event":
                out += [q["valueReference"]["reference"] for q in p["part"] if q["name"] == "focus"]
        return out


Answer = Callable[[Received], int]  # the HTTP status to answer a request with


@dataclass
class Receiver:
    answer: Answer = lambda received: 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        got = Received(request.path, dict(request.headers), orjson.loads(await request.read()))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.answer(got)
        if 200 <= status < 300:
            self.received.append(got)
        return web.Response(status=status, text="ok")

    def events(self) -> list[int]:
        return [n for r in self.received for n in r.event_numbers]

    def kinds(self) -> list[str]:
        return [r.kind for r in self.received]
