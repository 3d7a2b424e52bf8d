"""Mapping tables (data only, STYLE habit 1): JSON files read as they are, never interpreted here.

`load("coordination/who-coordinates.json")` answers the parsed file. Nothing of the gateway is
imported here, and nothing here branches on the content: the code that applies a table lives
beside the workflow that uses it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


@cache
def load(name: str) -> Any:
    """The parsed JSON of mappings/`name` (read once per process; treat it as read-only)."""
    return json.loads((ROOT / name).read_text(encoding="utf-8"))


# an HL7 v2 event as MSH-9.1^MSH-9.2; anything else (a path, "..") never reaches the file system
_HL7V2_EVENT = re.compile(r"[A-Z][A-Z0-9]{2}\^[A-Z][A-Z0-9]{2}")


def hl7v2_event(event: str) -> Any | None:
    """The mapping of one HL7 v2 event ("ADT^A04" -> hl7v2/ADT_A04.json), None when there is
    none (an unsupported event)."""
    if not _HL7V2_EVENT.fullmatch(event):
        return None
    name = f"hl7v2/{event.replace('^', '_')}.json"
    return load(name) if (ROOT / name).is_file() else None
