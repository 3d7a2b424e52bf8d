"""An MLLP client for the messages we send (RRI^I12): one connection per message, one framed
message out, one ACK back, each step bounded by a timeout (HL7 v2.5.1 Appendix C, MLLP Release 1;
original acknowledgment mode). Blocking sockets, for the return path's relay thread.

It never logs and never raises anything but DeliveryError, whose code is stable and whose text
names no message content (an RRI holds personal data).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.message import parse
from adapters.hl7v2.mllp import Deframer, frame

MAX_ACK = 65_536  # bytes: an ACK is a few hundred
_CHUNK = 4096

# code -> what it means (stable: the relay stores the code as the outbox row's last_error)
CODES: dict[str, str] = {
    "bad-endpoint": "the endpoint is not mllp://host:port",
    "bad-message": "the message cannot be sent (not ER7, or it holds an MLLP block character)",
    "refused": "no connection could be made",
    "timeout": "no complete ACK within the timeout",
    "closed": "the receiver closed the connection before a complete ACK",
    "bad-ack": "the answer is not an ACK to this message",
}


class DeliveryError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"{code}: {CODES[code]}")
        self.code = code


@dataclass(frozen=True)
class Reply:
    """The receiver's acknowledgment: MSA-1 (AA, AE, AR; CA, CE, CR) and MSA-2."""

    code: str
    control_id: str

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


def endpoint(url: str) -> tuple[str, int]:
    """(host, port) of an `mllp://host:port` endpoint."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "mllp" or not parts.hostname or port is None:
        raise DeliveryError("bad-endpoint")
    return parts.hostname, port


def send(url: str, message: str, timeout: float = 10.0) -> Reply:
    """Send one ER7 message to `url` and wait at most `timeout` seconds in all for its ACK.
    The ACK must answer this message (MSA-2 = its MSH-10), else DeliveryError("bad-ack")."""
    host, port = endpoint(url)
    deadline = time.monotonic() + timeout
    try:
        sent_id = parse(message).control_id
        payload = frame(message.encode("utf-8"))
    except Hl7Error:
        raise DeliveryError("bad-message") from None  # not ER7, or MLLP block characters
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(payload)
            raw = _read_frame(conn, deadline)
    except TimeoutError:
        raise DeliveryError("timeout") from None
    except OSError:
        raise DeliveryError("refused") from None
    return _reply(raw, sent_id)


def _read_frame(conn: socket.socket, deadline: float) -> bytes:
    deframer = Deframer(MAX_ACK)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        conn.settimeout(left)
        chunk = conn.recv(_CHUNK)
        if not chunk:
            raise DeliveryError("closed")
        try:
            frames = deframer.feed(chunk)
        except Hl7Error:
            raise DeliveryError("bad-ack") from None
        if frames:
            return frames[0]


def _reply(raw: bytes, sent_id: str) -> Reply:
    try:
        ack = parse(raw)
    except Hl7Error:
        raise DeliveryError("bad-ack") from None
    code, answered = ack.get("MSA", 1), ack.get("MSA", 2)
    if code not in ("AA", "AE", "AR", "CA", "CE", "CR") or answered != sent_id:
        raise DeliveryError("bad-ack")
    return Reply(code, answered)
