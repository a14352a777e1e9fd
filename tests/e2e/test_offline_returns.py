"""The returns QC screen through a network drop, in a real browser against a live server.

QC opens a return online. The handheld goes offline; meanwhile a colleague records the main item
of the same return from another device (the server has it, this screen does not). Offline, QC
scans the main item (a provisional match the server will refuse: more came back than was
packed), a foreign item and the sample; each gets a provisional verdict at once. Back online the
queue is replayed in order, each scan recorded once, the refused match turns red and is
announced, and the queue is empty after the answers. No script or CSP errors.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from offline_servers import device, server, wait_for_service_worker  # noqa: F401 - fixtures
from screens import DEMO_PASSWORD, call, ean13

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

QUEUE_JS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("floor-returns");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const db = open.result;
    if (!db.objectStoreNames.contains("scans")) { db.close(); resolve([]); return; }
    const req = db.transaction("scans").objectStore("scans").index("seq").getAll();
    req.onsuccess = () => { db.close(); resolve(req.result.map(e => ({
      scan_id: e.scan_id, code: e.payload.code, provisional: e.provisional && e.provisional.verdict }))); };
    req.onerror = () => reject(req.error);
  };
})"""


@pytest.fixture(scope="module")
def open_return(server: Any) -> dict[str, Any]:
    """A fresh order (main, sample), packed at P02, and its open return."""
    suffix = uuid.uuid4().hex[:6].upper()
    prefix = str(int(suffix, 16) % 10**6).zfill(6)
    codes = {role: ean13(f"696{prefix}{n:03d}") for n, role in enumerate(("main", "sample", "foreign"))}
    order_no, waybill = f"ROFF-{suffix}", f"JD9{int(suffix, 16) % 10**12:012d}"
    lines = [
        {"sku": f"ROFF-LOTION-{suffix}", "name": "离线乳液", "qty": 1, "role": "main", "barcodes": [codes["main"]]},
        {"sku": f"ROFF-SAMPLE-{suffix}", "name": "离线小样", "qty": 1, "role": "sample", "barcodes": [codes["sample"]]},
    ]
    integration = server.new_token("integration", "e2e-offline-returns-oms")
    packer = server.new_token("packer", "e2e-offline-returns-packer")
    qc = server.new_token("qc", "e2e-offline-returns-qc")
    status, body = call(server, integration, "POST", "/api/v1/orders", {
        "order_no": order_no, "channel": "e2e", "warehouse": "JX", "waybill_no": waybill,
        "customer": {"name": "赵六"}, "lines": lines})
    assert status == 201, body
    status, body = server.api("POST", "/api/v1/waves", {"wave_no": f"W-ROFF-{suffix}",
                                                             "order_nos": [order_no], "station": "P02"})
    assert status == 200, body
    for code in (waybill, codes["main"], codes["sample"]):
        status, body = call(server, packer, "POST", "/api/v1/scans", {
            "scan_id": uuid.uuid4().hex, "station": "P02", "device_id": f"E2E-{suffix}", "code": code})
        assert status == 200 and body["ok"], body
    status, body = call(server, qc, "POST", "/api/v1/returns",
                        {"order_no": order_no, "reason": "客户退货"})
    assert status in (200, 201), body
    return {"rma_no": body["rma_no"], "trace_code": body["trace_code"], "codes": codes, "qc": qc,
            "lines": lines}


def is_problem(msg: Any) -> bool:
    """CSP refusals and script errors; failed loads while offline are the point of the test."""
    text = msg.text
    if "Content Security Policy" in text or "Refused to" in text:
        return True
    return msg.type == "error" and "Failed to load resource" not in text and "WebSocket connection" not in text


def scan(page: Any, code: str) -> str:
    verdict = page.locator("#verdict")
    before = int(verdict.get_attribute("data-count") or 0)
    expect(page.locator("#scan-input")).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    expect(verdict).not_to_have_attribute("data-count", str(before))
    expect(verdict).not_to_have_attribute("data-verdict", "")
    return verdict.get_attribute("data-verdict") or ""


def test_qc_screen_queues_scans_offline_and_reconciles(device: Any, server: Any,
                                                       open_return: dict[str, Any]) -> None:
    codes, rma_no = open_return["codes"], open_return["rma_no"]
    page = device.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if is_problem(msg) else None)
    page.goto("/login")
    page.fill("#username", "qc1")
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("#login-submit")
    page.goto("/returns")
    wait_for_service_worker(page)
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")

    assert scan(page, open_return["trace_code"]) == "opened"
    expect(page.locator("body")).to_have_attribute("data-rma", rma_no)

    device.set_offline(True)
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    # A colleague records the main item from another device meanwhile.
    status, body = call(server, open_return["qc"], "POST", f"/api/v1/returns/{rma_no}/scans",
                        {"scan_id": uuid.uuid4().hex, "code": codes["main"], "condition": "resellable"})
    assert status == 200 and body["verdict"] == "matched", body

    assert scan(page, codes["main"]) == "matched"          # the server will say over_returned
    expect(page.locator("#verdict")).to_have_attribute("data-provisional", "1")
    expect(page.locator("#offline-banner")).to_be_visible()
    assert scan(page, codes["foreign"]) == "foreign_item"
    expect(page.locator("#verdict")).to_have_class(re.compile(r"\bbad\b"))
    assert scan(page, codes["sample"]) == "matched"
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "3")
    expect(page.locator('#lines li[data-sku="%s"]' % open_return["lines"][1]["sku"])).to_have_class(
        re.compile(r"\brq-provisional\b"))
    queued = page.evaluate(QUEUE_JS)
    assert [(q["code"], q["provisional"]) for q in queued] == [
        (codes["main"], "matched"), (codes["foreign"], "foreign_item"), (codes["sample"], "matched")]

    device.set_offline(False)
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "0", timeout=30_000)
    expect(page.locator("#offline-banner")).to_be_hidden()
    assert page.evaluate(QUEUE_JS) == []
    scans = server.get(f"/api/v1/returns/{rma_no}")["scans"]
    ours = [s for s in scans if s["scan_id"] in {q["scan_id"] for q in queued}]
    assert [s["scan_id"] for s in ours] == [q["scan_id"] for q in queued]
    assert [s["verdict"] for s in ours] == ["over_returned", "foreign_item", "matched"]
    assert len(scans) == 4

    refused = page.locator(f"#offline-log li[data-scan-id='{queued[0]['scan_id']}']")
    expect(refused).to_have_attribute("data-state", "refused")
    expect(refused).to_have_attribute("data-server-code", "over_returned")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-reconciled", "refused")
    expect(verdict).to_contain_text("离线乳液")
    expect(verdict).to_have_class(re.compile(r"\bbad\b"))
    main_line = page.locator('#lines li[data-sku="%s"]' % open_return["lines"][0]["sku"])
    expect(main_line).to_have_attribute("data-result", "over_returned")
    assert problems == [], f"script or CSP errors: {problems}"
    page.close()
