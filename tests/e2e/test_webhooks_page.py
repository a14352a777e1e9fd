"""The webhooks page in a real browser: a supervisor finds it from the board, sees a dead letter
and the order's held event, redelivers with the button once the OMS is back, and adds a
receiver (its secret shown once). No console or CSP errors. Screenshot for the docs."""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
import requests
from screens import DEMO_PASSWORD, SCREENSHOTS

from floor_sim.server import LiveServer

pytestmark = pytest.mark.e2e
expect = pytest.importorskip("playwright.sync_api",
                             reason="the playwright package is not installed").expect
SECRET = "whsec_page_test_secret_0123456789"


class Oms:
    """Answers 500 while `down`, else 200; remembers what it acknowledged."""

    def __init__(self) -> None:
        self.down = True
        self.acked: list[dict[str, Any]] = []
        oms = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                status = 500 if oms.down else 200
                if status == 200:
                    oms.acked.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def server() -> Iterator[LiveServer]:
    env = {"FLOOR_WEBHOOK_MAX_ATTEMPTS": "2", "FLOOR_WEBHOOK_MAX_BACKOFF_S": "1",
           "FLOOR_ALERT_INTERVAL_S": "0"}
    with LiveServer(env=env) as live:
        live.floor("seed-demo")
        yield live


def is_problem(msg: Any) -> bool:
    text = msg.text or ""
    if "Content Security Policy" in text or "Refused to" in text:
        return True
    return msg.type == "error" and "Failed to load resource" not in text


def test_a_supervisor_redelivers_a_dead_letter_with_the_button(browser: Any, server: LiveServer
                                                               ) -> None:
    oms = Oms()
    token = server.token("integration", "e2e-webhooks-oms")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    try:
        made = http.post(f"{server.url}/api/v1/webhooks", timeout=10,
                         json={"url": oms.url, "events": ["status"], "secret": SECRET})
        assert made.status_code == 201, made.text
        sub_id = made.json()["id"]
        order = {"order_no": "WH-E2E-1", "channel": "e2e", "warehouse": "JX",
                 "waybill_no": "SF7000000000001",
                 "lines": [{"sku": "ZY-SERUM-30", "name": "精华液 30ml", "qty": 1, "role": "main",
                            "barcodes": ["6901234567892"]}]}
        assert http.post(f"{server.url}/api/v1/orders", json=order, timeout=10).status_code in (200, 201)

        def counts() -> dict[str, int]:
            return http.get(f"{server.url}/api/v1/webhooks/{sub_id}", timeout=10).json()["counts"]

        deadline = time.monotonic() + 30
        while counts()["dead"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert counts()["dead"] == 1
        # The order's next status change waits behind the dead one.
        wave = http.post(f"{server.url}/api/v1/waves", timeout=10, json={
            "wave_no": "W-WH-E2E", "order_nos": ["WH-E2E-1"], "station": "P01"})
        assert wave.status_code == 200, wave.text
        deadline = time.monotonic() + 30
        while counts()["held"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert counts()["held"] == 1

        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      base_url=server.url, locale="zh-CN")
        context.set_default_timeout(10_000)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if is_problem(msg) else None)
        page.goto("/login")
        page.fill("#username", "super1")
        page.fill("#password", DEMO_PASSWORD)
        with page.expect_navigation():
            page.click("#login-submit")
        page.goto("/board?warehouse=JX")
        with page.expect_navigation():
            page.click("#webhooks-link")
        assert page.url.endswith("/webhooks")
        expect(page.locator("#dead-title")).to_contain_text("死信")
        dead_row = page.locator("#dead-table tr.wh-dead")
        expect(dead_row).to_have_count(1)
        expect(dead_row).to_contain_text("WH-E2E-1")
        expect(page.locator("#held-table tbody tr")).to_have_count(1)
        expect(page.locator('#totals [data-state="dead"] .wh-total-value')).to_have_text("1")
        expect(page.locator("#attempts tr[data-ok='false']")).to_have_count(2)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "webhooks.png"), full_page=True)

        # The OMS is back: Redeliver. The dead event goes, then the held one, in order.
        oms.down = False
        page.locator('#dead-table button[data-action="redeliver"]').click()
        expect(page.locator("#no-dead")).to_be_visible()            # after the page reloads
        deadline = time.monotonic() + 30
        while len(oms.acked) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [b["status"] for b in oms.acked] == ["received", "wave_assigned"]
        page.reload()
        expect(page.locator("#held-table")).to_have_count(0)
        expect(page.locator("#attempts tr[data-ok='true']")).to_have_count(2)
        expect(page.locator("#changes")).to_contain_text("重新投递了")

        # A new receiver from the form: the generated secret is shown once.
        page.fill("#create-url", "https://oms.example.com/floor-events")
        page.locator('#create-form input[value="pack_result"]').check()
        page.click("#create-form button[type=submit]")
        expect(page.locator("#secret-once")).to_be_visible()
        expect(page.locator("#secret-value")).to_have_text(re.compile(r"^whsec_\S{32,}$"))
        with page.expect_navigation():
            page.click("#secret-done")
        expect(page.locator("#subscriptions tbody tr")).to_have_count(2)
        # Paused from the page: its state says so.
        row = page.locator('#subscriptions tr[data-subscription-id]').nth(1)
        with page.expect_navigation():
            row.locator('button[data-action="disable"]').click()
        expect(page.locator('#subscriptions tr[data-subscription-id]').nth(1)).to_have_attribute(
            "data-enabled", "false")
        assert problems == []
        context.close()
    finally:
        oms.server.shutdown()
        oms.server.server_close()
