"""Offline, a double read of a GS1 label the handheld cannot check whole (it waits for the
server) says that again, "not counted", never the grey "counted once": the server may refuse
the first read, and back online it does (invalid_gs1), its double read with it."""
from __future__ import annotations

import re
from typing import Any

import pytest
from offline_servers import device, server  # noqa: F401 - fixtures
from test_offline_rules import new_order, open_then_go_offline, scan

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def test_an_offline_double_read_of_an_unchecked_label_is_not_counted(device: Any, server: Any) -> None:
    order = new_order(server)
    page = device.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_then_go_offline(device, page, order["order_no"], "PDA-0FF9")
    verdict = page.locator("#verdict")
    # A net weight (AI 3103) one digit short: the handheld does not check AI 3103, the server
    # refuses the label whole.
    label = f"]C101{order['gtin']}3103000"
    assert scan(page, label) == ("unknown_offline", "1")
    assert scan(page, label) == ("duplicate_read", "1")
    expect(verdict).to_have_class(re.compile(r"\bunknown\b"))
    expect(verdict).to_contain_text("not counted")
    assert "counted once" not in verdict.inner_text()
    expect(page.locator('#kit li[data-role="main"]')).to_have_attribute("data-scanned", "0")

    device.set_offline(False)
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "0", timeout=30_000)
    scans = server.get(f"/api/v1/orders/{order['order_no']}")["scans"][1:]
    assert [s["verdict"]["code"] for s in scans] == ["invalid_gs1", "duplicate_read"]
    assert "not counted" in scans[1]["verdict"]["message"]
    assert errors == []
    page.close()
