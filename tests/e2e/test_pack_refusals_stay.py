"""A refusal stays on the pack screen until the packer acts, in a real browser on a live server.

A double read of a refused item stays red with the refusal's message ("not counted"), never a
grey "counted once"; an order held or cancelled while it is being packed is announced at once
on the handheld holding it (no scan needed), red, and the announcement stays until the packer
taps it.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from screens import SCREENSHOTS, call, ean13
from test_pack_screen import Scanner, kit_line, login

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

MAIN, SAMPLE, GIFTBOX, STRANGER = (ean13(f"69130000000{n}") for n in (1, 2, 3, 9))


def _order(order_no: str, waybill: str | None, lines: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"order_no": order_no, "channel": "taobao", "warehouse": "JX",
            "customer": {"name": "李四", "phone": "13900000000", "address": "南昌"}, "lines": lines}
    if waybill:
        body["waybill_no"] = waybill
    return body


KIT = [{"sku": "A13-SERUM", "name": "精华液 A13", "qty": 1, "role": "main", "barcodes": [MAIN]},
       {"sku": "A13-SAMPLE", "name": "试用装 A13", "qty": 2, "role": "sample", "barcodes": [SAMPLE]},
       {"sku": "A13-BOX", "name": "礼盒 A13", "qty": 1, "role": "giftbox", "barcodes": [GIFTBOX]}]


@pytest.fixture(scope="module")
def orders(live_server: Any) -> dict[str, str]:
    """Three orders of one wave at stations P51/P52 of the demo warehouse, and an item that is
    in no wave (a wrong item for all of them). Answers order_no -> waybill."""
    oms = live_server.new_token("integration", "e2e-refusals")
    for station in ("P51", "P52"):
        status, body = live_server.api("PUT", f"/api/v1/stations/{station}", {"warehouse": "JX"})
        assert status == 200, body
    waybills = {f"A13-{n}": f"SF51300000000{n}" for n in (1, 2, 3)}
    for order_no, waybill in waybills.items():
        status, body = call(live_server, oms, "POST", "/api/v1/orders", _order(order_no, waybill, KIT))
        assert status in (200, 201), body
    status, body = call(live_server, oms, "POST", "/api/v1/orders", _order("A13-9", None, [
        {"sku": "A13-MIRROR", "name": "随身镜 A13", "qty": 1, "role": "gift", "barcodes": [STRANGER]}]))
    assert status in (200, 201), body
    status, body = call(live_server, oms, "POST", "/api/v1/waves",
                        {"wave_no": "W-A13", "order_nos": list(waybills), "station": "P51"})
    assert status == 200, body
    return waybills


def _open_screen(handheld: Any, user: str, station: str) -> Any:
    page = handheld.new_page()
    login(page, user)
    page.goto("/pack")
    page.select_option("#station", station)
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    expect(page.locator("body")).to_have_attribute("data-station-room", station)
    return page


def test_a_double_read_of_a_refused_item_stays_red(handheld: Any, live_server: Any,
                                                  orders: dict[str, str]) -> None:
    page = _open_screen(handheld, "packer1", "P51")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    scanner = Scanner(page)
    verdict = page.locator("#verdict")
    scanner.scan(orders["A13-1"], "order_opened")

    # The wrong item read twice in a burst: the second read is a duplicate_read of a refusal.
    scanner.scan(STRANGER, "duplicate_read", reads=2)
    expect(verdict).to_have_class(re.compile(r"\bbad\b"))
    expect(verdict).to_have_attribute("data-repeats", "wrong_item")
    expect(verdict).to_contain_text("随身镜 A13")        # the refusal's own message
    expect(verdict).to_contain_text("未计数")
    assert "只计一次" not in verdict.inner_text()
    expect(page.locator("#flash")).to_have_class(re.compile(r"\bbad\b"))
    # Nothing later overwrites it: the screen still says so once the flash is gone.
    expect(page.locator("#flash")).to_be_hidden()
    expect(verdict).to_have_class(re.compile(r"\bbad\b"))
    expect(verdict).to_contain_text("随身镜 A13")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pack-double-read.png"), animations="disabled")

    # The gift box too early, read twice: still refused, the missing lines still marked.
    scanner.scan(GIFTBOX, "duplicate_read", reads=2)
    expect(verdict).to_have_class(re.compile(r"\bbad\b"))
    expect(verdict).to_have_attribute("data-repeats", "giftbox_incomplete")
    expect(kit_line(page, "A13-SAMPLE")).to_have_class(re.compile(r"\bmissing\b"))
    expect(kit_line(page, "A13-BOX")).to_have_attribute("data-scanned", "0")

    # A double read of an accepted item is still the grey "counted once".
    scanner.scan(MAIN, "duplicate_read", reads=2)
    expect(verdict).to_have_class(re.compile(r"\bneutral\b"))
    expect(verdict).to_have_attribute("data-repeats", "accepted")
    expect(kit_line(page, "A13-SERUM")).to_have_attribute("data-scanned", "1")
    assert errors == [], errors
    page.close()


def test_a_hold_and_a_cancel_are_announced_without_a_scan(handheld: Any, live_server: Any,
                                                         orders: dict[str, str]) -> None:
    page = _open_screen(handheld, "packer2", "P52")
    scanner = Scanner(page)
    verdict, panel = page.locator("#verdict"), page.locator("#stop-panel")
    scanner.scan(orders["A13-2"], "order_opened")
    scanner.scan(MAIN, "accepted")
    expect(panel).to_be_hidden()
    count = scanner.count()

    status, body = live_server.api("POST", "/api/v1/orders/A13-2/events",
                                   {"event": "hold", "reason": "客户来电改地址"})
    assert status == 200, body
    # No scan: the push alone turns the screen red and says why.
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-status", "on_hold")
    expect(panel).to_contain_text("A13-2")
    expect(panel).to_contain_text("客户来电改地址")
    expect(verdict).to_have_attribute("data-code", "order_on_hold")
    expect(verdict).to_have_class(re.compile(r"\bbad\b"))
    expect(verdict).to_have_attribute("data-count", str(count + 1))
    expect(page.locator("#flash")).to_have_class(re.compile(r"\bbad\b"))
    # It stays until the packer acts on it: a scan meanwhile is refused and the panel stays.
    scanner.scan(SAMPLE, "order_blocked")
    expect(panel).to_be_visible()
    page.click("#stop-ack")
    expect(panel).to_be_hidden()
    expect(page.locator("#scan-input")).to_be_focused()

    # Released: the packer may carry on. Then cancelled while still open: take the items out.
    status, body = live_server.api("POST", "/api/v1/orders/A13-2/events",
                                   {"event": "release", "reason": "地址已确认"})
    assert status == 200, body
    expect(verdict).to_have_attribute("data-code", "order_released")
    expect(verdict).to_contain_text("A13-2")
    scanner.scan(SAMPLE, "accepted")
    status, body = live_server.api("POST", "/api/v1/orders/A13-2/events",
                                   {"event": "cancel", "reason": "客户退款"})
    assert status == 200, body
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-status", "cancelled")
    expect(panel).to_contain_text("取出")
    expect(page.locator("#flash")).to_be_hidden()
    page.screenshot(path=str(SCREENSHOTS / "pack-cancelled.png"), animations="disabled")
    expect(verdict).to_have_attribute("data-code", "order_cancelled")
    # The session the cancel closed empties the kit on screen; the announcement stays.
    expect(page.locator("#order")).to_be_hidden()
    expect(panel).to_be_visible()
    expect(verdict).to_have_attribute("data-code", "order_cancelled")
    page.close()
