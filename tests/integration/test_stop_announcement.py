"""An order held or cancelled while it is being packed is pushed at once to the handheld that
holds it: its station's room carries the `status` event, naming where it is packed
(`packing_at`), on a real `floor serve` with a real Socket.IO client. The handheld has joined
only its station's room, as the pack screen does before it shows an order."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests.conftest import make_order
from tests.live_socket import LIVE_BACKENDS, RecordingClient, live_server


class Handheld(RecordingClient):
    """The pack screen's socket: it scans, and records what its station's room pushes."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token, ("status", "session_released", "scan_rejected"))

    def scan(self, code: str, device_id: str) -> dict:
        return self.sio.call("scan", {"scan_id": uuid.uuid4().hex, "station": "P01",
                                      "device_id": device_id, "code": code},
                             namespace="/floor", timeout=10)

    def statuses(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(e["order_no"], e["status"]) for name, e in self.events if name == "status"]


@pytest.fixture(params=LIVE_BACKENDS)
def server(request):
    with live_server(request.param, "floor_stop") as live:
        yield live


def _post(server, token, path, body):
    response = requests.post(f"{server.url}{path}", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), (path, response.text)
    return response.json()


def test_hold_release_and_cancel_reach_the_handheld_packing_the_order(server):
    oms, boss = server.token("integration", "oms"), server.token("supervisor", "boss")
    for n in (1, 2, 3):
        _post(server, oms, "/api/v1/orders", make_order(f"TB00{n}", waybill=f"SF100000000000{n}"))
    _post(server, oms, "/api/v1/waves", {"wave_no": "W-1", "order_nos": ["TB001", "TB002", "TB003"],
                                         "station": "P01"})
    handheld = Handheld(server.url, server.token("packer", "packer-a"))
    try:
        joined = handheld.subscribe(["station:P01"], 0)
        assert joined["ok"], joined
        assert handheld.scan("SF1000000000001", "PDA-A")["code"] == "order_opened"
        assert handheld.scan("6901234567892", "PDA-A")["code"] == "accepted"

        # An order nobody packs is held: its status stays out of the station's room ...
        _post(server, boss, "/api/v1/orders/TB002/events", {"event": "hold", "reason": "address check"})
        # ... the one PDA-A packs is held: pushed there at once, naming where it is packed.
        _post(server, boss, "/api/v1/orders/TB001/events", {"event": "hold", "reason": "customer called"})
        held = handheld.first(lambda n, e: n == "status" and e["order_no"] == "TB001"
                              and e["status"] == "on_hold")
        assert held["packing_at"] == {"station": "P01", "device_id": "PDA-A"}
        assert (held["from"], held["by"], held["reason"]) == ("packing", "boss", "customer called")
        # Events come in seq order: TB002's hold, had it been pushed here, would be in already.
        assert ("TB002", "on_hold") not in handheld.statuses()

        # Released: that too reaches the handheld, then it is cancelled while still open.
        _post(server, boss, "/api/v1/orders/TB001/events", {"event": "release", "reason": "sorted out"})
        handheld.first(lambda n, e: n == "status" and e["status"] == "packing" and e.get("from") == "on_hold")
        _post(server, boss, "/api/v1/orders/TB001/events", {"event": "cancel", "reason": "refunded"})
        cancelled = handheld.first(lambda n, e: n == "status" and e["status"] == "cancelled")
        assert cancelled["packing_at"] == {"station": "P01", "device_id": "PDA-A"}
        assert cancelled["reason"] == "refunded"
        released = handheld.first(lambda n, e: n == "session_released")
        assert released["seq"] > cancelled["seq"] and released["order_no"] == "TB001"
        # The next scan of the cancelled order's item is refused: its session is closed.
        assert handheld.scan("6901234567908", "PDA-A")["ok"] is False

        # A cancel of an order open at no station goes to no station: once the refusal pushed
        # after it has arrived, it would have too.
        _post(server, boss, "/api/v1/orders/TB003/events", {"event": "cancel", "reason": "duplicate"})
        assert handheld.scan("SF1000000000002", "PDA-A")["code"] == "order_blocked"
        handheld.first(lambda n, e: n == "scan_rejected" and e["order_no"] == "TB002")
        assert {("TB002", "on_hold"), ("TB003", "cancelled")} & set(handheld.statuses()) == set()
    finally:
        handheld.close()
