"""Stock through the API on a real database: levels in (JSON, CSV), the wave release check and
the supervisor's three choices, what packing takes and returns give back, low-stock alerts, and
the stock screen."""
from __future__ import annotations

import io
import re
from typing import Any

import pytest
from sqlalchemy import select

from floor.db import standalone_session, utcnow
from floor.eventlog import EventLogEntry
from floor.live import operations as live_ops
from floor.stock.models import StockMovement
from tests.conftest import make_order

MAIN, SAMPLE, GIFTBOX = "6901234567892", "6901234567908", "6901234567915"


def waybill(n: int) -> str:
    return f"SF{n:013d}"


def create_orders(api, count: int, start: int = 1) -> list[str]:
    numbers = []
    for n in range(start, start + count):
        order_no = f"TB{n:03d}"
        response = api.post("/api/v1/orders", make_order(order_no, waybill=waybill(n)))
        assert response.status_code == 201, response.get_json()
        numbers.append(order_no)
    return numbers


def put_stock(api, items: list[dict[str, Any]], role: str = "supervisor", warehouse: str = "JX"):
    return api.client.put("/api/v1/stock", json={"warehouse": warehouse, "items": items},
                          headers={"Authorization": f"Bearer {api.tokens[role]}"})


def stock_of(api, sku: str | None = None) -> dict[str, Any]:
    body = api.get("/api/v1/stock?warehouse=JX").get_json()
    if sku is None:
        return body
    return next(i for i in body["items"] if i["sku"] == sku)


def wave(api, order_nos: list[str], wave_no: str = "W-1", role: str = "supervisor", **extra: Any):
    return api.post("/api/v1/waves", {"wave_no": wave_no, "order_nos": order_nos, "station": "P01",
                                      **extra}, role=role)


def pack(api, n: int, device: str = "PDA-01") -> dict[str, Any]:
    api.scan(waybill(n), device=device)
    for code in (SAMPLE, MAIN, SAMPLE, GIFTBOX):    # never the same code twice in a row
        last = api.scan(code, device=device)
    assert last["status"] == "packed", last
    return last


def upload(api, data: bytes, role: str = "supervisor", warehouse: str | None = "JX",
           filename: str = "stock.csv"):
    form: dict[str, Any] = {"file": (io.BytesIO(data), filename)}
    if warehouse is not None:
        form["warehouse"] = warehouse
    return api.client.post("/api/v1/stock/upload", data=form, content_type="multipart/form-data",
                           headers={"Authorization": f"Bearer {api.tokens[role]}"})


def events_of(app, type_: str) -> list[dict[str, Any]]:
    with app.app_context(), standalone_session(app, write=False) as s:
        return [e.payload for e in s.scalars(select(EventLogEntry).where(EventLogEntry.type == type_)
                                             .order_by(EventLogEntry.seq))]


def open_alerts(api, kind: str) -> list[dict[str, Any]]:
    return [a for a in api.get("/api/v1/alerts").get_json()["alerts"] if a["kind"] == kind]


# --- levels in ---------------------------------------------------------------------------------

def test_levels_are_set_read_and_every_change_is_a_movement(api):
    response = put_stock(api, [{"sku": "GIFTBOX", "on_hand": 12, "low_threshold": 3},
                               {"sku": "SAMPLE", "on_hand": 40}])
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["created"], response.get_json()["changed"]) == (2, 0)
    box = stock_of(api, "GIFTBOX")
    assert (box["on_hand"], box["low_threshold"], box["reserved"], box["available"], box["low"]) == (12, 3, 0, 12, False)
    again = put_stock(api, [{"sku": "GIFTBOX", "on_hand": 12}, {"sku": "SAMPLE", "on_hand": 40}]).get_json()
    assert (again["created"], again["changed"], again["unchanged"]) == (0, 0, 2)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 9}], role="integration")
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 9, "low_threshold": None}])   # threshold cleared
    body = stock_of(api)
    moves = [(m["sku"], m["delta"], m["on_hand"], m["low_threshold"], m["reason"], m["by"])
             for m in reversed(body["movements"])]
    assert moves == [("GIFTBOX", 12, 12, 3, "set", "test-supervisor"),
                     ("SAMPLE", 40, 40, None, "set", "test-supervisor"),
                     ("GIFTBOX", -3, 9, 3, "set", "test-integration"),
                     ("GIFTBOX", 0, 9, None, "set", "test-supervisor")]
    assert stock_of(api, "GIFTBOX")["effective_threshold"] == 0     # the warehouse default


def test_roles_come_before_the_body(api):
    for role in ("packer", "qc", "device"):
        assert put_stock(api, "not a list", role=role).status_code == 403          # type: ignore[arg-type]
        assert api.get("/api/v1/stock?warehouse=JX", role=role).status_code == 403
        assert upload(api, b"garbage", role=role).status_code == 403
        assert api.post("/api/v1/stock/adjustments", {}, role=role).status_code == 403
    assert api.client.put("/api/v1/stock", json={}).status_code == 401
    assert api.get("/api/v1/stock", role=None).status_code == 401


@pytest.mark.parametrize("body, code", [
    ({"items": [{"sku": "A", "on_hand": 1}]}, "missing_field"),
    ({"warehouse": "JX"}, "invalid_field"),
    ({"warehouse": "JX", "items": []}, "invalid_field"),
    ({"warehouse": "JX", "items": [{"sku": "A", "on_hand": -1}]}, "invalid_items"),
    ({"warehouse": "JX", "items": [{"sku": "A", "on_hand": 1}, {"sku": "A", "on_hand": 2}]}, "invalid_items"),
    ({"warehouse": "J\x00X", "items": [{"sku": "A", "on_hand": 1}]}, "invalid_field"),
    ({"warehouse": ["JX"], "items": [{"sku": "A", "on_hand": 1}]}, "invalid_field"),
    ({"warehouse": "JX", "items": [{"sku": "A" * 65, "on_hand": 1}]}, "invalid_items"),
])
def test_bad_levels_are_refused_whole(api, body, code):
    response = api.client.put("/api/v1/stock", json=body,
                              headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] == code
    assert stock_of(api)["items"] == []


def test_bad_item_list_names_each_bad_item(api):
    response = put_stock(api, [{"sku": "A", "on_hand": 1}, {"sku": "B", "on_hand": "x"}, {"sku": "C"}])
    body = response.get_json()
    assert response.status_code == 400 and body["code"] == "invalid_items"
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(1, "invalid_on_hand"), (2, "missing_on_hand")]


def test_not_json_and_bad_query_are_4xx(api):
    headers = {"Authorization": f"Bearer {api.tokens['supervisor']}"}
    assert api.client.put("/api/v1/stock", data=b"{", headers=headers).status_code == 400
    assert api.client.put("/api/v1/stock", data=b"\xff\xfe", headers=headers).status_code == 400
    assert api.get("/api/v1/stock?warehouse=" + "W" * 40).status_code == 400
    assert api.get("/api/v1/stock?warehouse=JX&sku=%01").status_code == 400
    empty = api.get("/api/v1/stock?warehouse=NOWHERE")
    assert empty.status_code == 200 and empty.get_json()["items"] == []


def test_csv_upload_applies_every_line(api):
    data = "\ufeffsku,on_hand,low_threshold,name\r\nGIFTBOX,120,30,限定礼盒\r\nSAMPLE,800,\r\n".encode()
    response = upload(api, data)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["created"], body["ignored_columns"]) == (2, ["name"])
    assert stock_of(api, "GIFTBOX")["on_hand"] == 120 and stock_of(api, "GIFTBOX")["low_threshold"] == 30
    moves = stock_of(api)["movements"]
    assert {(m["sku"], m["reason"], m["note"]) for m in moves} == {
        ("GIFTBOX", "upload", "CSV stock.csv"), ("SAMPLE", "upload", "CSV stock.csv")}
    # An empty threshold cell keeps the one set before.
    upload(api, b"sku,on_hand,low_threshold\nGIFTBOX,100,\n")
    assert (stock_of(api, "GIFTBOX")["on_hand"], stock_of(api, "GIFTBOX")["low_threshold"]) == (100, 30)


def test_a_bad_csv_applies_nothing_and_names_each_line(api):
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 5}])
    response = upload(api, b"sku,on_hand\nGIFTBOX,50\nSAMPLE,lots\nMIRROR,-2\nGIFTBOX,3\n")
    body = response.get_json()
    assert response.status_code == 400 and body["code"] == "invalid_csv"
    assert [(e["line"], e["code"]) for e in body["errors"]] == [
        (3, "invalid_on_hand"), (4, "invalid_on_hand"), (5, "duplicate_sku")]
    assert body["error_count"] == 3
    assert [i["sku"] for i in stock_of(api)["items"]] == ["GIFTBOX"]
    assert stock_of(api, "GIFTBOX")["on_hand"] == 5


@pytest.mark.parametrize("data, warehouse, status, code", [
    (b"sku,on_hand\n" + b"A,1\n" * 600_000, "JX", 413, "file_too_large"),
    (b"sku,on_hand\nA,1\n", None, 400, "missing_field"),
    (b"", "JX", 400, "empty_file"),
    (b"\xff\xfe\x00", "JX", 400, "invalid_encoding"),
    (b"ean,qty\n123,1\n", "JX", 400, "invalid_csv"),
])
def test_csv_upload_refusals(api, data, warehouse, status, code):
    response = upload(api, data, warehouse=warehouse)
    assert response.status_code == status, response.get_data(as_text=True)[:200]
    assert response.get_json()["code"] == code


def test_csv_upload_without_a_file(api):
    response = api.client.post("/api/v1/stock/upload", data={"warehouse": "JX"},
                               content_type="multipart/form-data",
                               headers={"Authorization": f"Bearer {api.tokens['integration']}"})
    assert response.status_code == 400 and response.get_json()["code"] == "missing_field"


def test_adjustments_need_a_note_and_a_tracked_sku(api):
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 5}])
    assert api.post("/api/v1/stock/adjustments", {"warehouse": "JX", "sku": "GIFTBOX", "delta": -2},
                    role="supervisor").get_json()["code"] == "missing_field"
    assert api.post("/api/v1/stock/adjustments", {"warehouse": "JX", "sku": "GIFTBOX", "delta": 0,
                                                  "note": "x"}, role="supervisor").status_code == 400
    missing = api.post("/api/v1/stock/adjustments", {"warehouse": "JX", "sku": "NOPE", "delta": 1,
                                                     "note": "x"}, role="supervisor")
    assert missing.status_code == 404 and missing.get_json()["code"] == "unknown_stock_item"
    done = api.post("/api/v1/stock/adjustments", {"warehouse": "JX", "sku": "GIFTBOX", "delta": -2,
                                                  "note": "two crushed boxes", "device_id": "PDA-9"},
                    role="supervisor")
    assert done.status_code == 200 and done.get_json()["on_hand"] == 3
    move = stock_of(api)["movements"][0]
    assert (move["reason"], move["delta"], move["note"], move["device_id"]) == ("adjust", -2, "two crushed boxes", "PDA-9")


def test_movement_rows_are_append_only(app, api):
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 5}])
    with app.app_context(), pytest.raises(ValueError), standalone_session(app) as s:
        s.scalars(select(StockMovement)).first().delta = 50
        s.flush()


# --- the wave release check ------------------------------------------------------------------

def test_a_wave_short_of_gift_boxes_is_stopped_before_any_order_is_touched(api):
    orders = create_orders(api, 3)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 2}])
    response = wave(api, orders)
    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == "stock_shortfall" and body["message"]
    assert body["shortfall"] == [{"sku": "GIFTBOX", "needed": 3, "on_hand": 2, "reserved": 0,
                                  "available": 2, "short_by": 1, "order_nos": ["TB003"]}]
    assert body["short_orders"] == [{"order_no": "TB003", "missing": [{"sku": "GIFTBOX", "qty": 1, "left": 0}]}]
    for order_no in orders:
        detail = api.get(f"/api/v1/orders/{order_no}").get_json()
        assert (detail["status"], detail["snapshot"], detail["wave_no"]) == ("received", None, None)
        assert [t["status"] for t in detail["timeline"]] == ["received"]
    assert api.get("/api/v1/waves/W-1").status_code == 404
    # Nothing can be opened at a station: the order has no frozen kit.
    refused = api.scan(waybill(1))
    assert (refused["ok"], refused["code"]) == (False, "not_in_wave")
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "received"
    assert api.get("/api/v1/stations/P01/session?device_id=PDA-01").get_json()["order_no"] is None


def test_a_wave_with_enough_stock_or_untracked_skus_goes(api):
    orders = create_orders(api, 2)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 2}])
    response = wave(api, orders)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["stock"]["shortfall"] == [] and body["stock"]["decision"] is None
    assert body["left_out"] == [] and body["held"] == []
    assert stock_of(api, "GIFTBOX")["reserved"] == 2 and stock_of(api, "GIFTBOX")["available"] == 0
    # Sending the same wave again checks nothing anew (its orders are reserved already).
    assert wave(api, orders).status_code == 200


def test_release_anyway_needs_a_reason_and_is_recorded(app, api):
    orders = create_orders(api, 3)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 2}])
    refused = wave(api, orders, release_anyway=True)
    assert (refused.status_code, refused.get_json()["code"]) == (400, "reason_required")
    both = wave(api, orders, release_anyway=True, split=True, reason="x")
    assert (both.status_code, both.get_json()["code"]) == (400, "conflicting_options")
    response = wave(api, orders, release_anyway=True, reason="boxes arrive at 14:00")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [o["order_no"] for o in body["orders"]] == orders
    assert body["stock"]["decision"] == "release_anyway" and body["stock"]["reason"] == "boxes arrive at 14:00"
    assert body["stock"]["shortfall"][0]["order_nos"] == ["TB003"]
    [decision] = api.get("/api/v1/waves/W-1").get_json()["stock_decisions"]
    assert (decision["decision"], decision["reason"], decision["by"], decision["role"]) == (
        "release_anyway", "boxes arrive at 14:00", "test-supervisor", "supervisor")
    assert decision["shortfall"] == body["stock"]["shortfall"]
    [event] = events_of(app, "wave_stock_decision")
    assert event["seq"] == decision["seq"] and event["by"] == "test-supervisor"
    assert event["short_order_nos"] == ["TB003"] and event["reason"] == "boxes arrive at 14:00"


def test_hold_short_puts_the_short_orders_on_hold_with_the_reason(api):
    orders = create_orders(api, 3)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 2}])
    assert wave(api, orders, hold_short=True).get_json()["code"] == "reason_required"
    response = wave(api, orders, hold_short=True, reason="gift boxes due tomorrow")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [o["order_no"] for o in body["orders"]] == ["TB001", "TB002"]
    assert body["held"] == [{"order_no": "TB003", "channel": "taobao", "status": "on_hold"}]
    held = api.get("/api/v1/orders/TB003").get_json()
    assert held["status"] == "on_hold" and held["snapshot"] is None
    assert held["timeline"][-1]["reason"] == "short of stock for wave W-1: gift boxes due tomorrow"
    assert held["timeline"][-1]["by"] == "test-supervisor"
    assert api.get("/api/v1/waves/W-1").get_json()["stock_decisions"][0]["decision"] == "hold_short"
    # Released later, once boxes came in, the held order waves like any other.
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 3}])
    assert wave(api, ["TB003"], wave_no="W-2").status_code == 200
    assert api.get("/api/v1/orders/TB003").get_json()["status"] == "wave_assigned"


def test_split_leaves_the_short_orders_out(api):
    orders = create_orders(api, 4)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 2}])
    response = wave(api, orders, split=True)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [o["order_no"] for o in body["orders"]] == ["TB001", "TB002"]
    assert body["left_out"] == [{"order_no": "TB003", "channel": "taobao"},
                                {"order_no": "TB004", "channel": "taobao"}]
    for order_no in ("TB003", "TB004"):
        detail = api.get(f"/api/v1/orders/{order_no}").get_json()
        assert (detail["status"], detail["snapshot"]) == ("received", None)
    assert [o["order_no"] for o in api.get("/api/v1/waves/W-1").get_json()["orders"]] == ["TB001", "TB002"]
    # Everything short: nothing to release, nothing changes.
    nothing = wave(api, ["TB003", "TB004"], wave_no="W-2", split=True)
    assert (nothing.status_code, nothing.get_json()["code"]) == (409, "nothing_to_release")
    assert api.get("/api/v1/waves/W-2").status_code == 404


def test_earlier_released_waves_reserve_their_stock_until_packed(api):
    orders = create_orders(api, 4)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 3}, {"sku": "SAMPLE", "on_hand": 100}])
    assert wave(api, orders[:2]).status_code == 200
    refused = wave(api, orders[2:], wave_no="W-2").get_json()
    assert refused["shortfall"] == [{"sku": "GIFTBOX", "needed": 2, "on_hand": 3, "reserved": 2,
                                     "available": 1, "short_by": 1, "order_nos": ["TB004"]}]
    pack(api, 1)             # TB001 took its box: 2 on hand, 1 reserved (TB002)
    again = wave(api, orders[2:], wave_no="W-2").get_json()
    assert again["shortfall"][0] | {"order_nos": None} == {
        "sku": "GIFTBOX", "needed": 2, "on_hand": 2, "reserved": 1, "available": 1, "short_by": 1,
        "order_nos": None}
    # A cancelled order of a released wave gives its claim back.
    cancel = api.post("/api/v1/orders/TB002/events", {"event": "cancel", "reason": "customer"},
                      role="supervisor")
    assert cancel.status_code == 200
    assert wave(api, orders[2:], wave_no="W-2").status_code == 200


# --- what packing takes, what returns give back ----------------------------------------------

def test_pack_completion_takes_the_packed_units(app, api):
    create_orders(api, 1)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 5}, {"sku": "SAMPLE", "on_hand": 10}])
    wave(api, ["TB001"])
    api.scan(waybill(1))
    api.scan(SAMPLE)
    api.scan(MAIN)
    assert stock_of(api, "SAMPLE")["on_hand"] == 10            # nothing moves before completion
    api.scan(SAMPLE)
    done = api.scan(GIFTBOX)
    assert done["status"] == "packed"
    assert (stock_of(api, "GIFTBOX")["on_hand"], stock_of(api, "SAMPLE")["on_hand"]) == (4, 8)
    assert stock_of(api, "GIFTBOX")["reserved"] == 0
    moves = {m["sku"]: m for m in stock_of(api)["movements"] if m["reason"] == "pack"}
    assert set(moves) == {"GIFTBOX", "SAMPLE"}                 # SERUM is not tracked
    assert (moves["SAMPLE"]["delta"], moves["SAMPLE"]["order_no"], moves["SAMPLE"]["by"]) == (-2, "TB001", "test-packer")
    assert moves["SAMPLE"]["device_id"] == "PDA-01"
    [event] = [e for e in events_of(app, "stock") if e["reason"] == "pack"]
    assert event["order_no"] == "TB001" and {i["sku"] for i in event["items"]} == {"GIFTBOX", "SAMPLE"}


def test_units_waived_by_a_supervisor_were_not_packed(api):
    create_orders(api, 1)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 5}, {"sku": "SAMPLE", "on_hand": 10}])
    wave(api, ["TB001"])
    api.scan(waybill(1))
    api.scan(MAIN)
    api.scan(SAMPLE)                                           # one of two samples
    assert api.scan(GIFTBOX, scan_id="gb-1")["code"] == "giftbox_incomplete"
    done = api.post("/api/v1/scans/gb-1/override", {"reason_code": "stock_out_waived"}, role="supervisor")
    assert done.get_json()["status"] == "packed"
    assert (stock_of(api, "GIFTBOX")["on_hand"], stock_of(api, "SAMPLE")["on_hand"]) == (4, 9)


def test_closing_a_return_restocks_resellable_units_only(app, api):
    create_orders(api, 1)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 5}, {"sku": "SAMPLE", "on_hand": 10},
                    {"sku": "SERUM", "on_hand": 7}])
    wave(api, ["TB001"])
    pack(api, 1)
    assert [stock_of(api, sku)["on_hand"] for sku in ("GIFTBOX", "SAMPLE", "SERUM")] == [4, 8, 6]
    rma = api.post("/api/v1/returns", {"order_no": "TB001", "reason": "unwanted"}, role="qc").get_json()["rma_no"]
    for code, condition in ((GIFTBOX, "resellable"), (SAMPLE, "opened"), (SAMPLE, "resellable"),
                            (MAIN, "damaged")):
        response = api.post(f"/api/v1/returns/{rma}/scans", {"scan_id": f"r-{code}-{condition}", "code": code,
                                                             "condition": condition}, role="qc")
        assert response.status_code == 200, response.get_json()
    assert stock_of(api, "GIFTBOX")["on_hand"] == 4             # nothing moves before closing
    assert api.post(f"/api/v1/returns/{rma}/close", role="qc").status_code == 200
    assert [stock_of(api, sku)["on_hand"] for sku in ("GIFTBOX", "SAMPLE", "SERUM")] == [5, 9, 6]
    moves = [m for m in stock_of(api)["movements"] if m["reason"] == "return_restock"]
    assert sorted((m["sku"], m["delta"], m["rma_no"], m["order_no"], m["by"]) for m in moves) == [
        ("GIFTBOX", 1, rma, "TB001", "test-qc"), ("SAMPLE", 1, rma, "TB001", "test-qc")]


# --- low-stock alerts --------------------------------------------------------------------------

def test_low_stock_alert_fires_on_the_movement_and_clears_when_restocked(app, api):
    create_orders(api, 2)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 2, "low_threshold": 1}])
    assert open_alerts(api, "low_stock") == []
    wave(api, ["TB001", "TB002"])
    pack(api, 1)
    [alert] = open_alerts(api, "low_stock")
    assert (alert["key"], alert["level"], alert["warehouse"]) == ("low_stock:JX:GIFTBOX", "yellow", "JX")
    assert alert["params"] == {"warehouse": "JX", "sku": "GIFTBOX", "on_hand": 1, "threshold": 1}
    assert stock_of(api, "GIFTBOX")["low"] is True
    acked = api.post(f"/api/v1/alerts/{alert['id']}/ack", {"note": "boxes ordered"}, role="supervisor")
    assert acked.status_code == 200 and acked.get_json()["acked_by"] == "test-supervisor"
    # The periodic evaluation agrees: the alert stays, once.
    with app.app_context(), standalone_session(app) as s:
        live_ops.evaluate_alerts(s, utcnow())
    assert len(open_alerts(api, "low_stock")) == 1
    # Physical reality beats the record: the next pack takes the record below zero, in red.
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 0}])
    pack(api, 2, device="PDA-02")
    assert stock_of(api, "GIFTBOX")["on_hand"] == -1
    [alert] = open_alerts(api, "low_stock")
    assert alert["level"] == "red" and alert["params"]["on_hand"] == -1
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 50}])
    assert open_alerts(api, "low_stock") == []
    history = [a for a in api.get("/api/v1/alerts?all=1").get_json()["alerts"] if a["kind"] == "low_stock"]
    assert history[0]["cleared_at"] is not None
    types = [e["kind"] for e in events_of(app, "alert_cleared")]
    assert types == ["low_stock"]


def test_the_warehouse_default_threshold_applies_to_rows_without_one(app, api):
    response = api.client.put("/api/v1/warehouses/JX/settings", json={"stock_low_threshold": 10},
                              headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    assert response.status_code == 200, response.get_json()
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 8}, {"sku": "SAMPLE", "on_hand": 8, "low_threshold": 2}])
    assert [a["key"] for a in open_alerts(api, "low_stock")] == ["low_stock:JX:GIFTBOX"]


# --- the stock screen ----------------------------------------------------------------------

def login(app, username: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": username, "password": "correct horse", "csrf_token": token})
    return client


def test_the_stock_screen_lists_levels_and_takes_a_csv(app, api, users):
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 3, "low_threshold": 5}, {"sku": "SAMPLE", "on_hand": 50}])
    client = login(app, users["supervisor"])
    page = client.get("/stock?warehouse=JX")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'class="stock-row level-yellow" data-sku="GIFTBOX"', html)
    assert 'data-sku="SAMPLE" data-level="ok"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    refused = client.post("/stock/upload?warehouse=JX", data={"warehouse": "JX", "file": (io.BytesIO(b"sku,on_hand\nGIFTBOX,9\n"), "s.csv")},
                          content_type="multipart/form-data")
    assert refused.status_code == 400                           # no CSRF token
    bad = client.post("/stock/upload?warehouse=JX", content_type="multipart/form-data", data={
        "csrf_token": token, "warehouse": "JX", "file": (io.BytesIO(b"sku,on_hand\nGIFTBOX,9\nSAMPLE,x\n"), "s.csv")})
    assert bad.status_code == 400 and 'data-line="3"' in bad.get_data(as_text=True)
    good = client.post("/stock/upload?warehouse=JX", content_type="multipart/form-data", data={
        "csrf_token": token, "warehouse": "JX", "file": (io.BytesIO(b"sku,on_hand\nGIFTBOX,9\n"), "s.csv")})
    assert good.status_code == 302 and "applied=1" in good.headers["Location"]
    assert stock_of(api, "GIFTBOX")["on_hand"] == 9
    assert stock_of(api)["movements"][0]["by"] == users["supervisor"]
    assert login(app, users["packer"]).get("/stock").status_code == 403


def test_two_waves_released_at_once_never_overcommit(app, api):
    """Each would pass alone; together they would take four boxes of two. Stock rows are locked
    before the check, so the second sees the first's reservation."""
    import threading

    from tests.conftest import Api

    create_orders(api, 4)
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 2}])
    bodies = [{"wave_no": "W-A", "order_nos": ["TB001", "TB002"], "station": "P01"},
              {"wave_no": "W-B", "order_nos": ["TB003", "TB004"], "station": "P02"}]
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def release(i: int) -> None:
        client = Api(app.test_client(), api.tokens)
        barrier.wait()
        results[i] = client.post("/api/v1/waves", bodies[i], role="supervisor")

    threads = [threading.Thread(target=release, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 409], [r.get_json() for r in results]
    refused = next(r.get_json() for r in results if r.status_code == 409)
    assert refused["shortfall"][0]["reserved"] == 2 and refused["shortfall"][0]["available"] == 0
    assert stock_of(api, "GIFTBOX")["reserved"] == 2


def test_an_oversized_body_is_a_413_with_a_code(api):
    items = [{"sku": f"SKU-{n:05d}-" + "x" * 50, "on_hand": n} for n in range(5000)]
    fits = put_stock(api, items)                # 0.45 MB: over the app's default, under 1 MiB
    assert fits.status_code == 200 and fits.get_json()["created"] == 5000
    padded = [{**item, "note": "y" * 200} for item in items]
    response = put_stock(api, padded)
    assert response.status_code == 413 and response.get_json()["code"] == "payload_too_large"
