"""Returns inspection end to end: an order packed with lot-pinned GS1 scans comes back with
the gift missing, a foreign item and a sample of another lot."""
from __future__ import annotations

import hashlib
import io
import json
import time
import uuid

import cv2
import numpy as np
import pytest

from floor.extensions import socketio

WAYBILL = "SF1000000000001"
MAIN, SAMPLE, GIFT, GIFTBOX = "6901234567892", "6901234567908", "6901234567922", "6901234567915"
FOREIGN = "6901234567946"
LINES = [
    {"sku": "SERUM", "name": "精华液 30ml", "qty": 1, "role": "main", "barcodes": [MAIN]},
    {"sku": "SAMPLE", "name": "试用装 5ml", "qty": 2, "role": "sample", "barcodes": [SAMPLE]},
    {"sku": "MIRROR", "name": "随身镜", "qty": 1, "role": "gift", "barcodes": [GIFT]},
    {"sku": "GIFTBOX", "name": "限定礼盒", "qty": 1, "role": "giftbox", "barcodes": [GIFTBOX]},
]


def gs1(ean13: str, lot: str, serial: str | None = None) -> str:
    """A GS1-128 read: ]C1, AI 01 (GTIN-14), AI 10 (lot), optionally AI 21 (serial)."""
    code = f"]C101{ean13.zfill(14)}10{lot}"
    return code + (f"\x1d21{serial}" if serial else "")


@pytest.fixture
def packed(api, waved):
    """TB001 packed with lots recorded: serum L-M1, samples L-S1, gift L-G1."""
    waved("TB001", lines=LINES)
    for code in (WAYBILL, gs1(MAIN, "L-M1", "M001"), gs1(SAMPLE, "L-S1", "S001"),
                 gs1(SAMPLE, "L-S1", "S002"), gs1(GIFT, "L-G1"), GIFTBOX):
        verdict = api.scan(code)
        assert verdict["ok"], verdict
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "packed"
    return "TB001"


def open_return(api, order_no="TB001", role="qc", **extra):
    return api.post("/api/v1/returns", {"order_no": order_no, "reason": "七天无理由退货",
                                        "customer_note": "礼物没寄回", **extra}, role=role)


def rscan(api, rma_no, code, condition="resellable", scan_id=None, role="qc"):
    return api.post(f"/api/v1/returns/{rma_no}/scans",
                    {"scan_id": scan_id or uuid.uuid4().hex, "code": code, "condition": condition},
                    role=role)


def test_the_issue_case_missing_gift_foreign_item_and_swapped_lot(api, packed):
    created = open_return(api)
    assert created.status_code == 201, created.get_json()
    ret = created.get_json()
    rma, trace = ret["rma_no"], ret["trace_code"]
    assert ret["state"] == "open" and ret["station"] == "R01" and ret["customer_note"] == "礼物没寄回"
    # QC scans the trace code and sees what was packed: lots, serials, packer, station, time.
    opened = api.get(f"/api/v1/returns/by-code/{trace}", role="qc").get_json()
    assert opened["rma_no"] == rma
    assert [line["sku"] for line in opened["snapshot"]["lines"]] == ["SERUM", "SAMPLE", "MIRROR", "GIFTBOX"]
    packed_rows = opened["packed"]
    assert [(p["sku"], p["lot"], p["serial"]) for p in packed_rows] == [
        ("SERUM", "L-M1", "M001"), ("SAMPLE", "L-S1", "S001"), ("SAMPLE", "L-S1", "S002"),
        ("MIRROR", "L-G1", None), ("GIFTBOX", None, None)]
    assert all(p["by"] == "test-packer" and p["station"] == "P01" and p["at"] for p in packed_rows)
    # By waybill and by order number too.
    assert api.get(f"/api/v1/returns/by-code/{WAYBILL}", role="qc").get_json()["rma_no"] == rma
    assert api.get("/api/v1/returns/by-code/TB001", role="qc").get_json()["rma_no"] == rma

    verdicts = [rscan(api, rma, code, cond).get_json() for code, cond in (
        (gs1(MAIN, "L-M1", "M001"), "resellable"),
        (gs1(SAMPLE, "L-S1", "S001"), "opened"),
        (gs1(SAMPLE, "L-X9", "S777"), "resellable"),       # the swapped lot
        (GIFTBOX, "damaged"),
        (FOREIGN, "resellable"))]                          # never in this order
    assert [v["verdict"] for v in verdicts] == [
        "matched", "matched", "lot_mismatch", "matched", "foreign_item"]
    assert verdicts[2]["params"]["packed_lots"] == ["L-S1"] and verdicts[2]["lot"] == "L-X9"
    assert verdicts[2]["message"]
    live = verdicts[-1]["comparison"]
    assert {line["sku"]: line["result"] for line in live["lines"] if line["line_no"]} == {
        "SERUM": "matched", "SAMPLE": "lot_mismatch", "MIRROR": "missing", "GIFTBOX": "matched"}

    closed = api.post(f"/api/v1/returns/{rma}/close", role="qc")
    assert closed.status_code == 200, closed.get_json()
    report = closed.get_json()
    results = [(line["sku"], line["result"]) for line in report["lines"]]
    assert results == [("SERUM", "matched"), ("SAMPLE", "lot_mismatch"), ("MIRROR", "missing"),
                       ("GIFTBOX", "matched"), (None, "foreign_item")]
    by_result = {line["result"]: line for line in report["lines"]}
    gift = by_result["missing"]
    assert gift["missing_qty"] == 1 and gift["snapshot_line"]["role"] == "gift" and gift["scans"] == []
    sample = by_result["lot_mismatch"]
    assert sample["packed_lots"] == ["L-S1"] and sample["mismatched_lots"] == ["L-X9"]
    assert sample["snapshot_line"]["sku"] == "SAMPLE" and len(sample["scans"]) == 2
    foreign = by_result["foreign_item"]
    assert foreign["snapshot_line"] is None and foreign["scans"][0]["code"] == FOREIGN
    assert report["suggested_outcome"] == "manual_review"
    # The hash recomputes from the content and embeds the snapshot's hash.
    snapshot_hash = api.get("/api/v1/orders/TB001").get_json()["snapshot"]["hash"]
    assert report["snapshot_hash"] == snapshot_hash
    content = {"rma_no": rma, "order_no": "TB001", "snapshot_hash": snapshot_hash,
               "lines": report["lines"], "suggested_outcome": "manual_review"}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert report["content_hash"] == hashlib.sha256(canonical.encode()).hexdigest()

    # Closed: no more scans, no second close, no photos.
    assert rscan(api, rma, MAIN).status_code == 409
    assert rscan(api, rma, MAIN).get_json()["code"] == "return_closed"
    again = api.post(f"/api/v1/returns/{rma}/close", role="qc")
    assert (again.status_code, again.get_json()["code"]) == (409, "return_closed")
    assert api.get(f"/api/v1/returns/by-code/{trace}", role="qc").status_code == 404

    # The QC lead confirms; recorded beside the unchanged report.
    assert api.post(f"/api/v1/returns/{rma}/confirm", {"outcome": "partial", "note": "x"},
                    role="qc").status_code == 403
    confirmed = api.post(f"/api/v1/returns/{rma}/confirm",
                         {"outcome": "partial", "note": "赠品缺失，试用装批次不符，部分退款"},
                         role="supervisor")
    assert confirmed.status_code == 200, confirmed.get_json()
    body = confirmed.get_json()
    assert (body["confirmed_outcome"], body["confirmed_by"], body["state"]) == (
        "partial", "test-supervisor", "confirmed")
    assert body["content_hash"] == report["content_hash"] and body["lines"] == report["lines"]
    twice = api.post(f"/api/v1/returns/{rma}/confirm", {"outcome": "refund"}, role="supervisor")
    assert (twice.status_code, twice.get_json()["code"]) == (409, "already_confirmed")
    detail = api.get(f"/api/v1/returns/{rma}", role="integration").get_json()
    assert detail["state"] == "confirmed" and detail["report"]["confirm_note"].startswith("赠品")
    assert detail["report"]["suggested_outcome"] == "manual_review"


def test_returning_exactly_what_was_packed_suggests_a_refund(api, packed):
    rma = open_return(api).get_json()["rma_no"]
    for code in (gs1(MAIN, "L-M1"), SAMPLE, gs1(SAMPLE, "L-S1"), GIFT, GIFTBOX):
        assert rscan(api, rma, code).get_json()["verdict"] == "matched"
    over = rscan(api, rma, SAMPLE).get_json()
    assert over["verdict"] == "over_returned"
    report = api.post(f"/api/v1/returns/{rma}/close", role="qc").get_json()
    assert report["suggested_outcome"] == "manual_review"
    sample = next(line for line in report["lines"] if line["sku"] == "SAMPLE")
    assert (sample["result"], sample["over_qty"]) == ("over_returned", 1)
    second = open_return(api).get_json()["rma_no"]
    for code in (MAIN, SAMPLE, SAMPLE, GIFT, GIFTBOX):
        rscan(api, second, code)
    report = api.post(f"/api/v1/returns/{second}/close", role="qc").get_json()
    assert {line["result"] for line in report["lines"]} == {"matched"}
    assert report["suggested_outcome"] == "refund"


def test_what_a_supervisor_credited_or_waived_at_packing_is_what_is_expected_back(api, waved):
    """The gift was out of stock and swapped for another item (override: substitute_approved);
    one of the two samples was out of stock too (the early gift box override waived it)."""
    waved("TB001", lines=LINES)
    assert api.scan(WAYBILL)["ok"] and api.scan(MAIN)["ok"] and api.scan(SAMPLE)["ok"]
    swap = api.scan(FOREIGN, scan_id="swap-1")
    assert not swap["ok"]
    r = api.post("/api/v1/scans/swap-1/override", {"reason_code": "substitute_approved", "line_no": 3},
                 role="supervisor")
    assert r.status_code == 200, r.get_json()
    early = api.scan(GIFTBOX, scan_id="box-1")
    assert early["code"] == "giftbox_incomplete"
    r = api.post("/api/v1/scans/box-1/override", {"reason_code": "stock_out_waived"}, role="supervisor")
    assert r.status_code == 200 and r.get_json()["status"] == "packed", r.get_json()
    assert r.get_json()["waived"] == [2]

    rma = open_return(api).get_json()["rma_no"]
    detail = api.get(f"/api/v1/returns/{rma}", role="qc").get_json()
    assert detail["waived"] == [{"line_no": 2, "qty": 1}]
    credited = [p for p in detail["packed"] if p["override"]]
    assert [(p["code"], p["sku"], p["override"]["reason_code"]) for p in credited] == [
        (FOREIGN, "MIRROR", "substitute_approved"), (GIFTBOX, "GIFTBOX", "stock_out_waived")]
    # The substitute finds the gift's line; one sample is all that was shipped.
    verdicts = [rscan(api, rma, code).get_json()["verdict"] for code in (MAIN, SAMPLE, FOREIGN, GIFTBOX)]
    assert verdicts == ["matched"] * 4
    report = api.post(f"/api/v1/returns/{rma}/close", {}, role="qc").get_json()
    lines = {line["sku"]: line for line in report["lines"]}
    assert [line["result"] for line in report["lines"]] == ["matched"] * 4
    assert (lines["SAMPLE"]["expected_qty"], lines["SAMPLE"]["waived_qty"]) == (1, 1)
    assert lines["MIRROR"]["scans"][0]["code"] == FOREIGN
    assert report["suggested_outcome"] == "refund"


def test_opening_rules(api, waved, packed):
    waved("TB002", waybill="SF1000000000002", wave="W-2")
    not_packed = open_return(api, "TB002")
    assert (not_packed.status_code, not_packed.get_json()["code"]) == (409, "not_packed")
    unknown = open_return(api, "NOPE")
    assert (unknown.status_code, unknown.get_json()["code"]) == (404, "unknown_order")
    first = open_return(api, role="integration")
    assert first.status_code == 201
    second = open_return(api)
    assert (second.status_code, second.get_json()["code"]) == (409, "return_open")
    assert second.get_json()["rma_no"] == first.get_json()["rma_no"]
    missing = api.post("/api/v1/returns", {"order_no": "TB001"}, role="qc")
    assert (missing.status_code, missing.get_json()["code"]) == (400, "missing_field")
    queue = api.get("/api/v1/returns?state=open&warehouse=JX", role="qc").get_json()["returns"]
    assert [r["rma_no"] for r in queue] == [first.get_json()["rma_no"]]
    assert api.get("/api/v1/returns?state=closed", role="supervisor").get_json()["returns"] == []
    assert api.get("/api/v1/returns?state=bogus", role="qc").status_code == 400


def test_roles(api, packed):
    assert open_return(api, role="packer").status_code == 403
    assert open_return(api, role="supervisor").status_code == 403
    rma = open_return(api, role="integration").get_json()["rma_no"]
    for path in (f"/api/v1/returns/{rma}", "/api/v1/returns", f"/api/v1/returns/by-code/{rma}",
                 f"/api/v1/returns/{rma}/label.svg"):
        assert api.get(path, role="packer").status_code == 403, path
    assert rscan(api, rma, MAIN, role="integration").status_code == 403
    assert rscan(api, rma, MAIN, role="packer").status_code == 403
    assert api.post(f"/api/v1/returns/{rma}/close", role="packer").status_code == 403
    assert api.post(f"/api/v1/returns/{rma}/close", role="integration").status_code == 403
    assert api.post(f"/api/v1/returns/{rma}/confirm", {"outcome": "refund"},
                    role="packer").status_code == 403
    assert api.get(f"/api/v1/returns/{rma}", role=None).status_code == 401
    # Role checks come before body validation.
    assert api.post(f"/api/v1/returns/{rma}/scans", "not json", role="packer").status_code == 403


def test_scans_are_idempotent_and_bad_codes_are_unreadable(api, packed):
    rma = open_return(api).get_json()["rma_no"]
    first = rscan(api, rma, MAIN, scan_id="s-1").get_json()
    again = rscan(api, rma, MAIN, scan_id="s-1", condition="damaged").get_json()
    assert (again["verdict"], again["condition"], again["replayed"]) == ("matched", "resellable", True)
    assert first["verdict"] == "matched"
    detail = api.get(f"/api/v1/returns/{rma}", role="qc").get_json()
    assert len(detail["scans"]) == 1
    for bad in ("x" * 10_240, "ab\x07cd", "\x00\x01", "", 12345):
        response = rscan(api, rma, bad)
        assert response.status_code == 200, (bad, response.get_json())
        assert response.get_json()["verdict"] == "unreadable"
    assert api.post(f"/api/v1/returns/{rma}/scans", {"scan_id": "x", "code": MAIN,
                                                     "condition": "wet"}, role="qc").status_code == 400
    assert api.post(f"/api/v1/returns/{rma}/scans", {"code": MAIN}, role="qc").status_code == 400
    assert api.post("/api/v1/returns/RMA-NONE/scans", {"scan_id": "y", "code": MAIN},
                    role="qc").status_code == 404
    detail = api.get(f"/api/v1/returns/{rma}", role="qc").get_json()
    assert len(detail["scans"]) == 6
    # Unreadable scans are recorded but compared with nothing.
    assert {line["sku"]: line["returned_qty"] for line in detail["comparison"]["lines"]}["SERUM"] == 1
    assert detail["comparison"]["counts"]["foreign_item"] == 0


def test_photo_labels_and_events(app, api, tokens, packed):
    client = socketio.test_client(app, namespace="/floor", auth={"token": tokens["qc"]})
    client.emit("subscribe", {"room": "warehouse:JX", "after_seq": 10**9}, namespace="/floor",
                callback=True)
    client.get_received("/floor")
    ret = open_return(api).get_json()
    rma = ret["rma_no"]
    got, deadline = [], time.monotonic() + 5
    while time.monotonic() < deadline and "return_created" not in [e["name"] for e in got]:
        got += client.get_received("/floor")
        time.sleep(0.02)
    created = [e for e in got if e["name"] == "return_created"]
    assert created and created[0]["args"][0]["rma_no"] == rma and created[0]["args"][0]["seq"]

    scan = rscan(api, rma, MAIN, scan_id="p-1").get_json()
    assert scan["verdict"] == "matched"
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", image)
    assert ok
    url = f"/api/v1/returns/{rma}/scans/p-1/photo"
    headers = {"Authorization": f"Bearer {tokens['qc']}"}
    stored = api.client.post(url, data={"photo": (io.BytesIO(png.tobytes()), "p.png")},
                             headers=headers, content_type="multipart/form-data")
    assert stored.status_code == 200, stored.get_json()
    photo = api.client.get(url, headers=headers)
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    junk = api.client.post(url, data={"photo": (io.BytesIO(b"not an image"), "p.png")},
                           headers=headers, content_type="multipart/form-data")
    assert (junk.status_code, junk.get_json()["code"]) == (400, "invalid_image")
    big = api.client.post(url, data={"photo": (io.BytesIO(b"\0" * (5 * 1024 * 1024 + 10)), "p.png")},
                          headers=headers, content_type="multipart/form-data")
    assert big.status_code == 413
    assert api.get(f"/api/v1/returns/{rma}", role="qc").get_json()["scans"][0]["photo_url"] == url

    svg = api.get(f"/api/v1/returns/{rma}/label.svg", role="qc")
    assert svg.status_code == 200 and b"<svg" in svg.data
    png_label = api.get(f"/api/v1/returns/{rma}/label.png", role="supervisor")
    assert png_label.status_code == 200 and png_label.data[:4] == b"\x89PNG"
    zpl = api.get(f"/api/v1/returns/{rma}/label.zpl", role="qc")
    assert zpl.status_code == 200 and ret["trace_code"] in zpl.get_data(as_text=True)

    api.post(f"/api/v1/returns/{rma}/close", role="qc")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "return_closed" not in [e["name"] for e in got]:
        got += client.get_received("/floor")
        time.sleep(0.02)
    names = [e["name"] for e in got]
    assert {"return_created", "return_scanned", "return_closed"} <= set(names)
    closed = next(e["args"][0] for e in got if e["name"] == "return_closed")
    assert closed["suggested_outcome"] == "partial"       # only the serum came back


def test_the_report_row_is_immutable(app, api, packed):
    from floor.db import standalone_session
    from floor.returns.models import InspectionReport

    rma = open_return(api).get_json()["rma_no"]
    api.post(f"/api/v1/returns/{rma}/close", role="qc")
    with app.app_context(), standalone_session(app) as s:
        report = s.query(InspectionReport).one()
        report.suggested_outcome = "refund"
        with pytest.raises(ValueError):
            s.flush()
        s.rollback()
        report = s.query(InspectionReport).one()
        report.confirm_note = "only the confirmation fields may change"
        s.flush()
        s.rollback()

