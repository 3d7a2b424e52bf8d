"""adapters/hl7v2/mllp.py: frames split and coalesced, junk, abandoned and too-large frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.hl7v2.errors import Hl7Error
from adapters.hl7v2.mllp import Deframer, frame

A, B = b"MSH|^~\\&|A\rPID|1\r", b"MSH|^~\\&|B\r"


def test_frame_is_vt_payload_fs_cr() -> None:
    assert frame(A) == b"\x0b" + A + b"\x1c\x0d"


@pytest.mark.parametrize("bad", [b"a\x0bb", b"a\x1cb"])
def test_frame_refuses_block_characters(bad: bytes) -> None:
    with pytest.raises(Hl7Error) as caught:
        frame(bad)
    assert caught.value.code == "bad-frame"


def test_coalesced_frames_and_junk() -> None:
    d = Deframer()
    assert d.feed(b"junk\r\n" + frame(A) + b"\r\n" + frame(B)) == [A, B]
    assert d.skipped == len(b"junk\r\n") + 2


def test_split_frame_and_split_end_block() -> None:
    d = Deframer()
    data = frame(A)
    assert d.feed(data[:5]) == []
    assert d.feed(data[5:-1]) == []  # FS arrived, CR not yet
    assert d.feed(data[-1:]) == [A]


def test_fs_without_cr_is_part_of_the_frame_until_fs_cr() -> None:
    d = Deframer()
    assert d.feed(b"\x0bab\x1cc\x1c\x0d") == [b"ab\x1cc"]


def test_a_new_start_block_abandons_the_open_frame() -> None:
    d = Deframer()
    assert d.feed(b"\x0bhalf a messa" + frame(B)) == [B]
    assert d.skipped == len(b"\x0bhalf a messa")


def test_too_large_frame_is_refused_and_reading_goes_on() -> None:
    d = Deframer(max_frame=len(A))
    with pytest.raises(Hl7Error) as caught:
        d.feed(frame(A) + frame(A + b"x") + frame(B))
    assert caught.value.code == "too-large"
    assert d.feed(b"") == [A, B]  # A completed before the error; B after the refused one


def test_too_large_open_frame_is_refused_before_its_end() -> None:
    d = Deframer(max_frame=10)
    with pytest.raises(Hl7Error):
        d.feed(b"\x0b" + b"x" * 11)
    assert d.feed(b"more of it\x1c\x0d" + frame(b"ok")) == [b"ok"]


payloads = st.lists(st.binary().map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b"")))


@given(payloads, st.data())
def test_any_split_gives_the_same_frames(messages: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    d = Deframer()
    got = []
    for lo, hi in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += d.feed(stream[lo:hi])
    assert got == messages


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_only_ever_raise_hl7error(chunks: list[bytes]) -> None:
    d = Deframer(max_frame=32)
    for chunk in chunks:
        try:
            frames = d.feed(chunk)
        except Hl7Error as exc:
            assert exc.code == "too-large"
        else:
            assert all(len(f) <= 32 for f in frames)
