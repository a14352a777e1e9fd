"""The device simulator against a live `floor serve`: short shifts over Socket.IO and REST,
and a shift of handhelds and serial scanners (pty pairs the service reads through pyserial)
with every kind of fault injected.

Every order must get packed, every scan answered as the packer expected, and the service's
own record of each order (GET /api/v1/orders/<no>) must hold exactly the scans the
simulator sent, in order, with the verdicts the simulator received. With faults injected, no
mistake may escape: no order packed with a kit line short, over or wrong.

The server keeps its default debounce window (500 ms): the simulated packers wait 0.6 s
before scanning the same code again (a line's second unit), and their deliberate double
reads must come back as duplicate_read.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import requests

from floor_sim.audit import audit_shift, kit_problems
from floor_sim.cli import main as floor_sim_main
from floor_sim.faults import FAULTS
from floor_sim.load import run_shift
from floor_sim.orders import KitProfile, OrderFactory
from floor_sim.server import LiveServer

pytestmark = pytest.mark.e2e
# Distinct catalogue/order tags per test: all tests share one database.
TAGS = {"socketio": "10001", "rest": "10002", "idempotent": "10003", "faults": "10004",
        "escape": "10005"}


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


def test_shift_with_serial_scanners_and_every_fault_lets_no_mistake_escape(api: Api) -> None:
    """3 handhelds over Socket.IO and 2 serial scanners on ptys pack 25 orders at a quick human
    pace while every fault kind is injected at 30 % of item scans."""
    result = run_shift(api.url, api.device, api.integration, handhelds=3, serial=2,
                       transport="socketio", orders=25, cadence=0.3, duration=60,
                       faults=FAULTS, fault_rate=0.3, seed=20261123, station_prefix="EF",
                       device_prefix="EF-PDA", serial_prefix="EF-SCN",
                       factory=OrderFactory(seed=2, tag=TAGS["faults"]))
    s = result.summary()
    context = json.dumps({k: v for k, v in s.items() if k != "errors"}, default=str)[:6000]

    # Nothing escaped, nothing lost or doubled, nothing unexpected.
    assert s["escaped_mistakes"] == 0 and not s["escaped"], context
    assert s["unexpected"] == 0, context
    assert s["lost_scans"] == 0 and s["duplicated_scans"] == 0, context
    assert s["verdict_mismatches"] == 0 and s["unaccounted_scans"] == 0, context
    assert s["no_answer"] == 0 and s["unsent"] == 0, context
    assert result.failures() == [], context

    # Every order packed, as the service records it and as the packers saw it.
    assert s["orders"] == 25 and s["orders_packed_by_service"] == 25, context
    assert s["not_packed"] == {} and s["orders_not_packed"] == 0, context
    assert sorted(result.load.packed) == sorted(o.order_no for o in result.orders), context

    # Every fault kind injected and detected (a handheld double read that went out too late
    # for the debounce window is void: neither detected nor a miss).
    faults = s["faults"]
    assert set(faults) == set(FAULTS), context
    for name, counts in faults.items():
        assert counts["injected"] >= 1, (name, context)
        assert counts["answered"] == counts["injected"], (name, context)
        assert counts["detected"] + counts.get("void", 0) == counts["injected"], (name, context)
        assert counts["detected"] >= 1, (name, context)
    assert s["faults_missed"] == [], context
    assert s["device_stats"]["wifi_drops"] == faults["wifi_drop"]["injected"], context

    # Both scanners were unplugged, seen offline by the service, and came back online.
    assert [sc["device_id"] for sc in s["serial"]] == ["EF-SCN-01", "EF-SCN-02"], context
    assert [sc["station"] for sc in s["serial"]] == ["EF04", "EF05"], context
    for sc in s["serial"]:
        assert sc["unplugs"] >= 1, context
        assert sc["offline_seen"] == sc["online_seen"] == sc["unplugs"], context
        assert sc["reads_lost_unplugged"] == sc["unplugs"], context
        # Every other unplug, the first one included, cuts a line in half.
        assert sc["partial_lines"] + sc["partial_lines_lost"] == (sc["unplugs"] + 1) // 2, context
        assert sc["stray_verdicts"] == 0 and sc["raw_mismatches"] == 0, context
        assert sc["out_of_order_events"] == 0, context
    assert sum(sc["unplugs"] for sc in s["serial"]) == faults["unplug"]["injected"], context
    devices = {d["device_id"]: d for d in api.http.get(f"{api.url}/api/v1/devices",
                                                       timeout=10).json()["devices"]}
    for sc in s["serial"]:
        assert devices[sc["device_id"]]["kind"] == "serial"
        assert devices[sc["device_id"]]["enabled"] is False      # let go after the shift

    # The numbers add up.
    records = result.load.records
    verdicts = s["verdicts"]
    assert s["sent"] == len(records) == s["answered"] + s["no_answer"], context
    assert sum(verdicts.values()) == s["answered"], context
    by_transport = s["latency_by_transport_ms"]
    assert set(by_transport) == {"handheld", "serial"}, context
    assert sum(st["n"] for st in by_transport.values()) == s["answered"], context
    assert by_transport["serial"]["n"] == sum(1 for r in records if r.transport == "serial")
    for st in by_transport.values():
        assert st["p50"] <= st["p90"] <= st["p99"] <= st["max"], context
    assert s["orders_packed_by_service"] + s["orders_not_packed_by_service"] == s["orders"]
    # Each order opened once; each unit of each kit accepted exactly once.
    assert verdicts["order_opened"] == s["orders"], context
    assert verdicts["accepted"] == sum(o.units() for o in result.orders), context
    # Refusals come from the faults that cause them, one each.
    wrong = sum(1 for r in records if r.fault == "wrong_item")
    assert verdicts.get("wrong_item", 0) + verdicts.get("unknown_code", 0) == wrong, context
    assert verdicts["other_order"] == faults["other_order"]["injected"], context
    gates = sum(1 for r in records if r.kind == "missing_line" and r.verdict == "giftbox_incomplete")
    assert verdicts["giftbox_incomplete"] == faults["early_giftbox"]["injected"] + gates, context
    assert verdicts["duplicate_read"] == faults["double_read"]["detected"], context
    partials = sum(sc["partial_lines"] for sc in s["serial"])
    assert verdicts["unreadable"] == faults["garbage"]["injected"] + partials, context
    assert sum(1 for r in records if r.kind == "partial_line") == partials, context

    # The service's record of each order: the simulator's scans, each once.
    by_order = result.scans_by_order()
    for order in result.orders:
        detail = api.order(order.order_no)
        assert detail["status"] == "packed", (order.order_no, detail["status"])
        recorded = [sc["scan_id"] for sc in detail["scans"]]
        assert len(recorded) == len(set(recorded)), order.order_no
        sent_here = {r.scan_id for r in by_order[order.order_no] if r.verdict_order == order.order_no}
        assert sent_here <= set(recorded), order.order_no


def test_the_audit_sees_an_order_packed_short(api: Api) -> None:
    """The escaped-mistake check is not blind: an order a supervisor lets through without its
    sample (an override of the refused gift box) is packed with a line short."""
    assert kit_problems({"A": 2, "B": 1}, {"A": 2, "B": 1}) == []
    assert kit_problems({"A": 2, "B": 1}, {"A": 1, "B": 2, "C": 1}) == [
        "A short: 1 of 2", "B over: 2 of 1", "C not in the kit: 1 accepted"]

    from floor_sim.handheld import make_handheld
    from floor_sim.orders import prepare_orders

    profile = KitProfile(main_lines=(1, 1), main_qty=(1, 1), sample_lines=(1, 1),
                         sample_qty=(1, 1), gift_probability=0.0, giftbox_probability=1.0)
    prepared = prepare_orders(api.url, api.integration, 1, ["EESC1"],
                              factory=OrderFactory(seed=1, tag=TAGS["escape"], profile=profile))
    order = prepared.orders[0]
    main, sample, box = (next(l.product for l in order.lines if l.product.role == role)
                         for role in ("main", "sample", "giftbox"))
    with make_handheld("rest", api.url, api.device, station="EESC1", device_id="EESC-01") as hh:
        assert hh.scan(order.waybill_no)[0]["code"] == "order_opened"
        assert hh.scan(main.barcode)[0]["code"] == "accepted"
        refused, _ = hh.scan(box.barcode)
    assert refused["code"] == "giftbox_incomplete"
    resp = api.http.post(f"{api.url}/api/v1/scans/{refused['scan_id']}/override",
                         json={"reason_code": "stock_out_waived"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert api.order(order.order_no)["status"] == "packed"

    audit = audit_shift(api.url, api.integration, [order], [])
    assert audit.packed == [order.order_no]
    assert audit.escaped == {order.order_no: sorted([f"{sample.sku} short: 0 of 1",
                                                     f"{box.sku} short: 0 of 1"])}
    assert audit.summary()["escaped_mistakes"] == 1
