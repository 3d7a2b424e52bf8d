"""The bare baselines: the least a FastAPI service must do for the same request.

- GET /ping: a constant body (the load generator's ceiling on this machine).
- GET /read/{type}/{id}: `SELECT body FROM resources ...` on the gateway's own database, returned.
- POST /create/{type}: parse, validate with fhir.resources (R4B, as the gateway), insert into a
  `baseline_resources` table in a database of the same kind and durability, return the body.

Configured by BENCH_READ_DATABASE and BENCH_WRITE_DATABASE (sqlite:///path or postgresql://...).
Served by uvicorn with `bench.baseline:create --factory`. Never used by the gateway itself.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

FHIR_JSON = "application/fhir+json"
SELECT = "SELECT body FROM resources WHERE res_type = ? AND res_id = ?"
WRITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS baseline_resources "
    "(res_type TEXT NOT NULL, res_id TEXT NOT NULL, body {blob} NOT NULL, "
    "PRIMARY KEY (res_type, res_id))"
)
INSERT = "INSERT INTO baseline_resources (res_type, res_id, body) VALUES (?, ?, ?)"

Run = Callable[[str, tuple, bool], Any]  # sql, params, write -> first row or None


def _sqlite(path: str) -> Run:
    local = threading.local()

    def conn() -> sqlite3.Connection:
        c = getattr(local, "conn", None)
        if c is None:
            c = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=FULL")  # the gateway's durability setting
            local.conn = c
        return c

    def run(sql: str, params: tuple, write: bool) -> Any:
        c = conn()
        if not write:
            return c.execute(sql, params).fetchone()
        c.execute("BEGIN IMMEDIATE")
        c.execute(sql, params)
        c.execute("COMMIT")
        return None

    return run


def _postgres(url: str) -> Run:
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(url, min_size=1, max_size=16, open=True)

    def run(sql: str, params: tuple, write: bool) -> Any:
        with pool.connection() as c:  # commits on exit
            cur = c.execute(sql.replace("?", "%s"), params)
            return None if write else cur.fetchone()

    return run


def _open(url: str, blob: str | None = None) -> Run:
    is_pg = url.startswith(("postgresql://", "postgres://"))
    run = _postgres(url) if is_pg else _sqlite(url.removeprefix("sqlite:///"))
    if blob is not None:
        run(WRITE_TABLE.format(blob="BYTEA" if is_pg else "BLOB"), (), True)
    return run


def create() -> FastAPI:
    read_db = _open(os.environ["BENCH_READ_DATABASE"])
    write_db = _open(os.environ["BENCH_WRITE_DATABASE"], blob="")
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    @app.get("/read/{rtype}/{rid}")
    def read(rtype: str, rid: str) -> Response:
        row = read_db(SELECT, (rtype, rid), False)
        if row is None:
            return Response(status_code=404)
        return Response(bytes(row[0]), media_type=FHIR_JSON)

    def store(rtype: str, resource: dict[str, Any]) -> bytes:
        get_fhir_model_class(rtype).model_validate(resource)
        resource["id"] = str(uuid.uuid4())
        body = orjson.dumps(resource)
        write_db(INSERT, (rtype, resource["id"], body), True)
        return body

    @app.post("/create/{rtype}")
    async def create_one(rtype: str, request: Request) -> Response:
        resource = orjson.loads(await request.body())
        try:
            body = await run_in_threadpool(store, rtype, resource)
        except ValidationError:
            return Response(status_code=400)
        return Response(body, status_code=201, media_type=FHIR_JSON)

    return app
