"""Socket.IO rooms are scoped by warehouse, on a real `floor serve` with real Socket.IO clients.

A client of warehouse WA cannot join WB's rooms (forbidden_room), and never receives WB's
events: not live, not in catch-up, not even through a room both share (a station not bound to
a warehouse yet). Absence is shown without waiting on a clock: WA's own later event arrives,
and events are pushed in seq order, so anything of WB's before it would have arrived first."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests.conftest import make_order
from tests.live_socket import LIVE_BACKENDS, RecordingClient, live_server

WAYBILL = {"A": "SF7100000000001", "B": "SF7100000000002"}


def _client(url: str, token: str) -> RecordingClient:
    return RecordingClient(url, token, ("status", "scan_rejected", "alert", "override"))


@pytest.fixture(params=LIVE_BACKENDS)
def server(request):
    with live_server(request.param, "floor_rooms") as live:
        yield live


def _http(server, token, method, path, body):
    response = requests.request(method, f"{server.url}{path}", json=body, timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), (path, response.text)
    return response.json()


def _scan(server, token, station, code):
    return _http(server, token, "POST", "/api/v1/scans", {
        "scan_id": uuid.uuid4().hex, "station": station, "device_id": f"PDA-{station}", "code": code})


def _opened(order_no):
    return lambda events: any(e.get("order_no") == order_no and e.get("status") == "packing"
                              for _, e in events)


def test_a_warehouse_never_receives_another_warehouses_events(server):
    oms = server.token("integration", "oms")
    tokens = {side: {role: server.token(role, f"{side}-{role}", "--warehouse", f"W{side}")
                     for role in ("supervisor", "packer")} for side in "AB"}
    for side in "AB":
        _http(server, tokens[side]["supervisor"], "PUT", f"/api/v1/stations/P{side}1",
              {"warehouse": f"W{side}"})
        order = make_order(f"{side}-1", waybill=WAYBILL[side])
        order["warehouse"] = f"W{side}"
        _http(server, oms, "POST", "/api/v1/orders", order)
        _http(server, oms, "POST", "/api/v1/waves",
              {"wave_no": f"WV{side}", "order_nos": [f"{side}-1"], "station": f"P{side}1"})

    board_a = _client(server.url, tokens["A"]["supervisor"])
    board_b = _client(server.url, tokens["B"]["supervisor"])
    try:
        for rooms in (["warehouse:WB"], ["order:B-1"], ["wave:WVB"], ["station:PB1"],
                      ["warehouse:WA", "order:B-1"], ["warehouse:*"]):
            refused = board_a.subscribe(rooms)
            assert (refused["ok"], refused["code"]) == (False, "forbidden_room"), rooms
        # PX is bound to no warehouse yet: both may join it; the pump still keeps B's events
        # from A.
        joined = board_a.subscribe(["warehouse:WA", "station:PX"])
        assert joined["ok"], joined
        start = joined["last_seq"]
        assert board_b.subscribe(["warehouse:WB", "station:PX"], start)["ok"]

        # B's events, live: B's order opened at the shared unbound station by a site-wide
        # scanner (a one-warehouse one would bind the station to its warehouse), and a refused
        # scan at B's own station.
        site_packer = server.token("packer", "site-packer")
        assert _scan(server, site_packer, "PX", WAYBILL["B"])["code"] == "order_opened"
        assert _scan(server, site_packer, "PX", "NOT-IN-KIT-9")["ok"] is False
        assert _scan(server, tokens["B"]["packer"], "PB1", "NOT-IN-KIT-8")["ok"] is False
        board_b.wait_for(_opened("B-1"))
        # Then one of A's: once it has arrived, anything of B's pushed before it would have too.
        assert _scan(server, tokens["A"]["packer"], "PA1", WAYBILL["A"])["code"] == "order_opened"
        board_a.wait_for(_opened("A-1"))
        assert board_a.order_nos() == {"A-1"}
        assert "A-1" not in board_b.order_nos()

        # Catch-up from the beginning of the log: A's backlog holds none of B's events.
        late_a = _client(server.url, tokens["A"]["supervisor"])
        try:
            backlog = late_a.subscribe(["warehouse:WA", "station:PX"], 0)
            assert backlog["ok"] and backlog["sent"] >= 1, backlog
            late_a.wait_for(_opened("A-1"))
            assert late_a.order_nos() == {"A-1"}
        finally:
            late_a.close()

        # An all-warehouse board still sees both.
        every = _client(server.url, server.token("supervisor", "site"))
        try:
            assert every.subscribe(["warehouse:WA", "warehouse:WB"], 0)["ok"]
            every.wait_for(lambda ev: _opened("A-1")(ev) and _opened("B-1")(ev))
        finally:
            every.close()
    finally:
        board_a.close()
        board_b.close()
