"""Outages against a real `floor serve`: the database out of reach for a few seconds.

PostgreSQL: the network between the server and the database is cut with a TCP proxy
(`floor_sim.proxy`: open connections reset, new ones refused) and restored. SQLite: another
process holds the write lock longer than the busy timeout (FLOOR_SQLITE_BUSY_TIMEOUT_MS).

The server must answer a clear verdict with a stable code, 503 `database_unavailable` over
REST and the same code in the Socket.IO `scan` ack, never a 500 or `server_error`; it must
recover by itself once the database is back; the handhelds replay with the same scan_id and
nothing is lost or doubled. (Redis down: tests/integration/test_scale_out.py and the fault
table; a serial scanner unplugged: tests/integration/test_serial_scanner.py and the table.)
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from floor_sim.fault_table import faulted_shift
from floor_sim.handheld import make_handheld
from floor_sim.proxy import TcpProxy
from floor_sim.server import LiveServer, postgres_schema

pytestmark = pytest.mark.e2e
PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


class Outage:
    """A server whose database can be taken away: `down()` / `up()`."""

    def __init__(self, backend: str, instance: Path) -> None:
        self.backend = backend
        self.instance = instance
        self.stack = contextlib.ExitStack()
        self.proxy: TcpProxy | None = None
        self._lock: sqlite3.Connection | None = None

    def __enter__(self) -> LiveServer:
        env = {"FLOOR_ALERT_INTERVAL_S": "0"}
        url = None
        if self.backend == "postgresql":
            assert PG_URL
            url = self.stack.enter_context(postgres_schema(PG_URL, "floor_outage"))
            target = urlsplit(url)
            self.proxy = self.stack.enter_context(TcpProxy(target.hostname or "127.0.0.1",
                                                           target.port or 5432))
            url = self.proxy.rewrite(url)
        else:
            env["FLOOR_SQLITE_BUSY_TIMEOUT_MS"] = "300"
        server = LiveServer(instance_path=self.instance, database_url=url, env=env)
        self.stack.enter_context(server)
        return server

    def __exit__(self, *exc: Any) -> None:
        self.up()
        self.stack.close()

    def down(self) -> None:
        if self.proxy is not None:
            self.proxy.cut()
        else:
            self._lock = sqlite3.connect(self.instance / "floor.db", timeout=30,
                                         isolation_level=None)
            self._lock.execute("BEGIN IMMEDIATE")

    def up(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        elif self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_scan_during_a_database_outage_is_answered_503_then_recorded_once_after(
        backend: str, tmp_path: Path) -> None:
    outage = Outage(backend, tmp_path / "instance")
    with outage as server:
        device = server.token("device", "outage-handheld")
        supervisor = server.token("supervisor", "outage-supervisor")
        auth = {"Authorization": f"Bearer {device}"}
        body = {"scan_id": "outage-rest-1", "station": "OUT1", "device_id": "OUT-1",
                "code": "4006381333931"}
        # Warm: the token is known and cached, the socket connected, before the outage.
        assert requests.get(f"{server.url}/api/v1/devices", timeout=10,
                            headers={"Authorization": f"Bearer {supervisor}"}).status_code == 200
        handheld = make_handheld("socketio", server.url, device, station="OUT2",
                                 device_id="OUT-2", timeout=15, retries=0)
        handheld.connect()
        try:
            outage.down()
            if backend == "postgresql":
                # Past the server's token cache (10 s): the token check itself needs the database.
                time.sleep(10.5)
            rest = requests.post(f"{server.url}/api/v1/scans", json=body, headers=auth,
                                 timeout=30)
            ack = handheld._send({"scan_id": "outage-sio-1", "station": "OUT2",
                                  "device_id": "OUT-2", "code": "4006381333931"})
            page = requests.get(f"{server.url}/api/v1/devices", timeout=30,
                                headers={"Authorization": f"Bearer {supervisor}"})
            outage.up()

            assert rest.status_code == 503, rest.text
            assert rest.json()["code"] == "database_unavailable" and rest.json()["message"]
            assert rest.headers.get("Retry-After") == "1"
            assert ack["ok"] is False and ack["code"] == "database_unavailable", ack
            assert ack["message"], ack
            if backend == "postgresql":
                # A read outside any use case's transaction: the same answer, not a 500.
                assert page.status_code == 503 and page.json()["code"] == "database_unavailable"
            else:
                assert page.status_code == 200     # readers never wait in WAL mode

            # Back by itself: the same scans again are recorded, once each.
            deadline = time.monotonic() + 30
            while True:
                again = requests.post(f"{server.url}/api/v1/scans", json=body, headers=auth,
                                      timeout=30)
                if again.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert again.status_code == 200, again.text
            assert again.json()["scan_id"] == "outage-rest-1"
            assert again.json()["code"] == "unknown_code"
            verdict = handheld.send({"scan_id": "outage-sio-1", "station": "OUT2",
                                     "device_id": "OUT-2", "code": "4006381333931"})
            assert verdict["code"] == "unknown_code", verdict
            replay = requests.post(f"{server.url}/api/v1/scans", json=body, headers=auth,
                                   timeout=30)
            assert replay.json() == again.json()
        finally:
            handheld.close()
        log = server.log_tail(200_000)
    assert "Internal Server Error" not in log


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_shift_through_a_database_outage_loses_and_doubles_nothing(backend: str,
                                                                     tmp_path: Path) -> None:
    run = faulted_shift("db_outage", tmp_path, backend=backend, pg_url=PG_URL, handhelds=10,
                        orders=40, outage_s=4.0, seed=20261205)
    assert run.result is not None
    row = run.row()
    s = run.result.summary()
    context = json.dumps({"row": row, "lost": run.lost()[:10], "problems": run.problems[:10],
                          "unexpected": s["unexpected_verdicts"], "errors": s["errors"]},
                         default=str)
    refusals = run.refusals()
    # The outage was felt: scans were refused with the stable code, and only with it.
    assert refusals["database_unavailable"] > 0, context
    assert set(refusals) == {"database_unavailable"}, context
    assert run.marks and 0 < run.marks[0] < row["recorded"], context
    # And nothing was lost, doubled or packed short.
    assert run.unanswered() == 0 and run.lost() == [], context
    assert run.duplicated() == [] and run.unaccounted() == [], context
    assert row["recorded"] == row["sent"], context
    assert run.problems == [] and row["escaped"] == 0, context
    assert s["unexpected"] == 0 and s["verdict_mismatches"] == 0, context
    assert s["orders_packed_by_service"] == 40, context
