"""The supervisor board and the order timeline in a real browser against live servers.

One process (SQLite, demo data): the board shows a tile per open demo order; a packer's REST
scan of a waybill turns that order's tile to `packing` within 2 s; refused scans (from a
device with an order open, and from a fresh device, which only its station's room hears)
appear in the rejected-scans feed; an alert raised by the background evaluation appears live
and is acknowledged from the board; holds and cancellations move or remove tiles. The
timeline page shows an order's nodes, snapshot and scans, and its Hold / Release buttons
change the status. The board ages its tiles by itself as its clock moves on. It speaks
Chinese by default and English on request. Screenshots for the docs.

Offline: the board's browser goes offline, several events happen meanwhile, and when it comes
back the board shows every one of them without a reload, from the Socket.IO catch-up alone
(the snapshot endpoint is blocked meanwhile, so nothing else can have brought them). Once with
one process; once with two processes on PostgreSQL + Redis (skipped without them), the board
served by process B while every scan goes to process A (tiles turn within 2 s there too).
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from screens import DEMO_PASSWORD, SCREENSHOTS
import requests
from floor_sim.server import LiveServer, RedisServer, postgres_schema

pytestmark = pytest.mark.e2e


expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
LIVE_MS = 2_000          # a pushed event must be on the board within this
BOARD = "/board?warehouse=JX"


# ---- helpers ---------------------------------------------------------------------------------

class Api:
    """REST calls against one server with a packer and a supervisor token."""

    def __init__(self, server: LiveServer, tokens: dict[str, str] | None = None) -> None:
        self.url = server.url
        self.tokens = tokens or {"packer": server.token("packer", "e2e-board-packer"),
                                 "supervisor": server.token("supervisor", "e2e-board-super")}
        self.http = requests.Session()

    def call(self, method: str, path: str, role: str = "supervisor", body: Any = None) -> tuple[int, Any]:
        resp = self.http.request(method, self.url + path, json=body, timeout=10,
                                 headers={"Authorization": f"Bearer {self.tokens[role]}"})
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, resp.text

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def scan(self, code: str, station: str = "P01", device: str = "PDA-E2E1",
             at: dt.datetime | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"scan_id": str(uuid.uuid4()), "station": station, "device_id": device,
                                "code": code}
        if at is not None:
            body["at"] = at.isoformat()
        status, verdict = self.call("POST", "/api/v1/scans", "packer", body)
        assert status == 200, f"scan {code}: {status} {verdict}"
        verdict["scan_id"] = body["scan_id"]
        return verdict

    def event(self, order_no: str, event: str, reason: str = "", at: dt.datetime | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"event": event}
        if reason:
            body["reason"] = reason
        if at is not None:
            body["at"] = at.isoformat()
        status, answer = self.call("POST", f"/api/v1/orders/{order_no}/events", "supervisor", body)
        assert status == 200, f"{event} {order_no}: {status} {answer}"
        return answer

    def alert_early(self) -> None:
        """A station whose scans are mostly refused raises an alert from its first scan on."""
        status, body = self.call("PUT", "/api/v1/warehouses/JX/settings", body={"error_rate_min_scans": 1})
        assert status == 200, body

    def demo_orders(self) -> list[dict[str, Any]]:
        """Every demo order (waves W-0001..3) with its waybill and status."""
        out = []
        for wave_no in ("W-0001", "W-0002", "W-0003"):
            out += [{**o, "wave_no": wave_no} for o in self.get(f"/api/v1/waves/{wave_no}")["orders"]]
        return out

    def waybilled(self, skip: set[str] = frozenset()) -> list[dict[str, Any]]:
        """Demo orders with a waybill, still waiting in their wave."""
        return [o for o in self.demo_orders() if o.get("waybill_no") and o["status"] == "wave_assigned"
                and o["order_no"] not in skip]


def login(page: Any, username: str = "super1") -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("#login-submit")
    assert "/login" not in page.url, f"login as {username} failed"


def open_board(context: Any) -> tuple[Any, list[str]]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page)
    page.goto(BOARD)
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    expect(page.locator("body")).to_have_attribute("data-subscribed", "true")
    return page, errors


def tile(page: Any, order_no: str) -> Any:
    return page.locator(f'#tiles [data-order="{order_no}"]')


def feed_entry(page: Any, scan_id: str) -> Any:
    return page.locator(f'#feed [data-scan-id="{scan_id}"]')


def board_context(browser: Any, base_url: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base_url,
                                  locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(10_000)
    return context


# ---- one process -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def single() -> Iterator[tuple[LiveServer, Api]]:
    # Alerts evaluated every second (not 30 s), so one raised by the test shows up at once.
    with LiveServer(debounce_ms=0, env={"FLOOR_ALERT_INTERVAL_S": "1"}) as server:
        server.floor("seed-demo")
        yield server, Api(server)


def test_board_shows_scans_and_alerts_live(browser: Any, single: tuple[LiveServer, Api]) -> None:
    server, api = single
    api.alert_early()
    snapshot = api.get("/api/v1/board?warehouse=JX")
    open_orders = {o["order_no"]: o for o in snapshot["orders"]}
    assert len(open_orders) == 60, f"the demo has 60 open orders, the board snapshot lists {len(open_orders)}"

    context = board_context(browser, server.url)
    try:
        page, errors = open_board(context)
        tiles = page.locator("#tiles [data-order]")
        expect(tiles).to_have_count(60)
        for order_no, o in list(open_orders.items())[:5]:
            expect(tile(page, order_no)).to_have_attribute("data-status", o["status"])
            expect(tile(page, order_no)).to_have_attribute("data-level", o["level"])
            expect(tile(page, order_no)).to_have_attribute("href", f"/orders/{order_no}")
        counts = page.locator('#counts [data-status-count="packing"]')
        packing_before = snapshot["status_counts"]["packing"]
        expect(counts).to_have_attribute("data-count", str(packing_before))

        # A packer scans a waybill at P01 (over REST): the tile turns at once.
        order = api.waybilled()[0]
        verdict = api.scan(order["waybill_no"], "P01", "PDA-E2E1")
        assert verdict["code"] == "order_opened", verdict
        expect(tile(page, order["order_no"])).to_have_attribute("data-status", "packing", timeout=LIVE_MS)
        expect(tile(page, order["order_no"])).to_have_attribute("data-level", "green")
        expect(counts).to_have_attribute("data-count", str(packing_before + 1), timeout=LIVE_MS)

        # Refused scans: one from the device holding that order (its rooms include the
        # warehouse), one from a fresh device at P02 (heard only in the station's room).
        at_order = api.scan(f"E2E-UNKNOWN-{uuid.uuid4().hex[:6]}", "P01", "PDA-E2E1")
        fresh = api.scan(f"E2E-UNKNOWN-{uuid.uuid4().hex[:6]}", "P02", "PDA-E2E9")
        assert not at_order["ok"] and not fresh["ok"], (at_order, fresh)
        for rejected in (fresh, at_order):
            entry = feed_entry(page, rejected["scan_id"])
            expect(entry).to_be_visible(timeout=LIVE_MS)
            expect(entry).to_have_attribute("data-code", rejected["code"])
        # Newest first.
        expect(page.locator("#feed [data-scan-id]").first).to_have_attribute("data-scan-id", fresh["scan_id"])

        # Every scan at P02 was refused: the background evaluation (every second here) raises
        # an alert, which reaches the board live.
        alert = page.locator('#alerts [data-kind="station_error_rate"]').filter(has_text="P02")
        expect(alert).to_be_visible(timeout=10_000)
        expect(alert).to_have_attribute("data-acked", "false")
        expect(alert).to_have_attribute("data-level", "red")

        # The supervisor acknowledges it with a note (the prompt), over the session cookie.
        note = "e2e: called the customer"
        page.once("dialog", lambda dialog: dialog.accept(note))
        alert.locator("button[data-ack]").click()
        expect(alert).to_have_attribute("data-acked", "true", timeout=LIVE_MS)
        expect(alert).to_contain_text(note)
        alert_id = int(alert.get_attribute("data-alert-id") or 0)
        acked = [a for a in api.get("/api/v1/alerts?warehouse=JX")["alerts"] if a["id"] == alert_id]
        assert acked and acked[0]["acked_by"] == "super1" and acked[0]["ack_note"] == note, acked

        # A supervisor's hold from elsewhere; then a cancelled order leaves the board.
        held = api.waybilled({order["order_no"]})[0]["order_no"]
        api.event(held, "hold", "e2e: customer asked to wait")
        expect(tile(page, held)).to_have_attribute("data-status", "on_hold", timeout=LIVE_MS)
        expect(page.locator('#counts [data-status-count="on_hold"]')).to_have_attribute("data-count", "1")
        api.event(held, "cancel", "e2e: customer cancelled")
        expect(tile(page, held)).to_have_count(0, timeout=LIVE_MS)
        expect(tiles).to_have_count(59)

        # A tile opens the order's timeline.
        tile(page, order["order_no"]).click()
        expect(page).to_have_url(f"{server.url}/orders/{order['order_no']}")
        expect(page.locator("#order-status")).to_have_attribute("data-status", "packing")
        assert not errors, errors
    finally:
        context.close()


def test_timeline_page_and_its_actions(browser: Any, single: tuple[LiveServer, Api]) -> None:
    server, api = single
    order = api.waybilled()[0]
    order_no = order["order_no"]
    api.scan(order["waybill_no"], "P03", "PDA-E2E3")
    refused = api.scan(f"E2E-UNKNOWN-{uuid.uuid4().hex[:6]}", "P03", "PDA-E2E3")
    detail = api.get(f"/api/v1/orders/{order_no}")

    context = board_context(browser, server.url)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page)
        page.goto(f"/orders/{order_no}")
        expect(page.locator("#order-title")).to_have_text(order_no)
        expect(page.locator("#order-waybill")).to_have_text(order["waybill_no"])
        expect(page.locator("#status-timeline .node")).to_have_count(len(detail["timeline"]))
        expect(page.locator("#status-timeline .node.current")).to_have_attribute("data-status", "packing")
        expect(page.locator("#snapshot-hash")).to_have_text(detail["snapshot"]["hash"])
        expect(page.locator("#snapshot-lines tbody tr")).to_have_count(len(detail["snapshot"]["lines"]))
        expect(page.locator("#scans .scan-row")).to_have_count(len(detail["scans"]))
        expect(page.locator(f'#scans [data-scan-id="{refused["scan_id"]}"]')).to_have_attribute("data-ok", "false")
        expect(page.locator("#scans .scan-row[data-ok=true]")).to_have_count(1)
        # Times are shown in the viewer's zone (Asia/Shanghai here: UTC+8).
        first = detail["timeline"][0]["at"]
        local = dt.datetime.fromisoformat(first).astimezone(dt.timezone(dt.timedelta(hours=8)))
        expect(page.locator("#status-timeline .node-at time").first).to_have_text(local.strftime("%Y-%m-%d %H:%M:%S"))

        # Hold with a reason: the page reloads with the new status and node.
        page.once("dialog", lambda dialog: dialog.accept("e2e: label printer jammed"))
        with page.expect_navigation():
            page.click('#actions [data-event="hold"]')
        expect(page.locator("#order-status")).to_have_attribute("data-status", "on_hold")
        expect(page.locator("#status-timeline .node.current")).to_contain_text("e2e: label printer jammed")
        # Cancelling the reason prompt sends nothing.
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click('#actions [data-event="release"]')
        expect(page.locator("#order-status")).to_have_attribute("data-status", "on_hold")
        # Release goes back to where the order was.
        page.once("dialog", lambda dialog: dialog.accept("e2e: fixed"))
        with page.expect_navigation():
            page.click('#actions [data-event="release"]')
        expect(page.locator("#order-status")).to_have_attribute("data-status", "packing")
        assert api.get(f"/api/v1/orders/{order_no}")["status"] == "packing"
        # A move the status machine refuses (cancelled meanwhile, elsewhere) shows the
        # server's reason and changes nothing.
        api.event(order_no, "cancel", "e2e: cancelled from another screen")
        page.once("dialog", lambda dialog: dialog.accept("e2e: too late"))
        page.click('#actions [data-event="hold"]')
        expect(page.locator("#action-status")).to_be_visible()
        expect(page.locator("#action-status")).to_contain_text("cancelled")
        page.goto(f"/orders/{order_no}")
        expect(page.locator("#order-status")).to_have_attribute("data-status", "cancelled")
        expect(page.locator("#actions")).to_have_count(0)
        assert not errors, errors
    finally:
        context.close()


def test_board_speaks_chinese_by_default_and_english_on_request(browser: Any, single: tuple[LiveServer, Api]) -> None:
    server, api = single
    waiting = api.waybilled()[0]["order_no"]
    context = board_context(browser, server.url)
    try:
        page, errors = open_board(context)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("#orders-title")).to_contain_text("未完成订单")
        expect(tile(page, waiting).locator(".tile-status")).to_have_text("已分波次")
        page.goto("/lang/en?next=" + BOARD.replace("?", "%3F").replace("=", "%3D"))
        expect(page).to_have_url(server.url + BOARD)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#orders-title")).to_contain_text("Open orders by age")
        expect(tile(page, waiting).locator(".tile-status")).to_have_text("Wave assigned")
        expect(page.locator('#counts [data-status-count="on_hold"] .count-label')).to_have_text("On hold")
        assert not errors, errors
    finally:
        context.close()


def _pack_completely(api: Api, order_no: str, waybill: str, station: str, device: str,
                     refuse: str | None = None) -> None:
    """Every line of the kit, the gift box last; `refuse`: a code scanned (and refused) first."""
    lines = api.get(f"/api/v1/orders/{order_no}")["snapshot"]["lines"]
    api.scan(waybill, station, device)
    if refuse:
        assert not api.scan(refuse, station, device)["ok"]
    for line in sorted(lines, key=lambda l: l["role"] == "giftbox"):
        for _ in range(line["qty"]):
            verdict = api.scan(line["barcodes"][0], station, device)
            assert verdict["ok"], verdict
    assert api.get(f"/api/v1/orders/{order_no}")["status"] == "packed"


def test_tiles_age_on_screen_and_screenshots(browser: Any, single: tuple[LiveServer, Api]) -> None:
    """A busier floor (packed orders, open ones, an exception, refusals), then the page's clock
    moves on: the tiles change colour by themselves, with no event and no new snapshot.
    Screenshots of the board and of a timeline for the docs."""
    server, api = single
    api.alert_early()
    orders = api.waybilled()
    by_wave: dict[str, list[dict[str, Any]]] = {}
    for o in orders:
        by_wave.setdefault(o["wave_no"], []).append(o)
    station_of = {"W-0001": "P01", "W-0002": "P02", "W-0003": "P03"}
    packed = []
    for wave_no, count in (("W-0001", 4), ("W-0002", 3)):
        for o in by_wave[wave_no][:count]:
            _pack_completely(api, o["order_no"], o["waybill_no"], station_of[wave_no], f"PDA-{wave_no[-1]}1",
                             refuse=None if packed else "6909999999996")
            packed.append(o["order_no"])
    rest = api.waybilled()
    opened = rest[0]["order_no"]
    api.scan(rest[0]["waybill_no"], "P02", "PDA-21")
    api.scan(rest[1]["waybill_no"], "P03", "PDA-31")
    api.event(rest[2]["order_no"], "exception", "damaged item in stock")
    api.event(packed[0], "label_printed")
    api.event(packed[0], "staged_for_loading")
    # Mostly refusals at P03: its error rate raises an alert.
    for code in ("6901234599999", "SF-OLD-LABEL-77", "ZY-UNKNOWN-01"):
        api.scan(code, "P03", "PDA-31")
    waiting = next(o["order_no"] for o in api.waybilled())

    context = board_context(browser, server.url)
    try:
        context.clock.install()          # time flows as usual until the test moves it on
        page, errors = open_board(context)
        expect(page.locator("#alerts [data-alert-id]").first).to_be_visible(timeout=10_000)
        expect(page.locator("#kpi-packed-today")).not_to_have_text("0")
        expect(tile(page, opened)).to_have_attribute("data-level", "green")
        expect(tile(page, packed[1])).to_have_attribute("data-level", "green")

        # No new snapshot from here on (it would bring the server's own ageing): only the
        # board's clock decides. Packing turns yellow after 20 min and red after 40; packed
        # turns yellow after 30; a wave waits 120 min before yellow.
        page.route("**/api/v1/board*", lambda route: route.abort())
        page.clock.fast_forward("25:00")
        expect(tile(page, opened)).to_have_attribute("data-level", "yellow")
        expect(tile(page, packed[1])).to_have_attribute("data-level", "green")
        page.clock.fast_forward("20:00")
        expect(tile(page, opened)).to_have_attribute("data-level", "red")
        expect(tile(page, packed[1])).to_have_attribute("data-level", "yellow")
        expect(tile(page, waiting)).to_have_attribute("data-level", "green")
        expect(page.locator(f'#over-sla [data-over-order="{opened}"]')).to_have_attribute("data-level", "red")
        expect(tile(page, opened).locator(".tile-age")).to_contain_text("45")

        # The jump may have timed the socket out: it comes back by itself.
        expect(page.locator("#offline-banner")).to_be_hidden(timeout=15_000)
        expect(page.locator("body")).to_have_attribute("data-subscribed", "true")
        page.wait_for_timeout(1_700)      # let the highlight animations end (a still picture)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "board.png"), animations="disabled")
        page.unroute("**/api/v1/board*")

        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"/orders/{packed[0]}")
        expect(page.locator("#order-status")).to_have_attribute("data-status", "awaiting_loading")
        page.screenshot(path=str(SCREENSHOTS / "timeline.png"), animations="disabled", full_page=True)
        assert not errors, errors
    finally:
        context.close()


# ---- two processes -----------------------------------------------------------------------------

@pytest.fixture
def cluster() -> Iterator[tuple[LiveServer, LiveServer]]:
    if not PG_URL or not shutil.which("redis-server"):
        pytest.skip("the two-process board test needs FLOOR_TEST_POSTGRES_URL and redis-server")
    with postgres_schema(PG_URL, "floor_board") as url:
        redis_server = RedisServer()
        servers: list[LiveServer] = []
        try:
            redis_server.start()
            env = {"FLOOR_MESSAGE_QUEUE": redis_server.url,
                   "FLOOR_SECRET_KEY": "board-e2e-shared-secret", "FLOOR_ALERT_INTERVAL_S": "0"}
            servers = [LiveServer(database_url=url, env=env, debounce_ms=0) for _ in range(2)]
            for server in servers:
                server.start()
            servers[0].floor("seed-demo")
            yield servers[0], servers[1]
        finally:
            for server in servers:
                server.stop()
            redis_server.stop()


def test_board_on_b_follows_scans_on_a_and_catches_up_after_offline(browser: Any, cluster: Any) -> None:
    a, b = cluster
    api = Api(a)
    context = board_context(browser, b.url)
    try:
        page, errors = open_board(context)
        expect(page.locator("#tiles [data-order]")).to_have_count(60)

        # Scans handled by A turn the tiles on the board served by B.
        first = api.waybilled()[0]
        api.scan(first["waybill_no"], "P01", "PDA-A1")
        expect(tile(page, first["order_no"])).to_have_attribute("data-status", "packing", timeout=LIVE_MS)
        rejected = api.scan(f"E2E-B-{uuid.uuid4().hex[:6]}", "P01", "PDA-A1")
        expect(feed_entry(page, rejected["scan_id"])).to_be_visible(timeout=LIVE_MS)
        expect(feed_entry(page, rejected["scan_id"])).to_have_attribute("data-code", "unknown_code")

        offline_catch_up(context, page, api)
        assert not errors, errors
    finally:
        context.close()


def test_board_catches_up_after_offline(browser: Any, single: tuple[LiveServer, Api]) -> None:
    """The same catch-up with one process (no PostgreSQL or Redis needed)."""
    server, api = single
    context = board_context(browser, server.url)
    try:
        page, errors = open_board(context)
        offline_catch_up(context, page, api)
        assert not errors, errors
    finally:
        context.close()


def offline_catch_up(context: Any, page: Any, api: Api) -> None:
    """The board's browser goes offline; scans (refused ones too) and status changes happen
    meanwhile; back online, the board shows every one of them, without a reload.

    From going offline to the end the snapshot endpoint is blocked, so what the board shows
    afterwards came from the Socket.IO catch-up (subscribe after the last seq applied)."""
    opened, held, cancelled = api.waybilled()[:3]
    kit = {line["sku"] for line in api.get(f"/api/v1/orders/{opened['order_no']}")["snapshot"]["lines"]}
    stranger = next(line["barcodes"][0] for o in api.waybilled()[3:]
                    for line in api.get(f"/api/v1/orders/{o['order_no']}")["snapshot"]["lines"]
                    if line["sku"] not in kit and line["role"] != "giftbox")
    on_hold = page.locator('#counts [data-status-count="on_hold"]')
    holds = int(on_hold.get_attribute("data-count") or 0)
    device = f"PDA-OFF{uuid.uuid4().hex[:3]}"

    page.evaluate("window.__sameDocument = true")
    page.route("**/api/v1/board*", lambda route: route.abort())
    context.set_offline(True)
    expect(page.locator("#offline-banner")).to_be_visible(timeout=10_000)
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    seq_before = int(page.locator("body").get_attribute("data-last-seq") or 0)

    missed = [
        api.scan(opened["waybill_no"], "P02", device),                   # opens: packing
        api.scan(stranger, "P02", device),                               # another order's item
        api.scan(f"E2E-OFF-{uuid.uuid4().hex[:6]}", "P02", device),      # unknown, an order open
        api.scan(f"E2E-OFF-{uuid.uuid4().hex[:6]}", "P03", device + "X"),  # unknown, station room only
    ]
    api.event(held["order_no"], "hold", "e2e: held while the board was offline")
    api.event(cancelled["order_no"], "cancel", "e2e: cancelled while the board was offline")
    missed.append(api.scan(f"E2E-OFF-{uuid.uuid4().hex[:6]}", "P02", device))  # unknown, last
    assert missed[0]["code"] == "order_opened", missed[0]
    refused = missed[1:]
    assert not any(v["ok"] for v in refused), refused
    last_seq = api.get("/api/v1/board?warehouse=JX")["last_seq"]
    # Nothing reached the page meanwhile.
    assert int(page.locator("body").get_attribute("data-last-seq") or 0) == seq_before
    expect(feed_entry(page, refused[0]["scan_id"])).to_have_count(0)

    context.set_offline(False)
    expect(page.locator("#offline-banner")).to_be_hidden(timeout=15_000)
    for verdict in refused:
        expect(feed_entry(page, verdict["scan_id"])).to_be_visible(timeout=LIVE_MS)
        expect(feed_entry(page, verdict["scan_id"])).to_have_attribute("data-code", verdict["code"])
    # Newest first.
    expect(page.locator("#feed [data-scan-id]").first).to_have_attribute("data-scan-id", refused[-1]["scan_id"])
    expect(tile(page, opened["order_no"])).to_have_attribute("data-status", "packing")
    expect(tile(page, held["order_no"])).to_have_attribute("data-status", "on_hold")
    expect(tile(page, cancelled["order_no"])).to_have_count(0)
    expect(on_hold).to_have_attribute("data-count", str(holds + 1))
    expect(page.locator("body")).to_have_attribute("data-last-seq", str(last_seq))
    assert page.evaluate("window.__sameDocument === true"), "the board reloaded"

    # And live again.
    page.unroute("**/api/v1/board*")
    api.event(held["order_no"], "release", "e2e: back online")
    expect(tile(page, held["order_no"])).to_have_attribute("data-status", "wave_assigned", timeout=LIVE_MS)
