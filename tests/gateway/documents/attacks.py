"""Hostile XML bodies for `$import-cda`, and watchers that notice any file or network access the
parser makes while one is processed. Shared by the in-process HTTP tests and the real-server
e2e test.

The watchers: a FIFO (named pipe) that an external entity or DTD points at, whose opening by a
reader is seen by a writer thread polling it non-blockingly (open O_WRONLY|O_NONBLOCK succeeds
only while someone has it open for reading); and a loopback TCP listener that records every
connection. Neither can be fooled by a parser that reads and discards what it fetched.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CDA_OPEN = b'<ClinicalDocument xmlns="urn:hl7-org:v3">'
CDA_CLOSE = b"</ClinicalDocument>"
PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'
MB = 1_000_000


@dataclass
class Watch:
    """What the parser touched while the watch ran."""

    fifo: Path
    port: int
    file_opened: bool = False
    connections: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def file_url(self) -> str:
        return self.fifo.as_uri()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/evil.dtd"


def _watch_fifo(watch: Watch) -> None:
    while not watch._stop.is_set():
        try:
            fd = os.open(watch.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: nobody has it open for reading
                raise
            time.sleep(0.001)
            continue
        watch.file_opened = True
        os.close(fd)  # the reader sees end of file and goes on


def _watch_port(watch: Watch, server: socket.socket) -> None:
    server.settimeout(0.01)
    while not watch._stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        watch.connections += 1
        conn.close()


@contextmanager
def watching(tmp: Path) -> Iterator[Watch]:
    """A FIFO and a loopback listener the payloads point at, watched while the block runs."""
    fifo = tmp / "secret-fifo"
    os.mkfifo(fifo)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    watch = Watch(fifo, int(server.getsockname()[1]))
    threads = [
        threading.Thread(target=_watch_fifo, args=(watch,), daemon=True),
        threading.Thread(target=_watch_port, args=(watch, server), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        yield watch
    finally:
        time.sleep(0.05)  # a late access would still be seen
        watch._stop.set()
        for t in threads:
            t.join(timeout=2)
        server.close()


# -- the payloads ---------------------------------------------------------------------------------
def xxe_file(watch: Watch) -> bytes:
    """An external general entity naming a local file (classic XXE)."""
    return (
        PROLOG
        + b'<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "'
        + watch.file_url.encode()
        + b'">]>\n'
        + CDA_OPEN
        + b"<title>&xxe;</title>"
        + CDA_CLOSE
    )


def xxe_network(watch: Watch) -> bytes:
    """An external DTD and a parameter entity fetched over the network."""
    url = watch.http_url.encode()
    return (
        PROLOG
        + b'<!DOCTYPE ClinicalDocument SYSTEM "'
        + url
        + b'" [<!ENTITY % remote SYSTEM "'
        + url
        + b'"> %remote;]>\n'
        + CDA_OPEN
        + CDA_CLOSE
    )


def xinclude(watch: Watch) -> bytes:
    """XInclude of a local file, with no DOCTYPE at all (must never be processed)."""
    return (
        PROLOG
        + b'<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xi="http://www.w3.org/2001/XInclude">'
        + b'<xi:include href="'
        + watch.file_url.encode()
        + b'" parse="text"/>'
        + CDA_CLOSE
    )


def billion_laughs() -> bytes:
    """Ten levels of ten-fold entity expansion: 10^9 'lol's from under 1 KB."""
    levels = [b'<!ENTITY lol0 "lol">']
    for i in range(1, 10):
        refs = b"".join(b"&lol%d;" % (i - 1) for _ in range(10))
        levels.append(b'<!ENTITY lol%d "%s">' % (i, refs))
    return (
        PROLOG
        + b"<!DOCTYPE ClinicalDocument ["
        + b"".join(levels)
        + b"]>\n"
        + CDA_OPEN
        + b"<title>&lol9;</title>"
        + CDA_CLOSE
    )


def quadratic_blowup() -> bytes:
    """One 50 KB entity referenced 50,000 times: 2.5 GB of text from a ~300 KB body."""
    big = b"a" * 50_000
    return (
        PROLOG
        + b'<!DOCTYPE ClinicalDocument [<!ENTITY a "'
        + big
        + b'">]>\n'
        + CDA_OPEN
        + b"<title>"
        + b"&a;" * 50_000
        + b"</title>"
        + CDA_CLOSE
    )


def deep_nesting(depth: int = 300_000) -> bytes:
    """Elements nested `depth` deep inside a ClinicalDocument (~2 MB for 300k)."""
    return PROLOG + CDA_OPEN + b"<a>" * depth + b"</a>" * depth + CDA_CLOSE


def huge_body(size: int = 50 * MB) -> bytes:
    """A well-formed document padded to `size` bytes with a comment."""
    head = PROLOG + CDA_OPEN + b"<!--"
    tail = b"-->" + CDA_CLOSE
    return head + b"x" * (size - len(head) - len(tail)) + tail
