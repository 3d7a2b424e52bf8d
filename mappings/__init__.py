"""Mapping tables (data only, STYLE habit 1): JSON files read as they are, never interpreted here.

`load("coordination/who-coordinates.json")` answers the parsed file. Nothing of the gateway is
imported here, and nothing here branches on the content: the code that applies a table lives
beside the workflow that uses it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


@cache
def load(name: str) -> Any:
    """The parsed JSON of mappings/`name` (read once per process; treat it as read-only)."""
    return json.loads((ROOT / name).read_text(encoding="utf-8"))
