"""A double read never hides a refusal: a `duplicate_read` says which verdict it repeats, and the
repeat of a refused read says the refusal again ("not counted"), over REST and Socket.IO."""
from __future__ import annotations

import datetime as dt
import uuid

from floor.db import utcnow
from floor.extensions import socketio
from tests.conftest import make_order

MAIN, SAMPLE, GIFTBOX, WAYBILL = "6901234567892", "6901234567908", "6901234567915", "SF1000000000001"
MIRROR, CREAM = "6900000000024", "6900000000017"


def _at(base: dt.datetime, seconds: float) -> str:
    return (base + dt.timedelta(seconds=seconds)).isoformat()


def _strangers(api) -> None:
    """CREAM is in another order of the wave (other_order); MIRROR is in no wave (wrong_item)."""
    other = make_order("TB002", waybill="SF1000000000002", lines=[
        {"sku": "CREAM", "name": "面霜 50g", "qty": 1, "role": "main", "barcodes": [CREAM]}])
    assert api.post("/api/v1/orders", other).status_code == 201
    assert api.post("/api/v1/waves", {"wave_no": "W-1", "order_nos": ["TB002"]}).status_code == 200
    stranger = make_order("TB003", waybill=None, lines=[
        {"sku": "MIRROR", "name": "随身镜", "qty": 1, "role": "gift", "barcodes": [MIRROR]}])
    assert api.post("/api/v1/orders", stranger).status_code == 201


def test_a_double_read_of_a_refused_item_repeats_the_refusal(api, waved):
    waved("TB001")
    _strangers(api)
    api.scan(WAYBILL)
    made = utcnow() - dt.timedelta(seconds=30)
    cases = [(MIRROR, "wrong_item", "随身镜"), (CREAM, "other_order", "TB002"),
             (GIFTBOX, "giftbox_incomplete", "试用装 5ml×2")]
    for n, (code, refusal, named) in enumerate(cases):
        first = api.scan(code, at=_at(made, n * 5))
        assert (first["ok"], first["code"]) == (False, refusal)
        dup = api.scan(code, at=_at(made, n * 5 + 0.1))
        assert (dup["ok"], dup["code"]) == (False, "duplicate_read"), dup
        assert dup["repeats"] == {"code": refusal, "ok": False}
        # The refusal said again, in full, and nothing counted.
        assert "未计数" in dup["message"] and "只计一次" not in dup["message"]
        assert named in dup["message"] and first["message"] in dup["message"]
        assert dup["progress"] == first["progress"]
        # A third read inside the window still repeats the first read's refusal.
        third = api.scan(code, at=_at(made, n * 5 + 0.2))
        assert third["repeats"] == {"code": refusal, "ok": False} and first["message"] in third["message"]

    assert api.scan(MAIN, at=_at(made, 20))["code"] == "accepted"
    over = api.scan(MAIN, at=_at(made, 25))
    assert over["code"] == "over_scan"
    dup = api.scan(MAIN, at=_at(made, 25.1))
    assert dup["repeats"] == {"code": "over_scan", "ok": False} and over["message"] in dup["message"]

    # The record keeps the repeat's verdict as answered.
    scans = api.get("/api/v1/orders/TB001").get_json()["scans"]
    repeats = [s for s in scans if s["verdict"]["code"] == "duplicate_read"]
    assert len(repeats) == 7 and all("未计数" in s["verdict"]["message"] for s in repeats)


def test_a_double_read_of_an_accepted_item_counts_once(api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    made = utcnow() - dt.timedelta(seconds=30)
    assert api.scan(SAMPLE, at=_at(made, 0))["code"] == "accepted"
    dup = api.scan(SAMPLE, at=_at(made, 0.1))
    assert (dup["ok"], dup["code"], dup["repeats"]) == (False, "duplicate_read",
                                                        {"code": "accepted", "ok": True})
    assert "只计一次" in dup["message"] and dup["progress"]["lines"][1]["scanned"] == 1
    # In English too, for a screen in English.
    english = api.client.post("/api/v1/scans", json={
        "scan_id": uuid.uuid4().hex, "station": "P01", "device_id": "PDA-01", "code": MIRROR,
        "at": _at(made, 5)}, headers={"Authorization": f"Bearer {api.tokens['packer']}",
                                      "Accept-Language": "en"}).get_json()
    repeat = api.client.post("/api/v1/scans", json={
        "scan_id": uuid.uuid4().hex, "station": "P01", "device_id": "PDA-01", "code": MIRROR,
        "at": _at(made, 5.1)}, headers={"Authorization": f"Bearer {api.tokens['packer']}",
                                        "Accept-Language": "en"}).get_json()
    assert english["code"] == "unknown_code" and repeat["repeats"] == {"code": "unknown_code", "ok": False}
    assert repeat["message"].startswith("Read twice, not counted") and english["message"] in repeat["message"]


def test_socketio_ack_of_a_double_read_carries_the_refusal(app, tokens, waved, api):
    waved("TB001")
    _strangers(api)
    client = socketio.test_client(app, namespace="/floor", auth={"token": tokens["packer"]})
    made = utcnow() - dt.timedelta(seconds=30)

    def scan(code: str, seconds: float) -> dict:
        return client.emit("scan", {"scan_id": uuid.uuid4().hex, "station": "P01", "device_id": "PDA-S9",
                                    "code": code, "at": _at(made, seconds)},
                           namespace="/floor", callback=True)

    assert scan(WAYBILL, 0)["code"] == "order_opened"
    first = scan(MIRROR, 2)
    assert first["code"] == "wrong_item"
    dup = scan(MIRROR, 2.2)
    assert (dup["ok"], dup["code"], dup["repeats"]) == (False, "duplicate_read",
                                                        {"code": "wrong_item", "ok": False})
    assert first["message"] in dup["message"] and "未计数" in dup["message"]
