"""Bare baseline endpoints for the benchmark (registered only when BENCH_ENDPOINTS is true).

They take the same payload as a scan and do the least a durable scan must do: ONE insert
into `bench_events` and a commit, through the app's engine and its pragmas (WAL,
synchronous=NORMAL, BEGIN IMMEDIATE on SQLite). Comparing a scan with them shows what the
scan pipeline costs on top of the web stack, the transport and one durable write.

- ``POST /bench/bare``: no authentication; answers ``{"ok": true}``.
- Socket.IO event ``bench_bare`` on namespace ``/floor`` (so on a connection that passed the
  namespace's authentication, like ``scan``); the ack is ``{"ok": true}``.

    from floor import benchmark
    app.register_blueprint(benchmark.bp)
    benchmark.register_socket_handlers(socketio)
"""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import text
from sqlalchemy.engine import Engine

from floor.db import get_db

NAMESPACE = "/floor"
EVENT = "bench_bare"

bp = Blueprint("bench", __name__, url_prefix="/bench")

_CREATE = text(
    "CREATE TABLE IF NOT EXISTS bench_events ("
    " scan_id VARCHAR(64), station VARCHAR(64), device_id VARCHAR(64),"
    " code VARCHAR(512), received_at VARCHAR(40))")
_INSERT = text(
    "INSERT INTO bench_events (scan_id, station, device_id, code, received_at)"
    " VALUES (:scan_id, :station, :device_id, :code, :received_at)")

_ready: set[int] = set()
_ready_lock = threading.Lock()


def _ensure_table(engine: Engine) -> None:
    key = id(engine)
    if key in _ready:
        return
    with _ready_lock:
        if key in _ready:
            return
        with engine.begin() as conn:
            conn.execute(_CREATE)
        _ready.add(key)


def _field(payload: dict[str, Any], name: str, limit: int) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    return str(value)[:limit]


def record(payload: Any) -> dict[str, Any]:
    """One insert, one commit. Answers the ack / response body."""
    if not isinstance(payload, dict):
        return {"ok": False, "code": "invalid_body", "message": "Send a JSON object."}
    engine = get_db().engine
    _ensure_table(engine)
    row = {"scan_id": _field(payload, "scan_id", 64), "station": _field(payload, "station", 64),
           "device_id": _field(payload, "device_id", 64), "code": _field(payload, "code", 512),
           "received_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")}
    with engine.begin() as conn:
        conn.execute(_INSERT, row)
    return {"ok": True}


@bp.post("/bare")
def bare() -> Any:
    result = record(request.get_json(silent=True))
    return jsonify(result), (200 if result["ok"] else 400)


def register_socket_handlers(socketio: Any) -> None:
    """Add the `bench_bare` event to the /floor namespace.

    An explicit event handler is looked up before the namespace's class-based handler, so
    this adds one event and leaves connect/auth and every other event to the namespace class.
    """

    def on_bench_bare(payload: Any = None) -> dict[str, Any]:
        return record(payload)

    socketio.on_event(EVENT, on_bench_bare, namespace=NAMESPACE)
