"""The supervisor's stock screen in a real browser against a live server.

Levels set over the API show with the low one highlighted; a CSV uploaded through the page's
form (CSRF token included) changes them, a low row turns amber and a restocked one back to
normal; a CSV with a bad line applies nothing and names the line. No script errors, no CSP
refusals; Chinese by default, English on request.
"""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from screens import DEMO_PASSWORD, SCREENSHOTS

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

AMBER = "rgb(254, 243, 199)"          # --warn-bg


def is_problem(msg: Any) -> bool:
    text = msg.text
    return "Content Security Policy" in text or "Refused to" in text or msg.type == "error"


def csv_file(text: str) -> dict[str, Any]:
    return {"name": "stock.csv", "mimeType": "text/csv", "buffer": text.encode("utf-8")}


def test_stock_screen_upload_and_low_rows(browser: Any, live_server: Any) -> None:
    suffix = uuid.uuid4().hex[:6].upper()
    box, gift = f"E2E-BOX-{suffix}", f"E2E-GIFT-{suffix}"
    status, body = live_server.api("PUT", "/api/v1/stock", {"warehouse": "JX", "items": [
        {"sku": box, "on_hand": 2, "low_threshold": 5}]})
    assert status == 200, body

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url,
                                  locale="zh-CN")
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if is_problem(msg) else None)
    try:
        page.goto("/login")
        page.fill("#username", "super1")
        page.fill("#password", DEMO_PASSWORD)
        with page.expect_navigation():
            page.click("#login-submit")
        page.goto("/stock?warehouse=JX")
        expect(page.locator("#levels-title")).to_contain_text("库存水平")
        low = page.locator(f'tr[data-sku="{box}"]')
        expect(low).to_have_attribute("data-level", "yellow")
        expect(low).to_have_css("background-color", AMBER)

        # A CSV through the form: the gift goes low, the box is restocked.
        page.set_input_files("#upload-file", csv_file(
            f"\ufeffsku,on_hand,low_threshold\r\n{gift},1,3\r\n{box},40,\r\n"))
        with page.expect_navigation():
            page.click("#upload-submit")
        expect(page.locator("#upload-result")).to_be_visible()
        expect(page.locator(f'tr[data-sku="{gift}"]')).to_have_attribute("data-level", "yellow")
        expect(page.locator(f'tr[data-sku="{gift}"]')).to_have_css("background-color", AMBER)
        expect(page.locator(f'tr[data-sku="{box}"]')).to_have_attribute("data-level", "ok")
        expect(page.locator(f'tr[data-sku="{box}"] .on-hand')).to_have_text("40")
        expect(page.locator('#movements tr[data-reason="upload"]').first).to_be_visible()
        if SCREENSHOTS.name == "screenshots":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "stock.png"), full_page=True, animations="disabled")

        # A bad line: nothing applied, the line named.
        page.set_input_files("#upload-file", csv_file(f"sku,on_hand\n{box},7\n{gift},lots\n"))
        with page.expect_navigation():
            page.click("#upload-submit")
        errors = page.locator("#upload-errors")
        expect(errors).to_be_visible()
        expect(errors.locator('li[data-line="3"]')).to_contain_text(gift)
        expect(page.locator(f'tr[data-sku="{box}"] .on-hand')).to_have_text("40")

        # English on request.
        page.click("a.lang-link")
        expect(page.locator("#levels-title")).to_contain_text("Stock levels")
    finally:
        context.close()
    # The bad upload answers 400 by design; the browser logs that as a failed load.
    assert [p for p in problems if "status of 400" not in p] == []
