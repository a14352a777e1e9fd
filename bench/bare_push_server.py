"""The push benchmark's baseline: a bare python-socketio server, no Flask, no database.

Served like floor (gunicorn, gthread worker, one process; `bench/push.py` starts it):

    gunicorn -k gthread --threads 600 -w 1 --chdir bench bare_push_server:app

It speaks what the benchmark's boards speak: namespace ``/floor``, ``subscribe``
{"rooms": [...]} (ack {"ok": true, "last_seq": 0}) joins the rooms. ``POST /trigger`` with
a JSON object emits it as a ``status`` event to room ``warehouse:JX`` (adding ``emitted_at``,
the server's wall clock) and answers 200 once `emit` has returned; so trigger -> board is the
same path as scan -> board without the request's database work and the event pump.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable

import socketio

NAMESPACE = "/floor"
ROOM = "warehouse:JX"

sio = socketio.Server(async_mode="threading", cors_allowed_origins=None)


@sio.on("connect", namespace=NAMESPACE)
def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
    return True


@sio.on("subscribe", namespace=NAMESPACE)
def subscribe(sid: str, data: Any = None) -> dict[str, Any]:
    rooms = data.get("rooms") if isinstance(data, dict) else None
    for room in rooms or [ROOM]:
        sio.enter_room(sid, room, namespace=NAMESPACE)
    return {"ok": True, "last_seq": 0}


def trigger(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    if environ.get("PATH_INFO") != "/trigger" or environ.get("REQUEST_METHOD") != "POST":
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    size = int(environ.get("CONTENT_LENGTH") or 0)
    payload = json.loads(environ["wsgi.input"].read(size) or b"{}")
    payload["emitted_at"] = time.time()
    sio.emit("status", payload, to=ROOM, namespace=NAMESPACE)
    body = json.dumps({"ok": True, "code": "ok"}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


app = socketio.WSGIApp(sio, trigger)
