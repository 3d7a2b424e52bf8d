"""Data only: FHIR definitions this gateway uses (R4 core subset, our profiles, CodeSystems,
SearchParameters, CapabilityStatement base), each defined once and loaded from here.

This package imports nothing of the project; it only reads its own JSON files.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).parent


@cache
def load(relative: str) -> Any:
    """Parsed JSON of a data file in this package, e.g. `load("core/search-parameters.json")`.

    A `.json.gz` twin is read when the plain file is absent (large core subsets ship gzipped).
    """
    path = ROOT / relative
    if not path.exists() and (gz := path.with_name(path.name + ".gz")).exists():
        return orjson.loads(gzip.decompress(gz.read_bytes()))
    return orjson.loads(path.read_bytes())
