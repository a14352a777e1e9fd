"""The returns QC screen in a real browser against a live server.

An order is packed over the API with lot-pinned GS1-128 scans, then returned. A QC user on a
360 x 640 handheld opens the return by scanning its trace code, sees what was packed (lots,
packer, station), scans what came back with conditions, sees the missing gift and the swapped
lot in red, closes the inspection and sees the report with its suggested outcome; a QC lead
confirms it on a desktop. The scanner types like a keyboard-wedge scanner: characters, Enter.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from screens import DEMO_PASSWORD, SCREENSHOTS, call, ean13

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

RED = "rgb(185, 28, 28)"


def gs1(code: str, lot: str, serial: str) -> str:
    return f"]C101{code.zfill(14)}10{lot}\x1d21{serial}"


@pytest.fixture(scope="module")
def packed_order(live_server: Any) -> dict[str, Any]:
    """A fresh order of four lines (the gift among them), packed at P02 with lots recorded."""
    suffix = uuid.uuid4().hex[:6].upper()
    prefix = str(int(suffix, 16) % 10**6).zfill(6)
    codes = {role: ean13(f"699{prefix}{n:03d}") for n, role in enumerate(("main", "sample", "gift", "giftbox"))}
    order_no, waybill = f"RT-E2E-{suffix}", f"SF9{int(suffix, 16) % 10**12:012d}"
    lines = [
        {"sku": f"E2E-SERUM-{suffix}", "name": "精华液 30ml", "qty": 1, "role": "main", "barcodes": [codes["main"]]},
        {"sku": f"E2E-SAMPLE-{suffix}", "name": "试用装 5ml", "qty": 2, "role": "sample", "barcodes": [codes["sample"]]},
        {"sku": f"E2E-MIRROR-{suffix}", "name": "随身镜", "qty": 1, "role": "gift", "barcodes": [codes["gift"]]},
        {"sku": f"E2E-BOX-{suffix}", "name": "限定礼盒", "qty": 1, "role": "giftbox", "barcodes": [codes["giftbox"]]},
    ]
    integration = live_server.new_token("integration", "e2e-returns-oms")
    packer = live_server.new_token("packer", "e2e-returns-packer")
    status, body = call(live_server, integration, "POST", "/api/v1/orders", {
        "order_no": order_no, "channel": "e2e", "warehouse": "JX", "waybill_no": waybill,
        "customer": {"name": "李四"}, "lines": lines})
    assert status == 201, body
    status, body = live_server.api("POST", "/api/v1/waves", {"wave_no": f"W-RET-{suffix}",
                                                             "order_nos": [order_no], "station": "P02"})
    assert status == 200, body
    for code in (waybill, gs1(codes["main"], "LM-1", "M1"), gs1(codes["sample"], "LS-1", "S1"),
                 gs1(codes["sample"], "LS-1", "S2"), gs1(codes["gift"], "LG-1", "G1"), codes["giftbox"]):
        status, body = call(live_server, packer, "POST", "/api/v1/scans", {
            "scan_id": uuid.uuid4().hex, "station": "P02", "device_id": f"E2E-{suffix}", "code": code})
        assert status == 200 and body["ok"], body
    assert live_server.get(f"/api/v1/orders/{order_no}")["status"] == "packed"
    return {"order_no": order_no, "waybill": waybill, "codes": codes, "lines": lines,
            "foreign": ean13(f"698{prefix}999")}


def is_problem(msg: Any) -> bool:
    """CSP refusals and script errors. A 404 of the order's evidence (no camera covered the
    packing) is logged by the browser as a failed load: the screen shows no frame, by design."""
    text = msg.text
    if "Content Security Policy" in text or "Refused to" in text:
        return True
    return msg.type == "error" and "Failed to load resource" not in text


def login(page: Any, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("#login-submit")
    assert "/login" not in page.url, f"login as {username} failed"


def scan(page: Any, code: str) -> str:
    verdict = page.locator("#verdict")
    before = int(verdict.get_attribute("data-count") or 0)
    expect(page.locator("#scan-input")).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    expect(verdict).not_to_have_attribute("data-count", str(before))
    expect(verdict).not_to_have_attribute("data-verdict", "")
    return verdict.get_attribute("data-verdict") or ""


def test_qc_inspects_a_return_on_a_handheld(handheld: Any, browser: Any, live_server: Any,
                                            packed_order: dict[str, Any]) -> None:
    qc_token = live_server.new_token("qc", "e2e-returns-qc")
    page = handheld.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if is_problem(msg) else None)
    login(page, "qc1")
    page.goto("/returns")
    expect(page.locator("body")).to_have_attribute("data-live", "1")

    # The return is opened at intake (over the API here); the QC queue shows it live.
    status, ret = call(live_server, qc_token, "POST", "/api/v1/returns", {
        "order_no": packed_order["order_no"], "reason": "七天无理由", "customer_note": "赠品已丢"})
    assert status == 201, ret
    expect(page.locator(f'#queue [data-rma="{ret["rma_no"]}"]')).to_be_visible()

    assert scan(page, ret["trace_code"]) == "opened"
    expect(page.locator("body")).to_have_attribute("data-rma", ret["rma_no"])
    lines = {line["role"]: line["sku"] for line in packed_order["lines"]}
    sample_line = page.locator(f'#lines li[data-sku="{lines["sample"]}"]')
    gift_line = page.locator(f'#lines li[data-sku="{lines["gift"]}"]')
    # What was packed: lots, the packer, the station.
    expect(sample_line.locator(".rq-lot").first).to_contain_text("LS-1")
    expect(sample_line.locator(".rq-who").first).to_contain_text("P02")
    expect(gift_line).to_have_attribute("data-result", "missing")

    codes = packed_order["codes"]
    assert scan(page, gs1(codes["main"], "LM-1", "M1")) == "matched"
    page.locator('.rq-cond[data-condition="opened"]').click()
    assert scan(page, gs1(codes["sample"], "LS-1", "S1")) == "matched"
    # The condition applied to that one item and is back to resellable.
    expect(page.locator('input[name="condition"][value="resellable"]')).to_be_checked()
    assert scan(page, gs1(codes["sample"], "LX-9", "S9")) == "lot_mismatch"
    expect(page.locator("#verdict")).to_have_class("verdict bad")
    page.locator('.rq-cond[data-condition="damaged"]').click()
    assert scan(page, codes["giftbox"]) == "matched"
    assert scan(page, packed_order["foreign"]) == "foreign_item"

    expect(sample_line).to_have_attribute("data-result", "lot_mismatch")
    expect(gift_line).to_have_attribute("data-result", "missing")
    expect(page.locator('#lines li[data-result="foreign_item"]')).to_have_count(1)
    expect(page.locator(f'#lines li[data-sku="{lines["main"]}"]')).to_have_attribute("data-result", "matched")
    for line in (sample_line, gift_line, page.locator('#lines li[data-result="foreign_item"]')):
        badge = line.locator(".rq-line-head .rq-result")
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    expect(sample_line.locator(".rq-result")).to_contain_text("LX-9")
    # S9 was never packed either: the serial is named beside the lot.
    expect(sample_line.locator(".rq-result")).to_contain_text("S9")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # Close: a second tap confirms it. The report names the missing gift and the swapped lot.
    page.click("#close-button")
    page.click("#close-button")
    expect(page.locator("#report")).to_be_visible()
    expect(page.locator("#suggested-outcome")).to_have_attribute("data-outcome", "manual_review")
    report = page.locator("#report-lines")
    expect(report.locator('li[data-result="missing"]')).to_contain_text("随身镜")
    expect(report.locator('li[data-result="lot_mismatch"]')).to_contain_text("LX-9")
    expect(report.locator('li[data-result="foreign_item"]')).to_have_count(1)
    expect(page.locator("#content-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(page.locator("#evidence-link")).to_have_attribute(
        "href", f"/orders/{packed_order['order_no']}/evidence")
    expect(page.locator("#close-button")).to_be_hidden()
    expect(page.locator("#confirm-form")).to_have_count(0)      # QC does not confirm
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    if SCREENSHOTS.name == "screenshots":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "returns.png"), full_page=True, animations="disabled")
    # Scanning an item of the closed return changes nothing.
    scan(page, packed_order["order_no"])
    detail = live_server.get(f"/api/v1/returns/{ret['rma_no']}")
    assert detail["state"] == "closed" and len(detail["scans"]) == 5

    # The QC lead confirms on a desktop.
    desk = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url,
                               locale="zh-CN")
    try:
        lead = desk.new_page()
        lead.on("console", lambda msg: problems.append(msg.text) if is_problem(msg) else None)
        login(lead, "super1")
        lead.goto("/returns")
        lead.click(f'#closed-queue [data-rma="{ret["rma_no"]}"]')
        expect(lead.locator("#suggested-outcome")).to_have_attribute("data-outcome", "manual_review")
        lead.select_option("#confirm-outcome", "partial")
        lead.fill("#confirm-note", "赠品缺失，批次不符：部分退款")
        lead.click("#confirm-form button[type=submit]")
        expect(lead.locator("#confirmed")).to_be_visible()
        expect(lead.locator("#return-state")).to_have_attribute("data-state", "confirmed")
        expect(lead.locator("#confirm-form")).to_be_hidden()
        assert lead.evaluate("document.documentElement.scrollWidth") <= 1280
    finally:
        desk.close()
    assert not problems, problems

