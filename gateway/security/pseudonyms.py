"""The deployment's pseudonym key (adapters/ids.py): the secret that turns a HETU into a stable
Patient id nobody can reverse without it. A file of 32 random bytes (hex), `id_key_file`, else
beside the SQLite database (else ./data for PostgreSQL), created on first use like the token
key. Every host of one deployment must be given the same file: another key gives other ids.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from adapters.ids import Ids
from gateway.security.authority import secret_file
from gateway.security.tokens import create_secret_file
from gateway.settings import Settings

KEY_FILE_NAME = "pseudonym-key.hex"


def key_file(settings: Settings) -> Path:
    return secret_file(settings, settings.id_key_file, KEY_FILE_NAME)


def load_ids(settings: Settings) -> Ids:
    path = key_file(settings)
    if not path.exists():
        create_secret_file(path, secrets.token_hex(32))
    return Ids(bytes.fromhex(path.read_text(encoding="ascii").strip()))
