"""MLLP framing (HL7 v2.5.1 Appendix C, MLLP Release 1): a frame is VT (0x0B), the payload, then
FS (0x1C) CR (0x0D). Pure bytes in, frames out: no sockets, no parsing of the payload.

Bytes outside a frame (before a start block) are skipped and counted. A start block inside an
open frame means the sender gave up on it: the partial frame is skipped and the new one read.
That is safe because MLLP is acknowledged: a frame that gets no ACK is sent again.
"""

from __future__ import annotations

from adapters.hl7v2.errors import Hl7Error

START = b"\x0b"
END = b"\x1c\x0d"
MAX_FRAME = 1_000_000  # bytes of payload


def frame(payload: bytes) -> bytes:
    """One MLLP frame around an ER7 payload (which may not hold the framing characters)."""
    if START in payload or b"\x1c" in payload:
        raise Hl7Error("bad-frame", "the payload holds an MLLP block character")
    return START + payload + END


class Deframer:
    """Incremental deframing of one connection's byte stream: `feed` each chunk as it arrives."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.skipped = 0  # bytes dropped: junk between frames, abandoned or too-large frames
        self._buf = bytearray()  # from a start block on, when in a frame; else empty
        self._scan = 1  # where to look for END next in _buf
        self._ready: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        """The payloads of the frames that `data` completes, in order. Raises Hl7Error
        ("too-large") when a frame outgrows `max_frame`; frames completed before it in the same
        chunk are returned by the next call, and reading goes on from the next start block."""
        self._buf += data
        while self._in_frame():
            end = self._buf.find(END, self._scan)
            restart = self._buf.find(START, self._scan, end if end >= 0 else len(self._buf))
            if restart > 0:  # abandoned frame: read on from the new start block
                self._skip(restart)
            elif end < 0:
                self._scan = max(1, len(self._buf) - 1)  # END may straddle two chunks
                self._check_size(len(self._buf) - 1, len(self._buf))
                break
            else:
                self._check_size(end - 1, end + 2)
                self._ready.append(bytes(self._buf[1:end]))
                del self._buf[: end + 2]
                self._scan = 1
        ready, self._ready = self._ready, []
        return ready

    def _in_frame(self) -> bool:
        """Drop what precedes a start block; False when there is none yet."""
        start = self._buf.find(START)
        self._skip(len(self._buf) if start < 0 else start)
        return start >= 0

    def _skip(self, n: int) -> None:
        if n:
            self.skipped += n
            del self._buf[:n]
            self._scan = 1

    def _check_size(self, size: int, frame_end: int) -> None:
        """Refuse a frame over max_frame: drop it (up to frame_end) before raising."""
        if size > self.max_frame:
            self._skip(frame_end)
            raise Hl7Error("too-large", f"MLLP frame is over {self.max_frame} bytes")
