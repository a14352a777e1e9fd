"""Serial scanners and handheld heartbeats on the screens, against the live server with a real
pty scanner (the server's reader opens it by its path, as it would /dev/serial/by-id/...).

The pack screen at a station doubles as the display of that station's serial scanner: a waybill
read by the scanner opens the order on the screen, an item flashes green with the scanner's id,
a wrong item red. After a lost connection the screen catches up: a verdict older than 10 s
updates the kit without a flash, a fresh one flashes.

The board follows the devices live: a registered scanner's chip goes online, red offline when it
is unplugged, online again when plugged back, and moves with the scanner to another station; a
pack screen's heartbeats put its handheld's chip online. No reload anywhere.

Each test uses stations of its own (made by registering the scanner), so the other browser
tests sharing this server see none of it.
"""
from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from floor_sim.orders import KitProfile, OrderFactory, OrderPusher, SimOrder
from floor_sim.serial_port import PtyScanner

from test_board import board_context, open_board
from test_pack_screen import login

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

WAREHOUSE = "JX"
READER_S = 20          # a registered or replugged scanner is read again within this
CATCHUP_QUIET_S = 10   # the pack screen's limit for flashing a verdict that comes in a catch-up

# Records every verdict flash of the pack screen (the overlay shows for 0.6 s only): kind,
# code, scanner and message, in order.
RECORD_FLASHES = """() => {
  window.__flashes = [];
  const flash = document.getElementById("flash");
  new MutationObserver(() => {
    if (flash.hidden) return;
    window.__flashes.push({
      kind: ["ok", "bad", "neutral"].find((k) => flash.classList.contains(k)) || "",
      code: flash.getAttribute("data-code") || "",
      device: flash.getAttribute("data-device") || "",
      source: document.getElementById("flash-source").textContent,
      message: document.getElementById("flash-message").textContent,
    });
  }).observe(flash, { attributes: true, attributeFilter: ["hidden"] });
}"""


# ---- helpers ---------------------------------------------------------------------------------

def register_scanner(server: Any, device_id: str, station: str, scanner: PtyScanner) -> dict[str, Any]:
    status, body = server.api("POST", "/api/v1/devices", {
        "device_id": device_id, "kind": "serial", "port": str(scanner.link), "station": station,
        "terminator": "CR", "warehouse": WAREHOUSE})
    assert status in (200, 201), body
    return body


def wait_device_state(server: Any, device_id: str, state: str, timeout_s: float = READER_S) -> None:
    deadline = time.monotonic() + timeout_s
    seen: Any = None
    while time.monotonic() < deadline:
        seen = next((d for d in server.get("/api/v1/devices")["devices"] if d["device_id"] == device_id), None)
        if seen and seen["state"] == state:
            return
        time.sleep(0.2)
    pytest.fail(f"{device_id} not {state} within {timeout_s} s: {seen}")


def push_orders(server: Any, station: str, tag: str, count: int) -> list[SimOrder]:
    """Orders of the board's warehouse, three single units each, in a wave of their own."""
    factory = OrderFactory(seed=int(tag), tag=tag, warehouse=WAREHOUSE, channel="sim",
                           profile=KitProfile(main_lines=(3, 3), main_qty=(1, 1), sample_lines=(0, 0),
                                              gift_probability=0, giftbox_probability=0))
    orders = factory.make_orders(count)
    pusher = OrderPusher(server.url, server.new_token("integration", f"e2e-devices-{tag}"), concurrency=1)
    pusher.push_orders(orders)
    pusher.push_wave(f"WS{tag}", [o.order_no for o in orders], station)
    return orders


def scan_and_wait(server: Any, scanner: PtyScanner, code: str, order_no: str) -> None:
    """The scanner reads `code`; returns once the server recorded that read on the order."""
    before = len(server.get(f"/api/v1/orders/{order_no}")["scans"])
    scanner.scan(code)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(server.get(f"/api/v1/orders/{order_no}")["scans"]) > before:
            return
        time.sleep(0.1)
    pytest.fail(f"the scan of {code} never reached order {order_no}")


def flashes(page: Any) -> list[dict[str, str]]:
    return page.evaluate("window.__flashes")


def wait_flashes(page: Any, count: int) -> list[dict[str, str]]:
    page.wait_for_function("n => window.__flashes.length >= n", arg=count)
    return flashes(page)


def kit_line(page: Any, sku: str) -> Any:
    return page.locator(f'#kit li[data-sku="{sku}"]')


def chip(page: Any, device_id: str, station: str | None = None) -> Any:
    row = f'#stations tr[data-station="{station}"]' if station else "#stations"
    return page.locator(f'{row} .device-chip[data-device="{device_id}"]')


# ---- the pack screen as the scanner's display ----------------------------------------------------

def test_pack_screen_shows_the_serial_scanners_verdicts(handheld: Any, live_server: Any, tmp_path: Path) -> None:
    station, scanner_id = "P07", f"SCN-{uuid.uuid4().hex[:4].upper()}"
    order, other = push_orders(live_server, station, "20707", 2)
    items = [line.product for line in order.lines]
    stranger = other.lines[0].product.barcode

    with PtyScanner(tmp_path / "scn", terminator="CR") as scanner:
        register_scanner(live_server, scanner_id, station, scanner)
        wait_device_state(live_server, scanner_id, "online")

        page = handheld.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, "packer3")
        page.goto("/pack")
        page.evaluate("localStorage.setItem('floor.device_id', 'PDA-SCN7')")
        page.reload()
        page.select_option("#station", station)
        expect(page.locator("#conn")).to_have_attribute("data-state", "online")
        expect(page.locator("body")).to_have_attribute("data-station-room", station)
        page.evaluate(RECORD_FLASHES)
        verdict = page.locator("#verdict")

        # The scanner reads the waybill: the order opens on the screen, the scanner named.
        scanner.scan(order.waybill_no)
        expect(verdict).to_have_attribute("data-code", "order_opened")
        expect(verdict).to_have_attribute("data-device", scanner_id)
        expect(verdict.locator(".source-tag")).to_have_text(scanner_id)
        expect(page.locator("#order-no")).to_have_text(order.order_no)
        expect(page.locator("#kit li[data-sku]")).to_have_count(len(items))
        expect(page.locator("#lines-progress")).to_have_text(f"0/{len(items)}")

        # An item of the order: green, with the scanner's id on the flash.
        scanner.scan(items[0].barcode)
        expect(verdict).to_have_attribute("data-code", "accepted")
        expect(verdict).to_have_class(re.compile(r"\bok\b"))
        expect(kit_line(page, items[0].sku)).to_have_attribute("data-scanned", "1")
        expect(page.locator("#lines-progress")).to_have_text(f"1/{len(items)}")
        ok = wait_flashes(page, 2)[-1]
        assert ok["kind"] == "ok" and ok["code"] == "accepted" and ok["device"] == scanner_id, ok
        assert scanner_id in ok["source"], ok

        # Another order's item: red, counted nowhere.
        scanner.scan(stranger)
        expect(verdict).to_have_class(re.compile(r"\bbad\b"))
        expect(verdict).to_have_attribute("data-device", scanner_id)
        bad = wait_flashes(page, 3)[-1]
        assert bad["kind"] == "bad" and bad["code"] in ("other_order", "wrong_item"), bad
        assert scanner_id in bad["source"], bad
        expect(verdict).to_contain_text(scanner_id)
        expect(page.locator("#kit li.done")).to_have_count(1)
        expect(page.locator("#scan-input")).to_be_focused()

        # The screen loses its network. Meanwhile the scanner reads one item, and once that is
        # older than the screen's limit, the last one. Back online, the catch-up brings both:
        # the kit shows both, only the fresh one flashes.
        count = int(verdict.get_attribute("data-count") or 0)
        handheld.set_offline(True)
        expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
        expect(page.locator("body")).to_have_attribute("data-station-room", "")
        scan_and_wait(live_server, scanner, items[1].barcode, order.order_no)
        page.wait_for_timeout((CATCHUP_QUIET_S + 1.5) * 1000)   # makes that verdict old news
        scan_and_wait(live_server, scanner, items[2].barcode, order.order_no)
        assert len(flashes(page)) == 3
        handheld.set_offline(False)
        expect(page.locator("#conn")).to_have_attribute("data-state", "online", timeout=15_000)
        expect(kit_line(page, items[2].sku)).to_have_attribute("data-scanned", "1")
        expect(kit_line(page, items[1].sku)).to_have_attribute("data-scanned", "1")
        expect(page.locator("#packed-panel")).to_be_visible()
        expect(page.locator("#packed-panel")).to_contain_text(order.order_no)
        expect(verdict).to_have_attribute("data-count", str(count + 1))
        last = wait_flashes(page, 4)[-1]     # the last item closes the kit: packed
        assert last["kind"] == "ok" and order.order_no in last["message"], last
        page.wait_for_timeout(500)   # nothing else is on its way
        assert len(flashes(page)) == 4, flashes(page)
        assert not any(items[1].name in f["message"] for f in flashes(page)), flashes(page)
        assert live_server.get(f"/api/v1/orders/{order.order_no}")["status"] == "packed"
        assert errors == [], f"JavaScript errors on the pack screen: {errors}"
        page.close()


# ---- the board follows the devices -----------------------------------------------------------------

def test_board_follows_scanners_and_handhelds_live(browser: Any, handheld: Any, live_server: Any,
                                                   tmp_path: Path) -> None:
    station, moved_to = "P08", "P09"
    scanner_id, handheld_id = f"SCN-{uuid.uuid4().hex[:4].upper()}", "PDA-BRD8"
    context = board_context(browser, live_server.url)
    try:
        board, errors = open_board(context)
        board.evaluate("window.__sameDocument = true")
        with PtyScanner(tmp_path / "scn", terminator="CR") as scanner:
            # Registered after the board opened (its station too): the chip comes with a row.
            register_scanner(live_server, scanner_id, station, scanner)
            scn = chip(board, scanner_id, station)
            expect(scn).to_have_attribute("data-state", "online", timeout=READER_S * 1000)
            expect(scn).to_have_attribute("data-kind", "serial")
            expect(scn.locator("svg.device-kind")).to_have_count(1)
            expect(scn.locator(".device-note")).to_be_hidden()

            # Unplugged: offline, in red, with the reason in its title and in short.
            scanner.unplug()
            expect(scn).to_have_attribute("data-state", "offline", timeout=READER_S * 1000)
            expect(scn).to_have_attribute("title", re.compile(scanner_id + ".*(disconnected|cannot open)"))
            expect(scn.locator(".device-note")).to_be_visible()
            border = scn.evaluate("el => getComputedStyle(el).borderTopColor")
            assert border == "rgb(248, 113, 113)", border

            # Plugged back in: online again.
            scanner.plug()
            expect(scn).to_have_attribute("data-state", "online", timeout=READER_S * 1000)
            expect(scn.locator(".device-note")).to_be_hidden()

            # Moved to another station: the chip moves to that row.
            register_scanner(live_server, scanner_id, moved_to, scanner)
            expect(chip(board, scanner_id, moved_to)).to_have_count(1)
            expect(chip(board, scanner_id, station)).to_have_count(0)
            expect(chip(board, scanner_id, moved_to)).to_have_attribute("data-state", "online",
                                                                        timeout=READER_S * 1000)

            # A pack screen opened at P08: its heartbeat puts its handheld on the board.
            page = handheld.new_page()
            login(page, "packer2")
            page.goto("/pack")
            page.evaluate(f"localStorage.setItem('floor.device_id', '{handheld_id}')")
            page.reload()
            page.select_option("#station", station)
            hh = chip(board, handheld_id, station)
            expect(hh).to_have_attribute("data-state", "online", timeout=10_000)
            expect(hh).to_have_attribute("data-kind", "handheld")
            expect(hh.locator(".device-seen")).to_contain_text(re.compile(r"\d"))
            page.close()

        assert board.evaluate("window.__sameDocument === true"), "the board reloaded"
        assert not errors, errors
    finally:
        context.close()
