"""The gift box waits for every main item, sample and gift (the brands' rule), through REST on a
real database; the warehouse setting `giftbox_requires: "main_samples"` lets gifts follow the
box, and setting it is a supervisor's audited act in its own warehouse."""
from __future__ import annotations

from floor.auth.operations import create_token
from floor.db import standalone_session
from tests.conftest import make_order

MAIN, SAMPLE, GIFT, GIFTBOX, WAYBILL = ("6901234567892", "6901234567908", "6900000000024",
                                        "6901234567915", "SF1000000000001")
KIT = [
    {"sku": "SERUM", "name": "精华液 30ml", "qty": 1, "role": "main", "barcodes": [MAIN]},
    {"sku": "SAMPLE", "name": "试用装 5ml", "qty": 1, "role": "sample", "barcodes": [SAMPLE]},
    {"sku": "MIRROR", "name": "随身镜", "qty": 1, "role": "gift", "barcodes": [GIFT]},
    {"sku": "GIFTBOX", "name": "限定礼盒", "qty": 1, "role": "giftbox", "barcodes": [GIFTBOX]},
]


def _settings(api, body, role="supervisor", warehouse="JX", token=None):
    headers = {"Authorization": f"Bearer {token or api.tokens[role]}"}
    return api.client.put(f"/api/v1/warehouses/{warehouse}/settings", json=body, headers=headers)


def test_a_short_gift_line_refuses_the_gift_box(api, waved):
    waved("TB001", lines=KIT)
    opened = api.scan(WAYBILL)
    assert opened["progress"]["giftbox_requires"] == ["gift", "main", "sample"]
    assert api.scan(MAIN)["code"] == "accepted"
    assert api.scan(SAMPLE)["code"] == "accepted"
    early = api.scan(GIFTBOX)
    assert (early["ok"], early["code"]) == (False, "giftbox_incomplete")
    assert [m["sku"] for m in early["params"]["missing"]] == ["MIRROR"]
    assert "随身镜×1" in early["message"]
    assert early["progress"]["lines"][3]["scanned"] == 0
    assert api.scan(GIFT)["code"] == "accepted"
    last = api.scan(GIFTBOX)
    assert (last["ok"], last["code"], last["status"]) == (True, "accepted", "packed")


def test_the_warehouse_setting_lets_gifts_follow_the_box(app, api, waved):
    waved("TB001", lines=KIT)
    answer = _settings(api, {"giftbox_requires": "main_samples"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["settings"]["giftbox_requires"] == "main_samples"

    opened = api.scan(WAYBILL)
    assert opened["progress"]["giftbox_requires"] == ["main", "sample"]
    assert api.scan(GIFTBOX)["code"] == "giftbox_incomplete"         # main and sample still short
    api.scan(MAIN)
    api.scan(SAMPLE)
    boxed = api.scan(GIFTBOX)
    assert (boxed["ok"], boxed["code"]) == (True, "accepted")
    assert boxed["progress"]["complete"] is False and boxed["status"] == "packing"
    done = api.scan(GIFT)
    assert (done["code"], done["status"]) == ("accepted", "packed")

    # Back to the default: it applies to the next scan, also of a session already open.
    waved("TB002", waybill="SF1000000000002", wave="W-2",
          lines=[{**line, "sku": line["sku"] + "-2", "barcodes": [line["barcodes"][0][:-1] + "0"]}
                 for line in KIT])
    api.scan("SF1000000000002")
    for line in KIT[:2]:
        assert api.scan(line["barcodes"][0][:-1] + "0")["code"] == "accepted"
    assert _settings(api, {"giftbox_requires": "main_samples_gifts"}).status_code == 200
    assert api.scan(GIFTBOX[:-1] + "0")["code"] == "giftbox_incomplete"

    entries = api.get("/api/v1/audit?action=settings_changed").get_json()["entries"]
    assert [e["detail"]["changed"]["giftbox_requires"] for e in reversed(entries)] == [
        {"from": None, "to": "main_samples"}, {"from": "main_samples", "to": "main_samples_gifts"}]
    assert all(e["actor"] == "test-supervisor" and e["target"] == "warehouse:JX" for e in entries)


def test_an_override_of_the_refused_gift_box_waives_the_short_gift(api, waved):
    waved("TB001", lines=KIT)
    api.scan(WAYBILL)
    api.scan(MAIN)
    api.scan(SAMPLE)
    refused = api.scan(GIFTBOX, scan_id="gb-1")
    assert refused["code"] == "giftbox_incomplete"
    answer = api.post("/api/v1/scans/gb-1/override", {"reason_code": "stock_out_waived"},
                      role="supervisor")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["waived"] == [3] and answer.get_json()["status"] == "packed"


def test_the_setting_is_checked_and_scoped(app, api):
    assert api.post("/api/v1/orders", make_order("TB001")).status_code == 201
    bad = _settings(api, {"giftbox_requires": "gifts_never"})
    assert (bad.status_code, bad.get_json()["code"], bad.get_json()["field"]) == (
        400, "invalid_field", "giftbox_requires")
    assert _settings(api, {"giftbox_requires": ["main"]}).status_code == 400
    assert _settings(api, {"giftbox_requires": "main_samples"}, role="packer").status_code == 403
    with app.app_context(), standalone_session(app) as s:
        other = create_token(s, "supervisor", "sh-supervisor", warehouse="SH")
    assert _settings(api, {"giftbox_requires": "main_samples"}, token=other).status_code in (403, 404)
    assert api.get("/api/v1/audit?action=settings_changed").get_json()["entries"] == []
    # Sending the value it already has changes nothing and records nothing more.
    for _ in range(2):
        assert _settings(api, {"giftbox_requires": "main_samples_gifts"}).status_code == 200
    (entry,) = api.get("/api/v1/audit?action=settings_changed").get_json()["entries"]
    assert entry["detail"]["changed"] == {"giftbox_requires": {"from": None, "to": "main_samples_gifts"}}
