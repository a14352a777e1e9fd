"""Offline, a double read of a refused item is that refusal still (red, "not counted"), as the
server answers it: the pack screen's offline check repeats the first read's verdict, and back
online the server's answer for each queued double read agrees."""
from __future__ import annotations

import re
from typing import Any

import pytest
from offline_servers import device, server  # noqa: F401 - fixtures
from test_offline_rules import new_order, open_then_go_offline, scan

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def test_offline_double_reads_repeat_the_first_verdict(device: Any, server: Any) -> None:
    order = new_order(server)
    codes = order["codes"]
    page = device.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_then_go_offline(device, page, order["order_no"], "PDA-0FF7")
    verdict = page.locator("#verdict")
    wrong_lot = f"]C101{order['gtin']}10L2"
    right_lot = f"]C101{order['gtin']}10L1"
    # Each code read twice in a burst (inside the 500 ms window): the second read repeats the first.
    plan = [(right_lot, "accepted", None),
            (wrong_lot, "lot_mismatch", "this order needs lot L1"),
            (codes["giftbox"], "giftbox_incomplete", "Gift box too early")]
    for code, first, said in plan:
        assert scan(page, code) == (first, "1")
        assert scan(page, code) == ("duplicate_read", "1")
        expect(verdict).to_have_attribute("data-repeats", first)
        if said is None:
            expect(verdict).to_have_class(re.compile(r"\bneutral\b"))
            expect(verdict).to_contain_text("counted once")
        else:
            expect(verdict).to_have_class(re.compile(r"\bbad\b"))
            expect(verdict).to_contain_text("not counted")
            expect(verdict).to_contain_text(said)
            assert "counted once" not in verdict.inner_text()
    expect(page.locator('#kit li[data-role="main"]')).to_have_attribute("data-scanned", "1")

    device.set_offline(False)
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "0", timeout=30_000)
    expect(page.locator("#offline-banner")).to_be_hidden()
    # Back online, the refusal last on screen is still there: the all-clear does not cover it.
    expect(verdict).to_have_class(re.compile(r"\bbad\b"))
    expect(verdict).to_contain_text("Gift box too early")
    scans = server.get(f"/api/v1/orders/{order['order_no']}")["scans"][1:]
    assert [s["verdict"]["code"] for s in scans] == [
        "accepted", "duplicate_read", "lot_mismatch", "duplicate_read", "giftbox_incomplete",
        "duplicate_read"]
    assert "counted once" in scans[1]["verdict"]["message"] and "not counted" in scans[5]["verdict"]["message"]
    items = page.locator("#offline-log li").evaluate_all(
        "items => items.map(li => [li.dataset.state, li.dataset.serverCode, li.className])")
    items.reverse()
    assert [state for state, _, _ in items] == ["confirmed"] * 6
    # The server's refused double reads are listed red, the accepted one's grey.
    assert [re.search(r"\b(ok|bad|neutral)\b", cls).group(1) for _, _, cls in items] == [
        "ok", "neutral", "bad", "bad", "bad", "bad"]
    assert errors == []
    page.close()
