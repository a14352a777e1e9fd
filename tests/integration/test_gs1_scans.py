"""GS1 read strictly through REST on a real database: a malformed label is refused whole
(`invalid_gs1`, naming the AI), a case label credits its count, an SSCC is a logistic unit, GS1
Digital Link URIs are read, and '<GS>' is a separator only where the scanner profile says so."""
from __future__ import annotations

import time

from tests.conftest import make_order

MAIN, SAMPLE, GIFTBOX, WAYBILL = "6901234567892", "6901234567908", "6901234567915", "SF1000000000001"
GTIN14 = "0" + MAIN
DEBOUNCE_S = 0.55


def _pinned_lot_order(waved, **kw):
    return waved("TB001", lines=[
        {"sku": "SERUM", "name": "精华液 30ml", "qty": 2, "role": "main", "barcodes": [MAIN],
         "lot": "L2026A"},
        {"sku": "GIFTBOX", "name": "限定礼盒", "qty": 1, "role": "giftbox", "barcodes": [GIFTBOX]}], **kw)


def test_a_malformed_gs1_read_after_a_good_gtin_is_refused_not_half_read(api, waved):
    """Today's half-read: the (01) GTIN was taken, the wrong lot and the impossible date dropped,
    and the unit credited past the pinned lot."""
    _pinned_lot_order(waved)
    api.scan(WAYBILL)
    refused = [
        (f"]C101{GTIN14}10L2025Z\x1d17270230", "17"),              # 30 February, wrong lot
        (f"]C101{GTIN14}17271301\x1d10L2026A", "17"),              # month 13
        (f"]C101{GTIN14}10L2025Z\x1d2312", "23"),                  # an unknown AI
        (f"]C101{GTIN14}10L2025Z\x1d1727123", "17"),               # a date one digit short
        (f"]C101{GTIN14}10{'L' * 21}", "10"),                      # a lot over 20 characters
        (f"]C101{GTIN14}10L 2026", "10"),                          # a space: not GS1 data
        (f"01{GTIN14}10L2025Z\x1d17270230", "17"),                 # no AIM prefix, same rules
        (f"]C101{MAIN[:-1]}30{MAIN[-1]}", "01"),                  # a bad GTIN check digit
    ]
    for raw, ai in refused:
        verdict = api.scan(raw)
        assert (verdict["ok"], verdict["code"]) == (False, "invalid_gs1"), (raw, verdict)
        assert verdict["params"]["ai"] == ai and f"({ai})" in verdict["message"], (raw, verdict)
        assert verdict["message"].startswith("GS1 标签被拒"), verdict["message"]
        assert verdict["gs1"] is None and verdict["sku"] is None
        assert verdict["progress"]["lines"][0]["scanned"] == 0, raw
    accepted = api.scan(f"]C101{GTIN14}17271231\x1d10L2026A")
    assert (accepted["code"], accepted["progress"]["lines"][0]["scanned"]) == ("accepted", 1)
    detail = api.get("/api/v1/orders/TB001").get_json()
    scans = detail["scans"][1:]
    assert [s["verdict"]["code"] for s in scans] == ["invalid_gs1"] * len(refused) + ["accepted"]
    assert all(s["lot"] is None and s["sku"] is None for s in scans[:-1])
    assert scans[-1]["lot"] == "L2026A"
    # English on request; the refusal is also pushed to the board as scan_rejected.
    english = api.client.post("/api/v1/scans", json={
        "scan_id": "en-1", "station": "P01", "device_id": "PDA-01",
        "code": f"]C101{GTIN14}17270230"}, headers={"Authorization": f"Bearer {api.tokens['packer']}",
                                                   "Accept-Language": "en"}).get_json()
    assert english["message"] == "GS1 label refused: AI (17) is not a real date. Nothing counted."


def test_a_digit_outside_ascii_in_a_gtin_run_gets_a_verdict_not_a_500(api, waved):
    """'²' is a digit to str.isdigit() but not to int(): checked as a check digit, it failed
    the request."""
    _pinned_lot_order(waved)
    api.scan(WAYBILL)
    for raw in (f"01{GTIN14[:4]}\u00b2{GTIN14[5:]}10L2026A", f"{MAIN[:3]}\u00b2{MAIN[4:]}"):
        verdict = api.scan(raw)          # asserts 200
        assert (verdict["ok"], verdict["code"]) == (False, "unknown_code"), (raw, verdict)
        assert verdict["progress"]["lines"][0]["scanned"] == 0


def test_a_case_label_credits_its_count_never_past_the_line(api, waved):
    waved("TB001", lines=[
        {"sku": "MASK", "name": "面膜", "qty": 12, "role": "main", "barcodes": [MAIN]},
        {"sku": "GIFTBOX", "name": "限定礼盒", "qty": 1, "role": "giftbox", "barcodes": [GIFTBOX]}])
    api.scan(WAYBILL)
    case6 = f"]C102{GTIN14}3706\x1d10LOT-C"
    first = api.scan(case6, scan_id="case-1")
    assert (first["ok"], first["code"], first["sku"]) == (True, "accepted", "MASK")
    assert first["progress"]["lines"][0]["scanned"] == 6 and first["progress"]["units_left"] == 7
    assert first["gs1"]["count"] == 6 and "6" in first["message"]
    # The same scan_id again: the first verdict, nothing counted twice.
    again = api.scan(case6, scan_id="case-1")
    assert again["progress"]["lines"][0]["scanned"] == 6
    # A case of 12 when 6 are still needed: refused whole, nothing credited.
    big = api.scan(f"]C102{GTIN14}3712")
    assert (big["ok"], big["code"]) == (False, "case_over_scan")
    assert (big["params"]["count"], big["params"]["left"]) == (12, 6)
    assert big["progress"]["lines"][0]["scanned"] == 6
    # AI 02 without its count is invalid; a count without 02 too.
    assert api.scan(f"]C102{GTIN14}\x1d10LOT-C")["code"] == "invalid_gs1"
    assert api.scan("]C13706")["code"] == "invalid_gs1"
    time.sleep(DEBOUNCE_S)
    second = api.scan(case6)
    assert second["code"] == "accepted" and second["progress"]["lines"][0]["scanned"] == 12
    time.sleep(DEBOUNCE_S)
    assert api.scan(case6)["code"] == "over_scan"
    done = api.scan(GIFTBOX)
    assert (done["code"], done["status"]) == ("accepted", "packed")


def test_an_sscc_alone_is_a_logistic_unit_unless_it_is_the_orders_waybill(api, waved):
    sscc = "106141412345678908"
    waved("TB001")
    api.scan(WAYBILL)
    pallet = api.scan(f"]C100{sscc}")
    assert (pallet["ok"], pallet["code"], pallet["params"]["sscc"]) == (False, "logistic_unit", sscc)
    assert pallet["progress"]["units_left"] == 4
    # An SSCC the OMS gave as a parcel's waybill opens that order.
    waved("TB002", waybill=sscc, wave="W-2")
    opened = api.scan(f"]C100{sscc}", device="PDA-02")
    assert (opened["code"], opened["order_no"]) == ("order_opened", "TB002")


def test_gs1_digital_link_uris_are_read_with_the_same_checks(api, waved):
    _pinned_lot_order(waved)
    api.scan(WAYBILL)
    good = api.scan(f"]Q1https://qr.brand.example/01/{MAIN}/10/L2026A/21/SN-1?17=271231&linkType=all")
    assert (good["code"], good["sku"]) == ("accepted", "SERUM")
    assert (good["gs1"]["gtin"], good["gs1"]["lot"], good["gs1"]["serial"], good["gs1"]["expiry"]) == (
        GTIN14, "L2026A", "SN-1", "2027-12-31")
    assert api.scan(f"]d1https://id.gs1.org/01/{GTIN14}/10/L2025Z")["code"] == "lot_mismatch"
    assert api.scan(f"]J1https://x.example/01/{GTIN14}?17=250101")["code"] == "expired"
    bad = api.scan(f"]Q1https://qr.brand.example/01/{MAIN}/10/L2026A?17=270230")
    assert (bad["code"], bad["params"]["ai"]) == ("invalid_gs1", "17")
    bad = api.scan(f"https://qr.brand.example/01/{MAIN[:-1]}0/10/L2026A")
    assert (bad["code"], bad["params"]["ai"]) == ("invalid_gs1", "01")
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert detail["scans"][1]["serial"] == "SN-1" and detail["scans"][1]["lot"] == "L2026A"


def _register(api, device_id, **extra):
    return api.post("/api/v1/devices", {"device_id": device_id, "kind": "handheld", "station": "P01",
                                        **extra}, role="supervisor")


def _settings(api, body):
    return api.client.put("/api/v1/warehouses/JX/settings", json=body,
                          headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})


def test_a_typed_gs_is_a_separator_only_where_the_scanner_profile_says_so(api, waved):
    waved("TB001", lines=[
        {"sku": "SERUM", "name": "精华液 30ml", "qty": 3, "role": "main", "barcodes": [MAIN]},
        {"sku": "GIFTBOX", "name": "限定礼盒", "qty": 1, "role": "giftbox", "barcodes": [GIFTBOX]}])
    # An expired unit, typed by a keyboard-wedge scanner that writes '<GS>' for FNC1.
    typed = f"]C101{GTIN14}10LOT-9<GS>17251231"
    assert _register(api, "PDA-W").status_code in (200, 201)
    api.scan(WAYBILL, device="PDA-W")
    # Without a profile '<', 'G', 'S', '>' are lot characters GS1 allows: one lot, no expiry.
    plain = api.scan(typed, device="PDA-W")
    assert (plain["code"], plain["gs1"]["lot"], plain["gs1"]["expiry"]) == (
        "accepted", "LOT-9<GS>17251231", None)

    # The warehouse's setting applies to every scanner without a profile of its own ...
    answer = _settings(api, {"gs_substitute": "<GS>"})
    assert answer.status_code == 200 and answer.get_json()["settings"]["gs_substitute"] == "<GS>"
    time.sleep(DEBOUNCE_S)
    refused = api.scan(typed, device="PDA-W")
    assert (refused["code"], refused["gs1"]["lot"], refused["gs1"]["expiry"]) == (
        "expired", "LOT-9", "2025-12-31")
    # ... a profile saying "none" keeps its scanner's '<GS>' as data ...
    none = _register(api, "PDA-W", scanner_profile={"gs_substitute": ""})
    assert none.status_code == 200 and none.get_json()["scanner_profile"] == {"gs_substitute": ""}
    time.sleep(DEBOUNCE_S)
    assert api.scan(typed, device="PDA-W")["gs1"]["lot"] == "LOT-9<GS>17251231"
    # ... and a profile naming '<GS>' wins over a warehouse that says none.
    assert _settings(api, {"gs_substitute": ""}).status_code == 200
    wedge = _register(api, "PDA-W", scanner_profile={"gs_substitute": "<GS>"})
    assert wedge.get_json()["scanner_profile"] == {"gs_substitute": "<GS>"}
    listed = {d["device_id"]: d for d in api.get("/api/v1/devices").get_json()["devices"]}
    assert listed["PDA-W"]["scanner_profile"] == {"gs_substitute": "<GS>"}
    time.sleep(DEBOUNCE_S)
    assert api.scan(typed, device="PDA-W")["code"] == "expired"


def test_a_scanner_profile_is_validated(api):
    for profile in ({"gs_substitute": "GS"}, {"gs_substitute": 5}, {"gs_substitute": "x" * 9},
                    {"prefix": "]C1"}, ["<GS>"]):
        answer = _register(api, "PDA-BAD", scanner_profile=profile)
        assert answer.status_code == 400, profile
        assert (answer.get_json()["code"], answer.get_json()["field"]) == ("invalid_field", "scanner_profile")
    bad = _settings(api, {"gs_substitute": "A B"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "gs_substitute"


def test_a_malformed_gs1_read_on_a_return_is_refused_and_not_counted(api, waved):
    order = make_order("TB009", waybill="SF1000000000009")
    assert api.post("/api/v1/orders", order).status_code == 201
    assert api.post("/api/v1/waves", {"wave_no": "W-9", "order_nos": ["TB009"],
                                      "station": "P01"}).status_code == 200
    api.scan("SF1000000000009")
    for code in (MAIN, SAMPLE):
        api.scan(code)
    time.sleep(DEBOUNCE_S)
    api.scan(SAMPLE)
    assert api.scan(GIFTBOX)["status"] == "packed"
    ret = api.post("/api/v1/returns", {"order_no": "TB009", "reason": "退货"}).get_json()
    rma = ret["rma_no"]

    def returned(code):
        answer = api.post(f"/api/v1/returns/{rma}/scans", {"scan_id": f"r-{code[-6:]}-{time.time()}",
                                                           "code": code}, role="qc")
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    bad = returned(f"]C101{GTIN14}17270230")
    assert (bad["ok"], bad["verdict"], bad["params"]["ai"]) == (False, "invalid_gs1", "17")
    case = returned(f"]C102{GTIN14}3702")
    assert (case["ok"], case["verdict"]) == (False, "logistic_unit")
    good = returned(f"]C101{GTIN14}17271231")
    assert good["verdict"] == "matched"
    line = next(l for l in good["comparison"]["lines"] if l["sku"] == "SERUM")
    assert line["returned_qty"] == 1        # the refused reads did not count
