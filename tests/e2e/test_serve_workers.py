"""`floor serve` with each gunicorn worker class answers scans over REST and Socket.IO, reads a
serial scanner on a pty, and pushes events to a subscribed board."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
import socketio

from floor_sim.serial_port import PtyScanner
from floor_sim.server import LiveServer, simulator_serial_globs


@pytest.mark.parametrize("worker", ["gthread", "gevent"])
def test_serve_with_worker(worker, tmp_path):
    if worker == "gevent":
        pytest.importorskip("gevent")
    with LiveServer(serve_args=["--worker", worker],
                    env={"FLOOR_SERIAL_PORT_GLOBS": simulator_serial_globs(tmp_path)}) as server:
        server.floor("seed-demo")
        packer, supervisor = server.token("packer", "p"), server.token("supervisor", "s")
        wave = requests.get(f"{server.url}/api/v1/waves/W-0001", timeout=10,
                            headers={"Authorization": f"Bearer {supervisor}"}).json()
        waybill = next(o["waybill_no"] for o in wave["orders"] if o["waybill_no"])
        got, seen = [], threading.Event()
        board = socketio.Client(reconnection=False)

        verdicts, heard = [], threading.Event()

        @board.on("scan_verdict", namespace="/floor")
        def _verdict(event):  # type: ignore[no-untyped-def]
            verdicts.append(event)
            heard.set()

        @board.on("status", namespace="/floor")
        def _status(event):  # type: ignore[no-untyped-def]
            got.append(event)
            if event["status"] == "packing":
                seen.set()

        board.connect(server.url, namespaces=["/floor"], transports=["websocket"],
                      auth={"token": supervisor})
        last = requests.get(f"{server.url}/api/v1/board", timeout=10,
                            headers={"Authorization": f"Bearer {supervisor}"}).json()["last_seq"]
        assert board.call("subscribe", {"room": "warehouse:JX", "after_seq": last},
                          namespace="/floor", timeout=10)["ok"]
        handheld = socketio.Client(reconnection=False)
        handheld.connect(server.url, namespaces=["/floor"], transports=["websocket"],
                         auth={"token": packer})
        verdict = handheld.call("scan", {"scan_id": uuid.uuid4().hex, "station": "P01",
                                         "device_id": "PDA-W", "code": waybill},
                                namespace="/floor", timeout=10)
        assert verdict["code"] == "order_opened"
        assert seen.wait(5), got
        rest = requests.post(f"{server.url}/api/v1/scans", timeout=10,
                             headers={"Authorization": f"Bearer {packer}"},
                             json={"scan_id": uuid.uuid4().hex, "station": "P01",
                                   "device_id": "PDA-W", "code": "NOT-A-CODE"})
        assert rest.status_code == 200 and rest.json()["code"] == "unknown_code"

        # The worker's serial reader: a pty scanner registered through the API.
        auth = {"Authorization": f"Bearer {supervisor}"}
        assert board.call("subscribe", {"room": "station:P02", "after_seq": 0},
                          namespace="/floor", timeout=10)["ok"]
        with PtyScanner(tmp_path / "scanner", terminator="CR") as pty:
            registered = requests.post(f"{server.url}/api/v1/devices", headers=auth, timeout=10, json={
                "device_id": "SCN-W", "kind": "serial", "port": str(pty.link), "station": "P02"})
            assert registered.status_code == 201, registered.text
            deadline, state = time.monotonic() + 20, None
            while state != "online" and time.monotonic() < deadline:
                time.sleep(0.1)
                devices = requests.get(f"{server.url}/api/v1/devices", headers=auth, timeout=10).json()
                state = next(d["state"] for d in devices["devices"] if d["device_id"] == "SCN-W")
            assert state == "online", server.log_tail()
            pty.scan("NOT-A-CODE-FROM-SERIAL")
            assert heard.wait(10), server.log_tail()
        assert verdicts[0]["device_id"] == "SCN-W" and verdicts[0]["code"] == "unknown_code"
        handheld.disconnect()
        board.disconnect()
