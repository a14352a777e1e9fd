"""The pack session through REST on a real database: every verdict, the record it leaves."""
from __future__ import annotations

import datetime as dt
import time

from floor.db import utcnow
from tests.conftest import make_order

MAIN, SAMPLE, GIFTBOX, WAYBILL = "6901234567892", "6901234567908", "6901234567915", "SF1000000000001"


def test_full_pack_session_records_everything(api, waved):
    waved("TB001")
    assert api.scan(SAMPLE)["code"] == "waybill_required"          # nothing open yet
    opened = api.scan(WAYBILL)
    assert (opened["ok"], opened["code"], opened["order_no"]) == (True, "order_opened", "TB001")
    assert opened["progress"]["lines_total"] == 3 and opened["progress"]["units_left"] == 4

    early = api.scan(GIFTBOX)
    assert (early["ok"], early["code"]) == (False, "giftbox_incomplete")
    assert "精华液 30ml×1" in early["message"] and "试用装 5ml×2" in early["message"]

    first = api.scan(MAIN)
    assert (first["ok"], first["code"]) == (True, "accepted")
    assert first["progress"]["units_left"] == 3 and first["sku"] == "SERUM"
    assert api.scan("SERUM-ALT")["code"] == "over_scan"             # second barcode, same SKU
    assert api.scan(SAMPLE)["code"] == "accepted"
    time.sleep(0.55)                                                # past the debounce window
    assert api.scan(SAMPLE)["code"] == "accepted"
    last = api.scan(GIFTBOX)
    assert (last["ok"], last["code"], last["status"]) == (True, "accepted", "packed")
    assert last["progress"]["complete"] is True

    assert api.scan(WAYBILL)["code"] == "already_packed"
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert detail["status"] == "packed"
    assert [e["status"] for e in detail["timeline"]] == ["received", "wave_assigned", "packing", "packed"]
    seqs = [e["seq"] for e in detail["timeline"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert len(detail["snapshot"]["hash"]) == 64
    codes = [s["verdict"]["code"] for s in detail["scans"]]
    assert codes == ["order_opened", "giftbox_incomplete", "accepted", "over_scan", "accepted",
                     "accepted", "accepted", "already_packed"]
    scan = detail["scans"][2]
    assert scan["code"] == MAIN and scan["sku"] == "SERUM" and scan["device_id"] == "PDA-01"
    assert scan["station"] == "P01" and scan["lot"] is None and scan["serial"] is None
    packed = detail["timeline"][-1]
    assert packed["by"] == "test-packer" and packed["device_id"] == "PDA-01" and packed["station"] == "P01"


def test_wrong_item_other_order_and_unknown_code(api, waved):
    waved("TB001")
    other = make_order("TB002", waybill="SF1000000000002", lines=[
        {"sku": "CREAM", "name": "面霜 50g", "qty": 1, "role": "main", "barcodes": ["6900000000017"]}])
    assert api.post("/api/v1/orders", other).status_code == 201
    assert api.post("/api/v1/waves", {"wave_no": "W-1", "order_nos": ["TB002"]}).status_code == 200
    stranger = make_order("TB003", waybill=None, lines=[
        {"sku": "MIRROR", "name": "随身镜", "qty": 1, "role": "gift", "barcodes": ["6900000000024"]}])
    assert api.post("/api/v1/orders", stranger).status_code == 201   # known item, in no wave

    api.scan(WAYBILL)
    verdict = api.scan("6900000000017")
    assert (verdict["ok"], verdict["code"]) == (False, "other_order")
    assert "TB002" in verdict["message"] and "W-1" in verdict["message"]
    verdict = api.scan("6900000000024")
    assert (verdict["code"], verdict["sku"]) == ("wrong_item", "MIRROR")
    assert "随身镜" in verdict["message"]
    assert api.scan("NOT-A-CODE-42")["code"] == "unknown_code"
    assert api.scan("TB003")["code"] == "not_in_wave"


def test_duplicate_read_inside_the_debounce_window_counts_once(api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    assert api.scan(SAMPLE)["code"] == "accepted"
    dup = api.scan(SAMPLE)
    assert (dup["ok"], dup["code"]) == (False, "duplicate_read")
    assert dup["progress"]["lines"][1]["scanned"] == 1
    # Another device reading the same code is not a duplicate of the first device's read.
    assert api.scan(SAMPLE, device="PDA-02")["code"] == "waybill_required"


def test_the_double_read_guard_runs_on_the_scans_own_time(api, waved):
    """Scans replayed after an outage arrive back to back: two reads of the sample made 3 s
    apart are two units, and a double read made 0.1 s apart stays one read, however late the
    second arrives."""
    waved("TB001")
    api.scan(WAYBILL)
    made = utcnow() - dt.timedelta(minutes=2)
    at = lambda seconds: (made + dt.timedelta(seconds=seconds)).isoformat()  # noqa: E731
    assert api.scan(SAMPLE, at=at(0))["code"] == "accepted"
    assert api.scan(SAMPLE, at=at(0.1))["code"] == "duplicate_read"
    second = api.scan(SAMPLE, at=at(3))
    assert second["code"] == "accepted" and second["progress"]["lines"][1]["scanned"] == 2


def test_same_scan_id_returns_the_first_verdict_and_records_nothing_new(api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    first = api.scan(MAIN, scan_id="fixed-id-1")
    again = api.scan(MAIN, scan_id="fixed-id-1")
    assert again == first
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert [s["scan_id"] for s in detail["scans"]].count("fixed-id-1") == 1
    session = api.get("/api/v1/stations/P01/session?device_id=PDA-01").get_json()
    assert session["progress"]["lines"][0]["scanned"] == 1


def test_waybill_bound_at_the_station_completes_the_order(api, waved):
    waved("TB009", waybill=None, lines=[
        {"sku": "SERUM", "name": "精华液", "qty": 1, "role": "main", "barcodes": ["6901234567892"]}])
    assert api.scan("TB009")["code"] == "order_opened"
    item = api.scan(MAIN)
    assert (item["code"], item["status"], item["progress"]["complete"]) == ("accepted", "packing", False)
    assert "waybill" in item["message"].lower() or "面单" in item["message"]
    done = api.scan("YT1234567890123")
    assert (done["ok"], done["code"], done["status"]) == (True, "accepted", "packed")
    assert api.get("/api/v1/orders/TB009").get_json()["waybill_no"] == "YT1234567890123"


def test_a_second_device_cannot_hold_an_open_order(api, waved):
    waved("TB001")
    assert api.scan(WAYBILL, device="PDA-01")["code"] == "order_opened"
    held = api.scan(WAYBILL, device="PDA-02", station="P02")
    assert (held["ok"], held["code"]) == (False, "order_held")
    assert "PDA-01" in held["message"] and "P01" in held["message"]


def test_switching_orders_leaves_the_first_open_and_resumable(api, waved):
    waved("TB001")
    waved("TB002", waybill="SF1000000000002", wave="W-2")
    api.scan(WAYBILL)
    api.scan(MAIN)
    assert api.scan("SF1000000000002")["order_no"] == "TB002"
    back = api.scan(WAYBILL)
    assert back["code"] == "order_opened" and back["progress"]["lines"][0]["scanned"] == 1
    session = api.get("/api/v1/stations/P01/session?device_id=PDA-01").get_json()
    assert session["order_no"] == "TB001" and session["progress"]["units_left"] == 3


def test_supervisor_override_of_an_early_gift_box_is_recorded(api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    api.scan(MAIN)
    refused = api.scan(GIFTBOX, scan_id="gb-1")
    assert refused["code"] == "giftbox_incomplete"
    denied = api.post("/api/v1/scans/gb-1/override", {"reason_code": "stock_out_waived"}, role="packer")
    assert denied.status_code == 403
    bad = api.post("/api/v1/scans/gb-1/override", {"reason_code": "because"}, role="supervisor")
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_reason"
    done = api.post("/api/v1/scans/gb-1/override",
                    {"reason_code": "stock_out_waived", "note": "samples out of stock"}, role="supervisor")
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "packed" and done.get_json()["waived"] == [2]
    again = api.post("/api/v1/scans/gb-1/override", {"reason_code": "other"}, role="supervisor")
    assert again.status_code == 409
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert detail["overrides"][0]["reason_code"] == "stock_out_waived"
    assert detail["overrides"][0]["by"] == "test-supervisor"
    assert detail["timeline"][-1]["reason"] == "override stock_out_waived"


def test_snapshot_is_frozen_at_wave_and_later_edits_make_new_versions(api, waved):
    body = waved("TB001")
    first = api.get("/api/v1/orders/TB001").get_json()["snapshot"]
    body["lines"][1]["qty"] = 3
    assert api.post("/api/v1/orders", body).status_code == 200
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert detail["snapshot"]["version"] == 2 and detail["snapshot"]["hash"] != first["hash"]
    assert detail["snapshot_versions"][0]["hash"] == first["hash"]
    api.scan(WAYBILL)
    body["lines"][1]["qty"] = 4
    refused = api.post("/api/v1/orders", body)
    assert refused.status_code == 409 and refused.get_json()["code"] == "order_being_packed"
    assert api.get("/api/v1/orders/TB001").get_json()["snapshot"]["version"] == 2


def test_order_upsert_is_idempotent_on_channel_and_order_no(api):
    body = make_order("TB100")
    assert api.post("/api/v1/orders", body).status_code == 201
    again = api.post("/api/v1/orders", body)
    assert again.status_code == 200 and again.get_json()["created"] is False
    same_no = make_order("TB100", channel="douyin", waybill="SF1000000000999")
    assert api.post("/api/v1/orders", same_no).status_code == 201
    ambiguous = api.get("/api/v1/orders/TB100")
    assert ambiguous.status_code == 409 and ambiguous.get_json()["code"] == "ambiguous_order"
    assert api.get("/api/v1/orders/TB100?channel=douyin").get_json()["channel"] == "douyin"


def test_pack_session_survives_a_restart(api, waved, app, database_url, tmp_path, tokens):
    from floor import create_app
    from tests.conftest import Api
    waved("TB001")
    api.scan(WAYBILL)
    api.scan(MAIN)
    restarted = create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path),
                            "SECRET_KEY": "test-secret", "TESTING": True})
    api2 = Api(restarted.test_client(), tokens)
    assert api2.scan(SAMPLE)["progress"]["units_left"] == 2


def test_a_gs1_128_scan_lands_on_its_line_with_lot_and_serial_recorded(api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    verdict = api.scan("]C10106901234567892\x1d10LOT-7\x1d21SN0001\x1d17291231")
    assert (verdict["code"], verdict["sku"]) == ("accepted", "SERUM")
    assert verdict["gs1"] == {"gtin": "06901234567892", "lot": "LOT-7", "serial": "SN0001",
                              "sscc": None, "expiry": "2029-12-31", "count": None}
    scan = api.get("/api/v1/orders/TB001").get_json()["scans"][-1]
    assert (scan["sku"], scan["lot"], scan["serial"]) == ("SERUM", "LOT-7", "SN0001")
    expired = api.scan("]C1010690123456790817200101\x1d10LOT-1")
    assert (expired["ok"], expired["code"]) == (False, "expired")
