"""The handheld pack screen in a real browser against a live server with the demo data.

A packer at station P01 opens an order by its waybill, is refused a foreign item and an early
gift box, packs every line and closes the kit with the gift box; the order is then `packed`.
Also: the screen fits a 360 px handheld in both languages; a lost Socket.IO ack is retried
over HTTP with the same scan_id and counted once; with no socket at all scans go over HTTP;
a supervisor's override made elsewhere reaches the handheld live.

The scanner is simulated the way a keyboard-wedge scanner works: characters, then Enter, into
whatever has the focus (so the scan field must keep it).
"""
from __future__ import annotations

import re
import time
from typing import Any

import pytest
from screens import DEMO_PASSWORD, SCREENSHOTS

pytestmark = pytest.mark.e2e


expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

# The server counts the same code from the same device inside FLOOR_SCAN_DEBOUNCE_MS (500 ms by
# default) once; scanning one item twice on purpose waits a little longer than that.
DEBOUNCE_S = 0.65
ITEM_ROLES = ("main", "sample", "gift")


def login(page: Any, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#login-submit")
    assert "/login" not in page.url, f"login as {username} failed"


class Scanner:
    """Types like the handheld's built-in scanner and waits for the verdict on screen."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.verdict = page.locator("#verdict")
        self.last: tuple[str, float] | None = None

    def count(self) -> int:
        return int(self.verdict.get_attribute("data-count") or 0)

    def type(self, code: str, paced: bool = True) -> None:
        if paced and self.last and self.last[0] == code:
            wait = DEBOUNCE_S - (time.monotonic() - self.last[1])
            if wait > 0:
                self.page.wait_for_timeout(wait * 1000)  # pacing, not an assertion
        expect(self.page.locator("#scan-input")).to_be_focused()
        self.page.keyboard.type(code)
        self.page.keyboard.press("Enter")
        self.last = (code, time.monotonic())

    def scan(self, code: str, *expected: str, paced: bool = True, reads: int = 1) -> str:
        """`reads` > 1: the scanner reads one label several times in a burst (the screen queues
        them); `expected` is then the verdict of the last read."""
        before = self.count()
        for _ in range(reads):
            self.type(code, paced)
            paced = False
        expect(self.verdict).to_have_attribute("data-count", str(before + reads))
        self.last = (code, time.monotonic())   # the server has it by now: pace from here
        got = self.verdict.get_attribute("data-code") or ""
        if expected:
            message = self.verdict.inner_text()
            assert got in expected, f"scan {code}: verdict {got!r} ({message}), expected {expected}"
        expect(self.page.locator("#scan-input")).to_have_value("")
        return got


def wave_orders(server: Any, wave_no: str) -> list[dict[str, Any]]:
    return server.get(f"/api/v1/waves/{wave_no}")["orders"]


def pick_order(server: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An order of W-0001 with a waybill, a gift box and at least one main or sample line."""
    for order in wave_orders(server, "W-0001"):
        if not order.get("waybill_no") or order["status"] in ("packed", "cancelled", "on_hold"):
            continue
        lines = server.get(f"/api/v1/orders/{order['order_no']}")["snapshot"]["lines"]
        roles = {line["role"] for line in lines}
        if "giftbox" in roles and roles & {"main", "sample"}:
            return order, lines
    pytest.fail("the demo data has no W-0001 order with a waybill, a gift box and items")


def pick_stranger(server: Any, skus: set[str]) -> str:
    """A barcode of another demo order's item whose SKU this order does not contain."""
    for wave_no in ("W-0002", "W-0001", "W-0003"):
        for order in wave_orders(server, wave_no):
            for line in server.get(f"/api/v1/orders/{order['order_no']}")["snapshot"]["lines"]:
                if line["sku"] not in skus and line["role"] in ITEM_ROLES:
                    return line["barcodes"][0]
    pytest.fail("no demo item outside the chosen order")


def kit_line(page: Any, sku: str) -> Any:
    return page.locator(f'#kit li[data-sku="{sku}"]')


def wait_flash_gone(page: Any) -> None:
    expect(page.locator("#flash")).to_be_hidden()


def test_pack_an_order_with_refusals(handheld: Any, live_server: Any) -> None:
    order, lines = pick_order(live_server)
    order_no, waybill = order["order_no"], order["waybill_no"]
    skus = {line["sku"] for line in lines}
    stranger = pick_stranger(live_server, skus)
    giftbox = next(line for line in lines if line["role"] == "giftbox")
    items = [line for line in lines if line["role"] in ITEM_ROLES]

    page = handheld.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "packer1")
    page.goto("/pack")
    # A device id is made once per browser and kept.
    device_id = page.locator("#device-id").inner_text()
    assert re.fullmatch(r"PDA-[0-9A-F]{4}", device_id), device_id
    page.reload()
    expect(page.locator("#device-id")).to_have_text(device_id)
    # A fixed one from here on, so the screenshots come out the same on every run.
    page.evaluate("localStorage.setItem('floor.device_id', 'PDA-0001')")
    page.reload()
    expect(page.locator("#device-id")).to_have_text("PDA-0001")
    page.select_option("#station", "P01")
    scanner = Scanner(page)

    # Blank reads are ignored: nothing is sent, no verdict.
    expect(page.locator("#scan-input")).to_be_focused()
    page.keyboard.type("   ")
    page.keyboard.press("Enter")
    assert scanner.count() == 0

    # The waybill opens the order: its kit becomes the checklist.
    scanner.scan(waybill, "order_opened")
    expect(page.locator("#order-no")).to_have_text(order_no)
    expect(page.locator("#kit li[data-sku]")).to_have_count(len(lines))
    for line in lines:
        row = kit_line(page, line["sku"])
        expect(row).to_have_attribute("data-qty", str(line["qty"]))
        expect(row).to_have_attribute("data-scanned", "0")
    expect(page.locator("#lines-progress")).to_have_text(f"0/{len(lines)}")
    expect(page.locator("#waybill")).to_have_attribute("data-bound", "true")

    # An item of another order: refused, red.
    code = scanner.scan(stranger, "other_order", "wrong_item")
    expect(page.locator("#flash")).to_have_class(re.compile(r"\bbad\b"))
    expect(page.locator("#flash")).to_have_attribute("data-code", code)
    expect(page.locator("#verdict")).to_have_class(re.compile(r"\bbad\b"))

    # The gift box before the items it closes: refused, red, nothing counted.
    scanner.scan(giftbox["barcodes"][0], "giftbox_incomplete")
    expect(page.locator("#flash")).to_have_class(re.compile(r"\bbad\b"))
    expect(kit_line(page, giftbox["sku"])).to_have_attribute("data-scanned", "0")

    # Every item line, qty times, round robin so repeats of one code are spread out.
    scanned = {line["sku"]: 0 for line in items}
    first = items[0]
    shot = False
    while any(scanned[line["sku"]] < line["qty"] for line in items):
        for line in items:
            if scanned[line["sku"]] >= line["qty"]:
                continue
            row = kit_line(page, line["sku"])
            if line is first and scanned[line["sku"]] == 0:
                # A double read of one label counts once: accepted, then grey duplicate_read.
                scanner.scan(line["barcodes"][0], "duplicate_read", reads=2)
                expect(page.locator("#verdict")).to_have_class(re.compile(r"\bneutral\b"))
            else:
                scanner.scan(line["barcodes"][0], "accepted")
            scanned[line["sku"]] += 1
            expect(row).to_have_attribute("data-scanned", str(scanned[line["sku"]]))
            if scanned[line["sku"]] == line["qty"]:
                expect(row).to_have_class(re.compile(r"\bdone\b"))
        if not shot:
            # Mid-packing: every line scanned once, some done, some not.
            wait_flash_gone(page)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "pack-screen.png"), animations="disabled")
            shot = True
    expect(page.locator("#packed-panel")).to_be_hidden()

    # The gift box closes the kit: the order is packed.
    scanner.scan(giftbox["barcodes"][0], "accepted")
    expect(page.locator("#verdict")).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#packed-panel")).to_be_visible()
    expect(page.locator("#packed-panel")).to_contain_text(order_no)
    expect(page.locator("#lines-progress")).to_have_text(f"{len(lines)}/{len(lines)}")
    expect(page.locator("#kit li.done")).to_have_count(len(lines))
    wait_flash_gone(page)
    page.screenshot(path=str(SCREENSHOTS / "pack-packed.png"), animations="disabled")

    detail = live_server.get(f"/api/v1/orders/{order_no}")
    assert detail["status"] == "packed"
    verdicts = [scan["verdict"]["code"] for scan in detail["scans"]]
    assert verdicts.count("order_opened") == 1
    assert {"giftbox_incomplete", code} <= set(verdicts)

    # After a reload the station is remembered and the scan field has the focus again.
    page.reload()
    expect(page.locator("#station")).to_have_value("P01")
    expect(page.locator("#scan-input")).to_be_focused()
    assert errors == [], f"JavaScript errors on the pack screen: {errors}"
    page.close()


def test_pack_screen_fits_a_360px_handheld(handheld: Any, live_server: Any) -> None:
    page = handheld.new_page()
    page.goto("/login")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    login(page, "packer2")
    page.goto("/pack")
    page.select_option("#station", "P02")
    order = next(o for o in wave_orders(live_server, "W-0002") if o.get("waybill_no"))
    Scanner(page).scan(order["waybill_no"], "order_opened")
    expect(page.locator("#kit li[data-sku]").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    font = page.evaluate("parseFloat(getComputedStyle(document.getElementById('scan-input')).fontSize)")
    assert font >= 22

    # English, whose words are longer, fits too; the session comes back after the reload.
    with page.expect_navigation():
        page.click(".lang-link")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#order-no")).to_have_text(order["order_no"])
    expect(page.locator("#scan-input")).to_have_attribute("placeholder", "Scan here")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.close()


def test_scan_falls_back_to_http_with_the_same_scan_id(handheld: Any, live_server: Any) -> None:
    """A lost ack is retried over HTTP with the same scan_id (counted once); with no socket at
    all, scans go over HTTP."""
    order = next(o for o in wave_orders(live_server, "W-0003") if o.get("waybill_no"))
    order_no = order["order_no"]
    lines = live_server.get(f"/api/v1/orders/{order_no}")["snapshot"]["lines"]
    item = next(line for line in lines if line["role"] in ITEM_ROLES)
    socket_io = re.compile(r"/socket\.io/")

    # 1. The socket delivers the scan but its ack never comes back.
    dropped: list[str] = []

    def drop_acks(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def to_page(message: Any) -> None:
            if isinstance(message, str) and message.startswith("43/floor,"):
                dropped.append(message)   # the verdict ack of a `scan`
            else:
                ws.send(message)
        server.on_message(to_page)

    page = handheld.new_page()
    page.route_web_socket(socket_io, drop_acks)
    login(page, "packer3")
    page.goto("/pack")
    page.select_option("#station", "P03")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    scanner = Scanner(page)
    before = scanner.count()
    scanner.type(order["waybill_no"])
    expect(scanner.verdict).to_have_attribute("data-count", str(before + 1), timeout=15_000)
    assert scanner.verdict.get_attribute("data-code") == "order_opened"
    assert dropped, "the ack was not dropped: the test did not exercise the fallback"
    expect(page.locator("#order-no")).to_have_text(order_no)
    scans = live_server.get(f"/api/v1/orders/{order_no}")["scans"]
    opening = [scan for scan in scans if scan["code"] == order["waybill_no"]]
    assert len(opening) == 1, f"the retried scan was recorded {len(opening)} times"
    page.close()

    # 2. No socket at all: the screen says so and scans go over HTTP.
    page = handheld.new_page()
    page.route_web_socket(socket_io, lambda ws: ws.close())
    page.goto("/pack")
    expect(page.locator("#conn")).to_have_attribute("data-state", "http")
    expect(page.locator("#station")).to_have_value("P03")
    expect(page.locator("#order-no")).to_have_text(order_no)   # the session, restored
    Scanner(page).scan(item["barcodes"][0], "accepted")
    expect(kit_line(page, item["sku"])).to_have_attribute("data-scanned", "1")
    scans = live_server.get(f"/api/v1/orders/{order_no}")["scans"]
    assert [scan["verdict"]["code"] for scan in scans if scan["code"] == item["barcodes"][0]] == ["accepted"]
    page.close()


def test_supervisor_override_reaches_the_handheld(handheld: Any, live_server: Any) -> None:
    """A gift box refused for missing items, accepted by a supervisor elsewhere: the handheld
    learns it over its socket and shows the order packed."""
    candidates = [o for o in wave_orders(live_server, "W-0002") if o.get("waybill_no")][1:]
    for order in candidates:
        lines = live_server.get(f"/api/v1/orders/{order['order_no']}")["snapshot"]["lines"]
        roles = {line["role"] for line in lines}
        if "giftbox" in roles and "gift" not in roles:
            break
    else:
        pytest.fail("no W-0002 order with a gift box and no gift line")
    order_no = order["order_no"]
    giftbox = next(line for line in lines if line["role"] == "giftbox")

    page = handheld.new_page()
    login(page, "packer2")
    page.goto("/pack")
    page.select_option("#station", "P02")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    scanner = Scanner(page)
    scanner.scan(order["waybill_no"], "order_opened")
    scanner.scan(giftbox["barcodes"][0], "giftbox_incomplete")

    refused = [scan for scan in live_server.get(f"/api/v1/orders/{order_no}")["scans"]
               if scan["verdict"]["code"] == "giftbox_incomplete"]
    status, body = live_server.api("POST", f"/api/v1/scans/{refused[-1]['scan_id']}/override",
                                   {"reason_code": "stock_out_waived", "note": "e2e"})
    assert status == 200, body
    expect(page.locator("#packed-panel")).to_be_visible()
    expect(page.locator("#packed-panel")).to_contain_text(order_no)
    assert live_server.get(f"/api/v1/orders/{order_no}")["status"] == "packed"
    page.close()


def test_camera_fallback_reads_a_photo_of_the_label(handheld: Any, live_server: Any, tmp_path: Any) -> None:
    """The label will not scan: the packer photographs it; the photo is decoded on the server
    and its code goes through the same scan pipeline."""
    import barcode
    from barcode.writer import ImageWriter

    order = next(o for o in wave_orders(live_server, "W-0003")
                 if o.get("waybill_no") and o["status"] == "wave_assigned")
    photo = barcode.get("code128", order["waybill_no"], writer=ImageWriter()).save(
        str(tmp_path / "label"), {"module_width": 0.4, "dpi": 200})
    page = handheld.new_page()
    login(page, "packer3")
    page.goto("/pack")
    page.select_option("#station", "P03")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    verdict = page.locator("#verdict")
    before = int(verdict.get_attribute("data-count") or 0)
    page.set_input_files("#camera-input", photo)
    expect(verdict).to_have_attribute("data-count", str(before + 1))
    expect(verdict).to_have_attribute("data-code", "order_opened")
    expect(page.locator("#order-no")).to_have_text(order["order_no"])

    # A GS1-128 label whose data opens with (17), not (01): GS1 only by its symbol (]C1), which
    # the photo's answer names and the screen sends along, as a scanner would.
    lines = live_server.get(f"/api/v1/orders/{order['order_no']}")["snapshot"]["lines"]
    line = next(li for li in lines if li["role"] in ("main", "sample") and not li.get("lot")
                and any(len(b) == 13 and b.isdigit() for b in li["barcodes"]))
    ean = next(b for b in line["barcodes"] if len(b) == 13 and b.isdigit())
    photo = barcode.get("gs1_128", "17271231" + "01" + ean.zfill(14), writer=ImageWriter()).save(
        str(tmp_path / "gs1"), {"module_width": 0.4, "dpi": 200})
    page.set_input_files("#camera-input", photo)
    expect(verdict).to_have_attribute("data-count", str(before + 2))
    expect(verdict).to_have_attribute("data-code", "accepted")
    scans = live_server.get(f"/api/v1/orders/{order['order_no']}")["scans"]
    assert scans[-1]["code"].startswith("]C1") and scans[-1]["sku"] == line["sku"], scans[-1]

    page.set_input_files("#camera-input", {"name": "blank.png", "mimeType": "image/png",
                                           "buffer": _blank_png()})
    expect(verdict).to_have_attribute("data-code", "no_barcode")
    page.close()


def _blank_png() -> bytes:
    import cv2
    import numpy as np

    ok, data = cv2.imencode(".png", np.full((200, 300), 255, np.uint8))
    assert ok
    return data.tobytes()
