"""Configuration: defaults, then environment (PLAN_GATEWAY_*), then CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ORGANISATIONS_DIR = Path(__file__).resolve().parent.parent / "samples" / "organisations"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PLAN_GATEWAY_{name}", default)


FALSE = ("0", "false", "no", "off")
TRUE = ("1", "true", "yes", "on")


def _flag(name: str, default: bool) -> bool:
    """A yes/no setting; an unreadable value is an error, never silently the unsafe choice."""
    value = os.environ.get(f"PLAN_GATEWAY_{name}", "").strip().lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"PLAN_GATEWAY_{name} must be 1 or 0 (true/false), not {value[:20]!r}")


@dataclass
class Settings:
    database_url: str = field(default_factory=lambda: _env("DATABASE", "sqlite:///data/gateway.db"))
    # Public base URL override (behind a proxy); otherwise taken from each request.
    base_url: str | None = field(default_factory=lambda: os.environ.get("PLAN_GATEWAY_BASE_URL"))
    default_page_size: int = 20
    max_page_size: int = 1000
    # Searches matching more than this are paged from a stored snapshot of this many keys.
    max_snapshot_keys: int = 10_000
    max_body_bytes: int = field(
        default_factory=lambda: int(_env("MAX_BODY_BYTES", str(16 * 1024 * 1024)))
    )
    max_json_depth: int = 64
    max_bundle_entries: int = 10_000
    load_samples: bool = False
    # Threads per process running FHIR interactions; 0 picks by store (SQLite 8, PostgreSQL 32).
    worker_threads: int = field(default_factory=lambda: int(_env("WORKER_THREADS", "0")))
    # Every FHIR request carries a bearer token (gateway/security/): on unless explicitly turned
    # off (PLAN_GATEWAY_REQUIRE_AUTH=0, `plan-gateway serve --no-auth`). UNSAFE when off: with no
    # caller there is no consent gate and no audit trail; for local experiments only.
    require_auth: bool = field(default_factory=lambda: _flag("REQUIRE_AUTH", True))
    # A read's AuditEvent is committed before the answer is sent; with this it also waits for
    # the disk (fsync). Off: it survives the gateway process dying, not a power cut (see
    # gateway/audit/recorder.py). Writes and their AuditEvents always wait for the disk.
    audit_reads_fsync: bool = field(default_factory=lambda: _flag("AUDIT_READS_FSYNC", False))
    # One registration file per organisation that may ask for tokens (client_id, keys, scopes).
    organisations_dir: str = field(
        default_factory=lambda: _env("ORGANISATIONS", str(ORGANISATIONS_DIR))
    )
    # The gateway's access-token key; default: beside the SQLite file (./data for PostgreSQL),
    # created on first use. Several hosts sharing one PostgreSQL must be given the same file.
    token_key_file: str | None = field(
        default_factory=lambda: os.environ.get("PLAN_GATEWAY_TOKEN_KEY_FILE")
    )
    # The pseudonym key turning a HETU into a Patient id (gateway/security/pseudonyms.py);
    # default: beside the SQLite file (./data for PostgreSQL), created on first use.
    id_key_file: str | None = field(
        default_factory=lambda: os.environ.get("PLAN_GATEWAY_ID_KEY_FILE")
    )
    # The HL7 v2 MLLP listener (gateway/intake/mllp_server.py), started beside the HTTP server
    # when a port is given (`plan-gateway serve --mllp-port N`); off by default.
    mllp_port: int | None = field(
        default_factory=lambda: (
            int(os.environ["PLAN_GATEWAY_MLLP_PORT"])
            if os.environ.get("PLAN_GATEWAY_MLLP_PORT")
            else None
        )
    )
    mllp_host: str = field(default_factory=lambda: _env("MLLP_HOST", "127.0.0.1"))
    # The delivery relay (gateway/delivery/relay.py): pushes subscription notifications and
    # HL7 v2 answers from the outbox; every gateway process may run one (on unless turned off).
    delivery_relay: bool = field(default_factory=lambda: _flag("DELIVERY_RELAY", True))
    # The FHIR base the relay names in notifications (fullUrl, focus, the Subscription) when
    # `base_url` is not set: a push has no request to take it from. `plan-gateway serve` sets it
    # to the base it listens on.
    delivery_base: str | None = field(
        default_factory=lambda: os.environ.get("PLAN_GATEWAY_DELIVERY_BASE")
    )
    # Partner delivery test mode (PLAN_GATEWAY_DELIVERY_TEST_MODE=1): a Subscription may push to
    # plain http endpoints, and only on the loopback interface (127.0.0.1, ::1, localhost); off,
    # every channel.endpoint must be https. For tests and local demos only.
    delivery_test_mode: bool = field(default_factory=lambda: _flag("DELIVERY_TEST_MODE", False))
    # How long a relay holds the outbox rows it claimed, in seconds: a relay that dies mid-send
    # leaves them to be sent again once it is over. Must exceed the longest send timeout (60 s);
    # tests that kill gateways shorten it (PLAN_GATEWAY_DELIVERY_LEASE_S).
    delivery_lease_s: float = field(default_factory=lambda: float(_env("DELIVERY_LEASE_S", "121")))
    # The longest wait between two tries of a failing push (exponential backoff, doubling
    # from 2 s); tests driving kills and failures shorten it so a drain stays bounded.
    delivery_backoff_cap_s: float = field(
        default_factory=lambda: float(_env("DELIVERY_BACKOFF_CAP_S", "600"))
    )
    # The upstreams whose Tasks this gateway mirrors as their partner (gateway/delivery/
    # upstreams.py): a directory of one JSON file each (PLAN_GATEWAY_UPSTREAMS); unset: off.
    upstreams_dir: str | None = field(
        default_factory=lambda: os.environ.get("PLAN_GATEWAY_UPSTREAMS") or None
    )
    token_lifetime_s: int = 300  # capped at 300 (SMART Backend Services)
    jwks_cache_seconds: float = 300.0  # how long a fetched organisation JWKS is trusted
