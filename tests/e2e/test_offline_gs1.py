"""The handhelds' GS1 reader (static/js/gs1.js, used by the pack and returns screens offline)
agrees with the server's normaliser and never half-reads: a read the server refuses
(`invalid_gs1`, a case or pallet label, a Digital Link, a '<GS>' the scanner profile decides)
is `unsure` in the browser, left to the server; a read it checks itself gives the server's lot,
serial, expiry and item keys. Then on the pack screen, offline: a label with 30 February after
a good GTIN is not accepted provisionally, and the server refuses it when the queue is sent."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from offline_servers import device, server  # noqa: F401 - fixtures
from test_offline_rules import DEVICE, new_order, open_then_go_offline, scan

from floor.scan.domain import normalise

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

GS1_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "gs1.js"
GTIN = "09506000134352"
SSCC = "106141412345678908"
G = "\x1d"
VECTORS = [
    # Read whole by both.
    f"]C101{GTIN}17271231{G}10L2026A", f"]C101{GTIN}{G}17271231{G}10L2026A",
    f"]C101{GTIN}17270200", f"]C101{GTIN}17280229", f"]C101{GTIN}10A<B>{G}21S-1",
    f"01{GTIN}10LOT", f"]J101{GTIN}21S1", f"]d201{GTIN}10{'A' * 20}", f"]C1{G}01{GTIN}10A{G}10A",
    f"]C101{GTIN}10LOT-9{{GS}}17291231", f"]C101{GTIN}10LOT-9^]17291231",
    "6901234567892", "96385074", "SF1400000000000", "01234567890123456789", "2026112200017",
    "https://example.com/news/2024", "ZY-SERUM-30",
    # Refused by the server: the browser must not read a GTIN out of them.
    f"]C101{GTIN}17270230", f"]C101{GTIN}17270229", f"]C101{GTIN}17271301", f"]C101{GTIN}17270031",
    f"]C101{GTIN}23ABC", f"]C1{GTIN}", f"]C101{GTIN[:-1]}", f"]C101{GTIN}172701",
    f"]C101{GTIN[:-1]}3", f"]C101{GTIN}10{'A' * 21}", f"]C101{GTIN}10AB CD", f"]C101{GTIN}10AB#CD",
    f"]C101{GTIN}10A{G}10B", f"]C101{GTIN}10{G}21X", f"01{GTIN}17270230", f"]e001{GTIN}99",
    f"]C102{GTIN}", f"]C13712", f"]C101{GTIN}{G}7006270200",
    # Valid, but the server's word is needed: a case, a pallet, a Digital Link, another AI,
    # a '<GS>' whose meaning is the scanner profile's.
    f"]C102{GTIN}3712", f"]C100{SSCC}", f"]Q1https://example.com/01/{GTIN}/10/L1?17=271231",
    f"https://example.com/01/{GTIN}?17=270230", f"]C101{GTIN}{G}3103000750",
    f"]C101{GTIN}10LOT-9<GS>17291231",
]


def test_the_handheld_reader_agrees_with_the_server_and_never_half_reads(browser: Any) -> None:
    page = browser.new_page()
    try:
        page.add_script_tag(path=str(GS1_JS))
        reads = page.evaluate("codes => codes.map(c => window.FloorGs1.read(c))", VECTORS)
    finally:
        page.close()
    today = dt.date.today()
    unsure = 0
    for raw, js in zip(VECTORS, reads):
        py = normalise(raw, today=today)
        assert js["text"] == py.text, raw
        if py.gs1_error is not None or (py.gs1 is not None and (py.gs1.count or py.gs1.sscc)):
            assert js["unsure"], f"{raw!r}: the server refuses it ({py.gs1_error}), the handheld read it"
        if js["unsure"]:
            unsure += 1
            continue
        expiry = py.gs1.expiry if py.gs1 else None
        js_expiry = js["expiry"] and page_date(js["expiry"], today)
        assert (js["lot"], js["serial"], js_expiry) == (
            py.gs1.lot if py.gs1 else None, py.gs1.serial if py.gs1 else None, expiry), raw
        assert tuple(js["keys"]) == py.item_keys(), raw
    assert unsure >= 25          # the refused and server-only vectors above


def page_date(yymmdd: str, today: dt.date) -> dt.date:
    from floor.scan.gs1 import date_of
    date = date_of(yymmdd, today)
    assert date is not None
    return date


def test_a_malformed_label_is_not_accepted_offline_and_the_server_refuses_it(device: Any, server: Any) -> None:
    order = new_order(server)
    page = device.new_page()
    open_then_go_offline(device, page, order["order_no"], f"{DEVICE}-G")
    # The wrong lot would show; 30 February hides nothing: the whole label waits for the server.
    feb30 = f"]C101{order['gtin']}10L2{G}17270230"
    assert scan(page, feb30.replace(G, "{GS}")) == ("unknown_offline", "1")
    expect(page.locator("#verdict")).to_contain_text("checked by the server")
    assert scan(page, f"]C101{order['gtin']}10L1") == ("accepted", "1")
    device.set_offline(False)
    expect(page.locator("#offline-banner")).to_have_attribute("data-pending", "0", timeout=30_000)
    detail = server.get(f"/api/v1/orders/{order['order_no']}")
    assert [s["verdict"]["code"] for s in detail["scans"]][1:] == ["invalid_gs1", "accepted"]
    page.close()
