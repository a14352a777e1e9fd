"""The pack screen through a network drop, in a real browser against a live server.

A packer opens a fresh order online and scans two items. The handheld goes offline (the browser
context's network is cut, and the page closes its socket on the `offline` event). Meanwhile a
supervisor credits the order's gift line by overriding a refused scan, which the handheld cannot
know. Offline, the packer scans the main item again, a stranger, the gift (a provisional accept
the server will refuse: the line is already full there) and the sample; every scan gets an
immediate provisional verdict, marked as such. The page is reloaded while still offline: the
service worker serves it and its assets, IndexedDB still holds the queue and the kit snapshot,
and a last offline scan (the gift box) is checked against that snapshot. Back online, the queue
is replayed in order: the server recorded each scan exactly once and in the order made, the
refused gift turned red and was announced (message naming it, vibration), the order is packed,
and only then is the queue empty. No script or CSP errors.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import pytest
from offline_servers import device, server, wait_for_service_worker  # noqa: F401 - fixtures
from screens import DEMO_PASSWORD, SCREENSHOTS, call, ean13

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

STATION = "P01"
DEVICE = "PDA-0FF1"

# Records what the page asks the vibration motor for (the announcement of a refusal is one).
RECORD_VIBRATIONS = """
window.__vibrations = [];
navigator.vibrate = function (pattern) { window.__vibrations.push(pattern); return true; };
"""

QUEUE_JS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("floor-pack");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const db = open.result;
    if (!db.objectStoreNames.contains("scans")) { db.close(); resolve([]); return; }
    const req = db.transaction("scans").objectStore("scans").index("seq").getAll();
    req.onsuccess = () => { db.close(); resolve(req.result.map(e => ({
      scan_id: e.scan_id, seq: e.seq, code: e.payload.code,
      provisional: e.provisional && e.provisional.code }))); };
    req.onerror = () => reject(req.error);
  };
})"""


@pytest.fixture(scope="module")
def fresh_order(server: Any) -> dict[str, Any]:
    """An order of its own (main ×2, sample, gift, gift box) in a wave, and a stranger: an item
    of another order, so the server knows the code but not in this kit."""
    suffix = uuid.uuid4().hex[:6].upper()
    prefix = str(int(suffix, 16) % 10**6).zfill(6)
    codes = {role: ean13(f"697{prefix}{n:03d}") for n, role in
             enumerate(("main", "sample", "gift", "giftbox", "stranger"))}
    order_no, waybill = f"OFF-{suffix}", f"YT9{int(suffix, 16) % 10**12:012d}"
    lines = [
        {"sku": f"OFF-SERUM-{suffix}", "name": "离线精华液", "qty": 2, "role": "main", "barcodes": [codes["main"]]},
        {"sku": f"OFF-SAMPLE-{suffix}", "name": "离线试用装", "qty": 1, "role": "sample", "barcodes": [codes["sample"]]},
        {"sku": f"OFF-MIRROR-{suffix}", "name": "离线随身镜", "qty": 1, "role": "gift", "barcodes": [codes["gift"]]},
        {"sku": f"OFF-BOX-{suffix}", "name": "离线礼盒", "qty": 1, "role": "giftbox", "barcodes": [codes["giftbox"]]},
    ]
    other_no = f"OFF-O-{suffix}"
    integration = server.new_token("integration", "e2e-offline-oms")
    for number, bill, kit in ((order_no, waybill, lines), (other_no, None, [
            {"sku": f"OFF-CREAM-{suffix}", "name": "别单面霜", "qty": 1, "role": "main",
             "barcodes": [codes["stranger"]]}])):
        body = {"order_no": number, "channel": "e2e", "warehouse": "JX", "customer": {"name": "王五"},
                "lines": kit}
        if bill:
            body["waybill_no"] = bill
        status, answer = call(server, integration, "POST", "/api/v1/orders", body)
        assert status == 201, answer
    status, answer = server.api("POST", "/api/v1/waves", {
        "wave_no": f"W-OFF-{suffix}", "order_nos": [order_no, other_no], "station": STATION})
    assert status == 200, answer
    return {"order_no": order_no, "waybill": waybill, "codes": codes, "lines": lines}


def is_problem(msg: Any) -> bool:
    """CSP refusals and script errors. While offline the browser logs the failed requests
    (socket reconnects, the scan POSTs) as failed loads: those are the point of the test."""
    text = msg.text
    if "Content Security Policy" in text or "Refused to" in text:
        return True
    return msg.type == "error" and "Failed to load resource" not in text and "ERR_INTERNET_DISCONNECTED" not in text \
        and "WebSocket connection" not in text


def login(page: Any, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("#login-submit")
    assert "/login" not in page.url, f"login as {username} failed"


def scan(page: Any, code: str, *expected: str) -> str:
    verdict = page.locator("#verdict")
    before = int(verdict.get_attribute("data-count") or 0)
    expect(page.locator("#scan-input")).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    expect(verdict).to_have_attribute("data-count", str(before + 1))
    got = verdict.get_attribute("data-code") or ""
    if expected:
        assert got in expected, f"scan {code}: {got!r} ({verdict.inner_text()}), expected {expected}"
    return got


def utc(iso: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(iso)
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


def queue(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(QUEUE_JS)


def line(page: Any, sku: str) -> Any:
    return page.locator(f'#kit li[data-sku="{sku}"]')


def test_pack_screen_keeps_working_through_a_network_drop(device: Any, server: Any,
                                                          fresh_order: dict[str, Any]) -> None:
    order_no, codes = fresh_order["order_no"], fresh_order["codes"]
    sku = {item["role"]: item["sku"] for item in fresh_order["lines"]}
    device.add_init_script(RECORD_VIBRATIONS)
    page = device.new_page()
    # A database outage to come: while `on`, the socket is refused and scans answer 503. Routed
    # from the start, so that no socket opened earlier slips past.
    outage = {"on": False, "answered": 0}

    def socket_while_down(ws: Any) -> None:
        if outage["on"]:
            ws.close()
        else:
            ws.connect_to_server()

    def scans_while_down(route: Any) -> None:
        if outage["on"]:
            outage["answered"] += 1
            route.fulfill(status=503, json={"code": "database_unavailable", "message": "The database does not answer."})
        else:
            route.continue_()

    page.route_web_socket(re.compile(r"/socket\.io/"), socket_while_down)
    page.route("**/api/v1/scans", scans_while_down)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if is_problem(msg) else None)
    login(page, "packer1")
    page.goto("/pack")
    page.evaluate(f"localStorage.setItem('floor.device_id', '{DEVICE}'); "
                  f"localStorage.setItem('floor.station', '{STATION}')")
    # The service worker takes the page over; the next load goes through it and is kept.
    wait_for_service_worker(page)
    expect(page.locator("#device-id")).to_have_text(DEVICE)
    expect(page.locator("#station")).to_have_value(STATION)
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")

    # Online: the order opens, a main item counts, a stranger is refused.
    scan(page, fresh_order["waybill"], "order_opened")
    scan(page, codes["main"], "accepted")
    stranger = scan(page, codes["stranger"], "other_order", "wrong_item")
    expect(page.locator("#offline-banner")).to_be_hidden()
    refused_online = server.get(f"/api/v1/orders/{order_no}")["scans"][-1]
    assert refused_online["verdict"]["code"] == stranger

    # The network drops: the page notices and closes its socket.
    device.set_offline(True)
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    assert page.evaluate("navigator.onLine") is False
    # Meanwhile a supervisor credits the gift line by overriding the refused stranger.
    gift_line = next(item for item in server.get(f"/api/v1/orders/{order_no}")["snapshot"]["lines"]
                     if item["role"] == "gift")
    status, body = server.api("POST", f"/api/v1/scans/{refused_online['scan_id']}/override",
                                   {"reason_code": "substitute_approved", "line_no": gift_line["line_no"],
                                    "note": "e2e offline"})
    assert status == 200, body

    # Offline scans: each one a provisional verdict at once, from the kit snapshot on screen.
    scan(page, codes["main"], "accepted")
    expect(page.locator("#verdict")).to_have_attribute("data-provisional", "1")
    expect(page.locator("#flash")).to_have_attribute("data-provisional", "1")
    expect(page.locator("#offline-banner")).to_be_visible()
    expect(line(page, sku["main"])).to_have_attribute("data-scanned", "2")
    expect(line(page, sku["main"])).to_have_class(re.compile(r"\bprovisional\b"))
    scan(page, codes["stranger"], "wrong_item")
    expect(page.locator("#verdict")).to_have_class(re.compile(r"\bbad\b.*\bprovisional\b"))
    scan(page, codes["gift"], "accepted")       # the server will say over_scan
    scan(page, codes["sample"], "accepted")
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "4")
    expect(page.locator("#offline-log li[data-state='pending']")).to_have_count(4)
    assert [entry["code"] for entry in queue(page)] == [codes["main"], codes["stranger"], codes["gift"],
                                                        codes["sample"]]

    # A reload while still offline: the worker serves the page, IndexedDB the queue and the kit.
    response = page.reload()
    assert response is not None and response.ok
    assert response.headers.get("x-floor-offline-copy") == "1", "the page did not come from the worker's copy"
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "4")
    expect(page.locator("#order-no")).to_have_text(order_no)
    expect(line(page, sku["gift"])).to_have_attribute("data-scanned", "1")
    expect(line(page, sku["sample"])).to_have_attribute("data-scanned", "1")
    expect(page.locator("#offline-log li[data-state='pending']")).to_have_count(4)
    # The gift box closes the kit, checked against the snapshot that survived the reload.
    scan(page, codes["giftbox"], "accepted")
    expect(page.locator("#verdict")).to_have_attribute("data-provisional", "1")
    expect(page.locator("#packed-panel")).to_be_hidden()      # not packed until the server says so
    expect(page.locator("#flash")).to_be_hidden()
    page.evaluate("window.scrollTo(0, 0)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pack-offline.png"), animations="disabled")
    queued = queue(page)
    assert len(queued) == 5, queued
    assert [entry["provisional"] for entry in queued] == ["accepted", "wrong_item", "accepted", "accepted",
                                                          "accepted"]
    # Nothing reached the server while offline.
    recorded = {scan["scan_id"] for scan in server.get(f"/api/v1/orders/{order_no}")["scans"]}
    assert not recorded & {entry["scan_id"] for entry in queued}

    # The network is back but the database is not: a 503 is no answer, the queue keeps every
    # scan and tries again with backoff. (The socket is refused meanwhile, so the scans go the
    # HTTP way.)
    outage["on"] = True
    device.set_offline(False)
    for _ in range(200):
        if outage["answered"] >= 2:
            break
        page.wait_for_timeout(100)   # pacing while the page retries, not an assertion
    assert outage["answered"] >= 2, "the queue did not retry after a 503"
    assert [entry["scan_id"] for entry in queue(page)] == [entry["scan_id"] for entry in queued]
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "5")
    recorded = {scan["scan_id"] for scan in server.get(f"/api/v1/orders/{order_no}")["scans"]}
    assert not recorded & {entry["scan_id"] for entry in queued}

    # The database is back: replayed in order; the server's answers are final.
    back_online = dt.datetime.now(dt.timezone.utc)
    outage["on"] = False
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "0", timeout=30_000)
    expect(page.locator("#offline-banner")).to_be_hidden()
    assert queue(page) == []
    scans = server.get(f"/api/v1/orders/{order_no}")["scans"]
    ids = [scan["scan_id"] for scan in scans]
    replayed = [scan for scan in scans if scan["scan_id"] in {entry["scan_id"] for entry in queued}]
    assert [scan["scan_id"] for scan in replayed] == [entry["scan_id"] for entry in queued]
    assert all(ids.count(entry["scan_id"]) == 1 for entry in queued)
    assert [scan["verdict"]["code"] for scan in replayed] == ["accepted", stranger, "over_scan", "accepted",
                                                             "accepted"]
    assert all(scan["device_id"] == DEVICE for scan in replayed)
    # Recorded at the time they were made offline, not when they reached the server.
    for row in replayed:
        assert utc(row["at"]) < back_online <= utc(row["received_at"]), row
    assert server.get(f"/api/v1/orders/{order_no}")["status"] == "packed"

    # The provisional accept the server refused: red, and announced with its name and the reason.
    gift_item = page.locator(f"#offline-log li[data-scan-id='{queued[2]['scan_id']}']")
    expect(gift_item).to_have_attribute("data-state", "refused")
    expect(gift_item).to_have_attribute("data-server-code", "over_scan")
    expect(gift_item).to_have_css("background-color", "rgb(185, 28, 28)")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-reconciled", "refused")
    expect(verdict).to_have_attribute("data-code", "over_scan")
    expect(verdict).to_contain_text("离线随身镜")
    expect(verdict).to_have_class(re.compile(r"\bbad\b"))
    expect(line(page, sku["gift"])).to_have_class(re.compile(r"\brefused\b"))
    assert [200, 100, 200] in page.evaluate("window.__vibrations")
    # The others were confirmed as they were shown (the stranger: refused then, refused now).
    for entry in (queued[0], queued[1], queued[3], queued[4]):
        expect(page.locator(f"#offline-log li[data-scan-id='{entry['scan_id']}']")).to_have_attribute(
            "data-state", "confirmed")
    expect(page.locator("#packed-panel")).to_be_visible()
    expect(line(page, sku["gift"])).to_have_attribute("data-scanned", "1")   # the server's count
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    expect(page.locator("#flash")).to_be_hidden()
    page.evaluate("window.scrollTo(0, document.getElementById('offline-log').offsetTop - 300)")
    page.screenshot(path=str(SCREENSHOTS / "pack-offline-reconciled.png"), animations="disabled")
    assert problems == [], f"script or CSP errors: {problems}"
    page.close()
