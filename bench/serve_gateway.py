"""uvicorn factory for the gateway under benchmark: `bench.serve_gateway:create --factory`.

Settings come from the environment (PLAN_GATEWAY_DATABASE, PLAN_GATEWAY_REQUIRE_AUTH=1,
PLAN_GATEWAY_TOKEN_KEY_FILE), as `plan-gateway serve` would read them; used so the benchmark does
not depend on the CLI's flags.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import Settings


def create() -> FastAPI:
    """As `gateway.app.server_app` (the heap frozen after start), with explicit settings."""
    app = create_app(Settings())
    gc.collect()
    gc.freeze()
    return app
