"""Throughput of a pure function over sample messages, shared by the HL7 v2 benches."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any


def rate(fn: Callable[[str], Any], messages: Sequence[str], seconds: float) -> float:
    """Messages per second, cycling through `messages` for about `seconds`."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for text in messages:
            fn(text)
        n += len(messages)
    return n / elapsed
