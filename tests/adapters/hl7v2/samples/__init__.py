"""Sample inbound messages (fictional people; HETU test numbers 900-999, assigning authority
1.2.246.21). Stored with LF line ends for readability; `load` returns them with CR, as on the wire.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("adt_a04", "adt_a08", "adt_a40", "ref_i12")


def load(name: str) -> str:
    return (HERE / f"{name}.hl7").read_text(encoding="utf-8").replace("\n", "\r")
