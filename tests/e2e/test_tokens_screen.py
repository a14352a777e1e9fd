"""The supervisor's tokens screen in a real browser against a live server: from the board to
the screen, a token made through the form (CSRF included) shows its secret once and works, the
revoke button ends it at once. No script errors, no CSP refusals; Chinese by default."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from screens import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def is_problem(msg: Any) -> bool:
    text = msg.text
    return "Content Security Policy" in text or "Refused to" in text or msg.type == "error"


def status_with(url: str, token: str) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            json.loads(res.read() or b"null")
            return res.status
    except urllib.error.HTTPError as err:
        return err.code


def test_tokens_screen_makes_and_revokes_a_token(browser: Any, live_server: Any) -> None:
    name = f"PDA-E2E-{uuid.uuid4().hex[:6]}"
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
        page.goto("/board")
        with page.expect_navigation():
            page.click("#tokens-link")
        expect(page.locator("#list-title")).to_contain_text("令牌")

        page.fill("#token-name", name)
        page.select_option("#token-role", "device")
        page.fill("#token-warehouse", "JX")
        with page.expect_navigation():
            page.click("#token-submit")
        secret = page.locator("#new-secret").inner_text().strip()
        assert secret.startswith("flr_")
        session_url = f"{live_server.url}/api/v1/stations/P01/session?device_id={name}"
        assert status_with(session_url, secret) == 200

        row = page.locator("#tokens tr", has_text=name)
        expect(row).to_have_attribute("data-state", "active")
        with page.expect_navigation():
            row.locator("button[type=submit]").click()
        expect(page.locator("#tokens tr", has_text=name)).to_have_attribute("data-state", "revoked")
        expect(page.locator("#new-secret")).to_have_count(0)
        assert status_with(session_url, secret) == 401
        assert problems == []
    finally:
        context.close()
