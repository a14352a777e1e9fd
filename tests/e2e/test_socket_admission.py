"""An anonymous client cannot hold the server's threads: against a real `floor serve` with a
small gthread worker (16 threads), on loopback only.

Anonymous websockets and long-polls are refused with 401 before an Engine.IO session exists
(beyond the few admitted on probation, which are closed when they do not authenticate), while
/healthz keeps answering; authenticated clients (bearer header, session cookie, or the
contract's token in the CONNECT packet) work; past the per-address and total caps the handshake
is refused with 429 `socket_address_limit` / 503 `socket_capacity`. Nothing here asserts a
duration: /healthz must answer at all, within a generous timeout."""
from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import time

import pytest
import requests
import socketio
import websocket

from floor_sim.server import LiveServer, floor_command

THREADS = 16            # floor serve --threads 16: SOCKET_MAX defaults to 16 - 4 = 12
PER_ADDRESS = 8
GRACE_S = 2
HEALTH_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def server():
    with LiveServer(serve_args=["--threads", str(THREADS)],
                    env={"FLOOR_ALERT_INTERVAL_S": "0", "FLOOR_SOCKET_MAX_PER_ADDRESS": str(PER_ADDRESS),
                         "FLOOR_SOCKET_PENDING_PER_ADDRESS": "2", "FLOOR_SOCKET_PENDING_MAX": "4",
                         "FLOOR_SOCKET_AUTH_GRACE_S": str(GRACE_S)}) as live:
        live.supervisor = live.token("supervisor", "admission")
        yield live


def _ws(server, source: str = "127.0.0.1", headers: list[str] | None = None):
    """A raw Engine.IO websocket handshake from a loopback source address: (ws or None, status, body)."""
    sock = socket.create_connection((server.host, server.port), timeout=10, source_address=(source, 0))
    try:
        ws = websocket.create_connection(
            f"ws://{server.host}:{server.port}/socket.io/?EIO=4&transport=websocket",
            socket=sock, timeout=10, header=headers or [])
        return ws, 101, None
    except websocket.WebSocketBadStatusException as exc:
        sock.close()
        body = json.loads(exc.resp_body) if exc.resp_body else None
        return None, exc.status_code, body


def _poll(server, source: str, headers: dict[str, str] | None = None):
    """A long-polling handshake (GET) from a loopback source address: (status, body)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/socket.io/?EIO=4&transport=polling", headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def _healthy(server) -> bool:
    return requests.get(f"{server.url}/healthz", timeout=HEALTH_TIMEOUT_S).status_code == 200


def _closed_by_server(ws, within: float = 30.0) -> bool:
    """The server ends the connection (a pending one that never authenticated)."""
    deadline = time.monotonic() + within
    ws.settimeout(1)
    while time.monotonic() < deadline:
        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, OSError):
            return True
        if frame == "2":
            ws.send("3")          # answer pings: only the missing authentication may end it
        elif frame in ("", "1") or frame is None:
            return True
    return False


def test_anonymous_connections_are_refused_before_a_session_and_health_answers(server):
    """Far more anonymous websockets than the worker has threads, from one address: all but the
    two admitted on probation are answered 401 `unauthenticated`; so are anonymous long-polls
    past the probation limit; /healthz answers; the probation ones are closed by the server."""
    held, refused = [], []
    for _ in range(THREADS * 3):
        ws, status, body = _ws(server, "127.0.0.3")
        if ws is not None:
            held.append(ws)
        else:
            refused.append((status, body["code"]))
    assert len(held) == 2 and refused == [(401, "unauthenticated")] * (THREADS * 3 - 2)
    status, body = _poll(server, "127.0.0.3")
    assert status == 401 and json.loads(body)["code"] == "unauthenticated"
    # A wrong credential is refused at the handshake whatever the limits.
    ws, status, body = _ws(server, "127.0.0.4", ["Authorization: Bearer flr_not-a-token"])
    assert (ws, status, body["code"]) == (None, 401, "unauthenticated")
    status, _ = _poll(server, "127.0.0.4", {"Cookie": "session=forged.cookie.value"})
    assert status == 401
    assert _healthy(server)
    # Probation ends: not authenticated in time, the server closes them (pinged and answered).
    assert all(_closed_by_server(ws) for ws in held)
    # A CONNECT with a bad token ends the connection too, not only the namespace.
    ws, status, _ = _ws(server, "127.0.0.5")
    assert status == 101 and ws.recv().startswith("0")
    ws.send('40/floor,{"token": "flr_not-a-token"}')
    assert ws.recv().startswith("44/floor")
    assert _closed_by_server(ws)
    assert _healthy(server)


def _login_cookie(server) -> str:
    subprocess.run(floor_command() + ["user", "create", "--username", "lead", "--role", "supervisor"],
                   env=server.environ(), cwd=server.instance_path, input="correct horse\n",
                   text=True, check=True, capture_output=True, timeout=120)
    browser = requests.Session()
    form = browser.get(f"{server.url}/login", timeout=10).text
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    answer = browser.post(f"{server.url}/login", allow_redirects=False, timeout=10,
                          data={"username": "lead", "password": "correct horse", "csrf_token": csrf})
    assert answer.status_code == 302, answer.text
    return browser.cookies["session"]


def test_authenticated_clients_connect_and_the_caps_refuse_the_excess_with_their_code(server):
    token = server.supervisor
    subscribe = {"room": "warehouse:JX", "after_seq": 0}
    clients = []

    def client(**kw):
        sio = socketio.Client(reconnection=False)
        sio.connect(server.url, namespaces=["/floor"], transports=["websocket"], wait_timeout=10, **kw)
        clients.append(sio)
        return sio

    try:
        # the three ways in: bearer header, session cookie, the token in the CONNECT packet only
        by_header = client(headers={"Authorization": f"Bearer {token}"})
        by_cookie = client(headers={"Cookie": f"session={_login_cookie(server)}"})
        by_connect = client(auth={"token": token})
        time.sleep(GRACE_S + 1)     # past the probation: an authenticated CONNECT keeps it open
        for sio in (by_header, by_cookie, by_connect):
            assert sio.connected and sio.call("subscribe", subscribe, namespace="/floor", timeout=10)["ok"]

        # Per address: 8 connections from 127.0.0.1 in all, the 9th is refused with 429.
        held = [_ws(server, "127.0.0.1", [f"Authorization: Bearer {token}"])[0]
                for _ in range(PER_ADDRESS - len(clients))]
        assert all(ws is not None for ws in held)
        ws, status, body = _ws(server, "127.0.0.1", [f"Authorization: Bearer {token}"])
        assert (ws, status, body["code"]) == (None, 429, "socket_address_limit")
        # In all: 12 (16 threads less the reserve for HTTP); the 13th, from elsewhere, 503.
        held += [_ws(server, "127.0.0.2", [f"Authorization: Bearer {token}"])[0] for _ in range(4)]
        assert all(ws is not None for ws in held)
        ws, status, body = _ws(server, "127.0.0.6", [f"Authorization: Bearer {token}"])
        assert (ws, status, body["code"]) == (None, 503, "socket_capacity")
        status, body = _poll(server, "127.0.0.6", {"Authorization": f"Bearer {token}"})
        assert status == 503 and json.loads(body)["code"] == "socket_capacity"
        assert _healthy(server)
        assert requests.get(f"{server.url}/api/v1/tokens", timeout=HEALTH_TIMEOUT_S,
                            headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # A connection that ends frees its place.
        held.pop().close()
        deadline, again = time.monotonic() + 30, None
        while again is None and time.monotonic() < deadline:
            again = _ws(server, "127.0.0.6", [f"Authorization: Bearer {token}"])[0]
            if again is None:
                time.sleep(0.2)
        assert again is not None
        held.append(again)
        for ws in held:
            ws.close()
    finally:
        for sio in clients:
            sio.disconnect()
