"""Two real server processes on PostgreSQL and Redis share the floor's events.

A scan handled by process A reaches a board connected to process B; `after_seq` catch-up works
on either; with Redis down, scans still commit, A still pushes at once and B still gets every
event (it polls the event log until Redis is back).
"""
from __future__ import annotations

import os
import shutil
import threading
import time
import uuid

import pytest
import requests
import socketio
from floor_sim.server import LiveServer, RedisServer, postgres_schema

PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not PG_URL or not shutil.which("redis-server"),
    reason="scale-out needs FLOOR_TEST_POSTGRES_URL (set by .ci/run) and redis-server")

ORDER = {"order_no": "SO-1", "channel": "taobao", "warehouse": "JX", "waybill_no": "SF9000000000001",
         "lines": [{"sku": "A", "name": "精华", "qty": 1, "role": "main", "barcodes": ["6900000000017"]},
                   {"sku": "B", "name": "礼盒", "qty": 1, "role": "giftbox", "barcodes": ["6900000000024"]}]}


class Board:
    """A Socket.IO client on one process, recording every event it is pushed."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        for name in ("status", "scan_rejected", "alert", "override"):
            self.client.on(name, self._handler(name), namespace="/floor")
        self.client.connect(url, namespaces=["/floor"], transports=["websocket"], auth={"token": token})

    def _handler(self, name):
        def handle(data):
            with self.lock:
                self.events.append((name, data))
        return handle

    def subscribe(self, room: str, after_seq: int = 0) -> dict:
        return self.client.call("subscribe", {"room": room, "after_seq": after_seq},
                                namespace="/floor", timeout=10)

    def wait_for(self, predicate, timeout: float = 5.0) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self.events):
                    return list(self.events)
            time.sleep(0.01)
        with self.lock:
            raise AssertionError(f"timed out; got {self.events}")

    def statuses(self) -> list[str]:
        with self.lock:
            return [e["status"] for name, e in self.events if name == "status"]

    def seqs(self) -> list[int]:
        with self.lock:
            return [e["seq"] for _, e in self.events]

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def cluster():
    with postgres_schema(PG_URL, "floor_scale") as url:
        redis_server = RedisServer()
        redis_server.start()
        env = {"FLOOR_MESSAGE_QUEUE": redis_server.url, "FLOOR_SECRET_KEY": "shared-secret",
               "FLOOR_ALERT_INTERVAL_S": "0"}
        servers = [LiveServer(database_url=url, env=env) for _ in range(2)]
        try:
            for server in servers:
                server.start()
            yield servers, redis_server
        finally:
            for server in servers:
                server.stop()
            redis_server.stop()


def _scan(server, token, code, device="PDA-A"):
    response = requests.post(f"{server.url}/api/v1/scans", timeout=10,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"scan_id": uuid.uuid4().hex, "station": "P01", "device_id": device,
                                   "code": code})
    assert response.status_code == 200, response.text
    return response.json()


def test_events_cross_processes_and_catch_up_works_on_either(cluster):
    (a, b), _redis = cluster
    integration = a.token("integration", "oms")
    packer, supervisor = a.token("packer", "p"), a.token("supervisor", "s")
    headers = {"Authorization": f"Bearer {integration}"}
    assert requests.post(f"{a.url}/api/v1/orders", json=ORDER, headers=headers, timeout=10).status_code == 201
    assert requests.post(f"{b.url}/api/v1/waves", json={"wave_no": "W-S", "order_nos": ["SO-1"], "station": "P01"},
                         headers=headers, timeout=10).status_code == 200

    board_b = Board(b.url, supervisor)
    ack = board_b.subscribe("warehouse:JX", 0)
    assert ack["ok"] and board_b.statuses() == ["received", "wave_assigned"]   # backlog first

    started = time.monotonic()
    assert _scan(a, packer, "SF9000000000001")["code"] == "order_opened"        # handled by A
    board_b.wait_for(lambda ev: any(e.get("status") == "packing" for _, e in ev))
    assert time.monotonic() - started < 2.0
    assert _scan(a, packer, "6900000000024")["code"] == "giftbox_incomplete"
    board_b.wait_for(lambda ev: any(name == "scan_rejected" for name, _ in ev))
    seqs = board_b.seqs()
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))

    # A board that was away catches up on either process, from any seq, in order, each once.
    first_seq = seqs[0]
    for server in (a, b):
        late = Board(server.url, supervisor)
        late.subscribe("order:SO-1", first_seq)
        assert late.statuses() == ["wave_assigned", "packing"]
        late.close()
    board_b.close()


def test_with_redis_down_scans_commit_and_every_board_still_gets_them(cluster):
    (a, b), redis_server = cluster
    integration = a.token("integration", "oms")
    packer, supervisor = a.token("packer", "p"), a.token("supervisor", "s")
    headers = {"Authorization": f"Bearer {integration}"}
    requests.post(f"{a.url}/api/v1/orders", json=ORDER, headers=headers, timeout=10)
    requests.post(f"{a.url}/api/v1/waves", json={"wave_no": "W-S", "order_nos": ["SO-1"]},
                  headers=headers, timeout=10)
    board_a, board_b = Board(a.url, supervisor), Board(b.url, supervisor)
    for board in (board_a, board_b):
        board.subscribe("order:SO-1", 0)

    redis_server.stop()
    time.sleep(0.3)
    assert _scan(a, packer, "SF9000000000001")["code"] == "order_opened"        # committed
    board_a.wait_for(lambda ev: "packing" in [e.get("status") for _, e in ev], timeout=2)
    board_b.wait_for(lambda ev: "packing" in [e.get("status") for _, e in ev], timeout=5)

    redis_server.start()
    time.sleep(1.0)
    _scan(a, packer, "6900000000017")
    done = _scan(a, packer, "6900000000024")
    assert done["status"] == "packed"
    for board in (board_a, board_b):
        board.wait_for(lambda ev: "packed" in [e.get("status") for _, e in ev], timeout=5)
        assert board.statuses() == ["received", "wave_assigned", "packing", "packed"]
        board.close()
