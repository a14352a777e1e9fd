"""Bad input answers a clear 4xx or an error verdict with a stable code: never a 500."""
from __future__ import annotations

import pytest

WAYBILL = "SF1000000000001"


def _post_raw(api, data: bytes, role: str = "packer", path: str = "/api/v1/scans"):
    return api.client.post(path, data=data, headers={
        "Authorization": f"Bearer {api.tokens[role]}", "Content-Type": "application/json"})


@pytest.mark.parametrize("data, code", [
    (b"{not json", "invalid_json"),
    (b"", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b"\xff\xfe\x00garbage", "invalid_json"),
    (b'{"station": "P01", "device_id": "D", "code": "x"}', "missing_field"),
    (b'{"scan_id": 5, "station": "P01", "device_id": "D", "code": "x"}', "missing_field"),
    (b'{"scan_id": "a", "station": "P\\u0000", "device_id": "D", "code": "x"}', "invalid_field"),
    (b'{"scan_id": "' + b"a" * 65 + b'", "station": "P01", "device_id": "D", "code": "x"}', "invalid_field"),
    (b'{"scan_id": "a", "station": "P01", "device_id": "D"}', "missing_field"),
    (b'{"scan_id": "a", "station": "' + b"P" * 33 + b'", "device_id": "D", "code": "x"}', "invalid_field"),
])
def test_malformed_scan_requests_get_400_with_a_code(api, data, code):
    response = _post_raw(api, data)
    assert response.status_code == 400
    assert response.get_json()["code"] == code and response.get_json()["message"]


@pytest.mark.parametrize("raw, reason", [
    ("A" * 10_240, "too_long"),
    ("69012\x0734567892", "control_characters"),
    ("\x00\x00\x00", "empty"),
    ("   \r\n", "empty"),
    (12345, "not_text"),
])
def test_unreadable_codes_get_an_error_verdict_and_are_recorded(api, waved, raw, reason):
    waved("TB001")
    api.scan(WAYBILL)
    verdict = api.scan(raw)
    assert (verdict["ok"], verdict["code"], verdict["params"]["reason"]) == (False, "unreadable", reason)
    scans = api.get("/api/v1/orders/TB001").get_json()["scans"]
    assert scans[-1]["verdict"]["code"] == "unreadable"
    assert len(scans[-1]["code"]) <= 260 and "\x00" not in scans[-1]["code"]


def test_lone_surrogates_in_json_are_unreadable_not_a_crash(api, waved):
    waved("TB001")
    response = _post_raw(api, b'{"scan_id": "s1", "station": "P01", "device_id": "PDA-01", '
                              b'"code": "\\udcff\\udcfe"}')
    assert response.status_code == 200
    assert (response.get_json()["code"], response.get_json()["params"]["reason"]) == (
        "unreadable", "control_characters")


def test_scanner_suffixes_and_aim_prefixes_are_normalised(api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    assert api.scan("]E06901234567892\r\n")["code"] == "accepted"
    assert api.scan("6901234567908\x00")["code"] == "accepted"    # a trailing NUL from a serial line
    scans = api.get("/api/v1/orders/TB001").get_json()["scans"]
    assert scans[1]["code"] == "]E06901234567892\r\n"            # kept as received
    assert scans[2]["code"] == "6901234567908\\x00"              # escaped: PostgreSQL stores no NUL


def test_body_over_the_limit_is_413(api):
    response = _post_raw(api, b'{"code": "' + b"x" * 300_000 + b'"}')
    assert response.status_code == 413 and response.get_json()["code"] == "payload_too_large"


@pytest.mark.parametrize("body, code", [
    ({"order_no": "X1", "channel": "taobao", "warehouse": "JX", "lines": []}, "invalid_kit"),
    ({"order_no": "X1", "channel": "taobao", "warehouse": "JX",
      "lines": [{"sku": "A", "qty": 0, "role": "main", "barcodes": ["1"]}]}, "invalid_kit"),
    ({"order_no": "X1", "channel": "taobao", "warehouse": "JX",
      "lines": [{"sku": "A", "qty": 1, "role": "boss", "barcodes": ["1"]}]}, "invalid_kit"),
    ({"order_no": "X1", "channel": "taobao", "warehouse": "JX",
      "lines": [{"sku": "A", "qty": 1, "role": "main", "barcodes": []}]}, "invalid_kit"),
    ({"order_no": "X1", "channel": "taobao", "warehouse": "JX",
      "lines": [{"sku": "A", "qty": 1, "role": "main", "barcodes": ["1"]},
                {"sku": "B", "qty": 1, "role": "main", "barcodes": ["1"]}]}, "invalid_kit"),
    ({"channel": "taobao", "warehouse": "JX", "lines": []}, "missing_field"),
    ({"order_no": ["x"], "channel": "taobao", "warehouse": "JX", "lines": []}, "invalid_field"),
    ({"order_no": "X1", "channel": "taobao", "warehouse": "JX", "customer": "bob",
      "lines": [{"sku": "A", "qty": 1, "role": "main", "barcodes": ["1"]}]}, "invalid_field"),
])
def test_invalid_orders_are_refused_with_a_code(api, body, code):
    response = api.post("/api/v1/orders", body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] == code


def test_unknown_things_are_404(api):
    assert api.get("/api/v1/orders/NOPE").get_json()["code"] == "unknown_order"
    assert api.get("/api/v1/waves/NOPE").status_code == 404
    assert api.post("/api/v1/waves", {"wave_no": "W", "order_nos": ["NOPE"]}).get_json()["code"] == "unknown_orders"
    assert api.post("/api/v1/scans/nope/override", {"reason_code": "other"}, role="supervisor").status_code == 404
    assert api.get("/api/v1/nothing-here").get_json()["code"] == "not_found"


def test_oversized_text_fields_on_supervisor_actions_are_400(api, waved):
    waved("TB001")
    long = "x" * 600
    response = api.post("/api/v1/orders/TB001/events", {"event": "label_printed", "station": long})
    assert response.status_code == 400 and response.get_json()["code"] == "invalid_field"
    response = api.post("/api/v1/orders/TB001/events", {"event": "hold", "reason": long}, role="supervisor")
    assert response.status_code == 400
    assert api.post("/api/v1/pack-sessions/1/release", {"reason": long}, role="supervisor").status_code == 400
    assert api.post("/api/v1/alerts/1/ack", {"note": long}, role="supervisor").status_code == 400
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "wave_assigned"   # nothing changed


@pytest.mark.parametrize("path", [
    "/api/v1/board?warehouse=WH1%00",                 # PostgreSQL cannot compare text holding NUL
    "/api/v1/orders/TB001/evidence?channel=%00shop",
    "/api/v1/orders/TB%00001",
    "/board?warehouse=%00",
])
def test_a_nul_in_the_address_is_a_400_before_any_query(api, path):
    response = api.get(path)
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert response.get_json()["code"] == "invalid_parameter" and response.get_json()["message"]
