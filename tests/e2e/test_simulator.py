"""The device simulator against a live `floor serve`: short shifts over Socket.IO and REST.

Every order must get packed, every scan answered as the packer expected, and the service's
own record of each order (GET /api/v1/orders/<no>) must hold exactly the scans the
simulator sent, in order, with the verdicts the simulator received.

The server keeps its default debounce window (500 ms): the simulated packers wait 0.6 s
before scanning the same code again (a line's second unit), and their deliberate double
reads must come back as duplicate_read.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import requests

from floor_sim.cli import main as floor_sim_main
from floor_sim.load import run_shift
from floor_sim.orders import OrderFactory
from floor_sim.server import LiveServer

pytestmark = pytest.mark.e2e
# Distinct catalogue/order tags per test: all tests share one database.
TAGS = {"socketio": "10001", "rest": "10002", "idempotent": "10003"}


class Api:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.url = server.url
        self.device = server.token("device", "e2e-handhelds")
        self.integration = server.token("integration", "e2e-oms")
        self.supervisor = server.token("supervisor", "e2e-supervisor")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.supervisor}"

    def order(self, order_no: str) -> dict[str, Any]:
        resp = self.http.get(f"{self.url}/api/v1/orders/{order_no}", timeout=10)
        assert resp.status_code == 200, f"GET order {order_no}: {resp.status_code} {resp.text[:300]}"
        return resp.json()


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with LiveServer() as server:
        yield Api(server)


@pytest.mark.parametrize("transport", ["socketio", "rest"])
def test_shift_packs_every_order_and_the_service_records_every_scan(api: Api, transport: str) -> None:
    result = run_shift(api.url, api.device, api.integration, handhelds=5, transport=transport,
                       orders=20, rate=40, duration=40, error_rate=0.1, seed=20261122,
                       station_prefix=f"E{transport[0].upper()}", device_prefix=f"E2E-{transport}",
                       factory=OrderFactory(seed=1, tag=TAGS[transport]))
    summary = result.summary()
    context = json.dumps(summary, default=str)

    assert summary["sent"] > 20 * 2, context
    assert summary["no_answer"] == 0, context
    assert summary["unsent"] == 0, context
    assert summary["unexpected"] == 0, context
    assert sorted(result.load.packed) == sorted(o.order_no for o in result.orders), context
    assert not result.load.abandoned, context

    by_order = result.scans_by_order()
    for order in result.orders:
        detail = api.order(order.order_no)
        assert detail["status"] == "packed", (order.order_no, detail["status"])
        sent = by_order[order.order_no]
        recorded = detail["scans"]
        assert [(s["scan_id"], s["code"]) for s in recorded] == [(r.scan_id, r.code) for r in sent], \
            order.order_no
        assert [s["verdict"]["code"] for s in recorded] == [r.verdict for r in sent], order.order_no
        # The opening scan is the waybill; the completing one answered progress.complete.
        assert recorded[0]["code"] == order.waybill_no
        assert sent[-1].complete and sent[-1].verdict == "accepted"


def test_same_scan_id_twice_is_answered_once(api: Api) -> None:
    from floor_sim.handheld import make_handheld
    from floor_sim.orders import prepare_orders

    prepared = prepare_orders(api.url, api.integration, 1, ["EID01"],
                              factory=OrderFactory(seed=1, tag=TAGS["idempotent"]))
    order = prepared.orders[0]
    with make_handheld("rest", api.url, api.device, station="EID01", device_id="EID-01") as hh:
        first, _ = hh.scan(order.waybill_no, scan_id="e2e-idem-0001")
        again, _ = hh.scan(order.waybill_no, scan_id="e2e-idem-0001")
    assert first["code"] == "order_opened"
    assert again["code"] == first["code"] and again["order_no"] == first["order_no"]
    assert [s["scan_id"] for s in api.order(order.order_no)["scans"]] == ["e2e-idem-0001"]


def test_cli_shift(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    status = floor_sim_main(["shift", "--url", api.url, "--token", api.device,
                             "--integration-token", api.integration, "--handhelds", "2",
                             "--transport", "rest-lean", "--orders", "4", "--rate", "30",
                             "--duration", "30", "--error-rate", "0.05", "--seed", "3",
                             "--station-prefix", "ECLI", "--device-prefix", "ECLI",
                             "--strict", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0, out
    assert out["orders"] == 4 and out["orders_packed"] == 4 and out["no_answer"] == 0
