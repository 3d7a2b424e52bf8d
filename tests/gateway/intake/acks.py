"""Reading the ACKs the intake answers (test helper)."""

from __future__ import annotations


def segments(ack: bytes) -> dict[str, list[str]]:
    """segment id -> its fields split on "|" (so [n] is field n, except MSH where it is n+1)."""
    text = ack.decode("utf-8")
    assert text.endswith("\r") and "\n" not in text
    return {line[:3]: line.split("|") for line in text.split("\r") if line}


def code(ack: bytes) -> str:
    """MSA-1: AA, AE or AR."""
    return segments(ack)["MSA"][1]
