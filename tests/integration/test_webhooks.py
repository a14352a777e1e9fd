"""Status webhooks end to end on a real database, to a real HTTP receiver on loopback.

The receiver checks every signature with the secret, fails on purpose (500s, a timeout, a
dropped connection) and deduplicates by event id. The dispatcher is driven step by step with
`run_once(now)`: time is injected, so backoff never makes a test wait.
"""
from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select

from floor import create_app, start_background
from floor.db import get_db, standalone_session, utcnow
from floor.packing.models import Order, StatusEvent
from floor.webhooks import domain
from floor.webhooks.dispatcher import WebhookDispatcher
from floor.webhooks.models import WebhookAttempt, WebhookChange, WebhookDelivery

WAYBILL, MAIN, SAMPLE, GIFTBOX = "SF1000000000001", "6901234567892", "6901234567908", "6901234567915"
SECRET = "whsec_integration_test_0123456789"
TIMEOUT_S = 0.4            # the dispatcher's per-request timeout in these tests
MAX_BACKOFF_S = 2
MAX_ATTEMPTS = 4


@pytest.fixture
def app(database_url: str, tmp_path):  # type: ignore[no-untyped-def]
    """The shared app fixture, with webhook settings a test can go through quickly."""
    app = create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path),
                      "SECRET_KEY": "test-secret", "TESTING": True, "SCAN_DEBOUNCE_MS": 500,
                      "ALERT_INTERVAL_S": 0, "WEBHOOK_TIMEOUT_S": TIMEOUT_S,
                      "WEBHOOK_MAX_BACKOFF_S": MAX_BACKOFF_S, "WEBHOOK_MAX_ATTEMPTS": MAX_ATTEMPTS,
                      "WEBHOOK_WORKERS": 4})
    yield app
    app.extensions["floor.webhooks"].stop()
    app.extensions["floor.pump"].stop()
    get_db(app).engine.dispose()


# --- the OMS stand-in --------------------------------------------------------------------------

class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass                  # connections the sender dropped (its timeouts) are expected


class Receiver:
    """An OMS on loopback. `script` answers request by request ("ok", "500", "timeout", "drop");
    `failing_orders` get 500s; everything else is acknowledged."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.script: list[str] = []
        self.failing_orders: set[str] = set()
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []       # every request, as it came
        self.processed: dict[str, dict[str, Any]] = {}  # event id -> body, first time processed
        self.processing_order: list[str] = []          # event ids, first processing only
        self.duplicates = 0
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                receiver.handle(self)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/floor-events"

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _behaviour(self, body: dict[str, Any]) -> str:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        return "500" if body.get("order_no") in self.failing_orders else "ok"

    def _process(self, event_id: str, body: dict[str, Any]) -> None:
        with self.lock:
            if event_id in self.processed:
                self.duplicates += 1
                return
            self.processed[event_id] = body
            self.processing_order.append(event_id)

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        raw = req.rfile.read(int(req.headers.get("Content-Length", "0")))
        signed = domain.verify_signature(self.secret, req.headers.get(domain.SIGNATURE_HEADER),
                                         raw, time.time())
        body = json.loads(raw)
        event_id = req.headers.get(domain.EVENT_ID_HEADER)
        behaviour = self._behaviour(body)
        with self.lock:
            self.requests.append({"id": event_id, "body_id": body.get("id"), "signed": signed,
                                  "behaviour": behaviour})
            if not signed:
                self.bad_signatures += 1
        if not signed:
            self._answer(req, 401, b"bad signature")
            return
        if behaviour == "drop":
            # Gone before answering: the sender sees the connection closed, nothing processed.
            req.close_connection = True
            req.connection.shutdown(socket.SHUT_RDWR)
            return
        if behaviour == "500":
            self._answer(req, 500, b"down for maintenance")
            return
        # Processed, and acknowledged (too late, for "timeout": the sender gave up already).
        self._process(event_id or "", body)
        if behaviour == "timeout":
            time.sleep(TIMEOUT_S * 2.5)
        try:
            self._answer(req, 200, b'{"ok":true}')
        except OSError:
            pass

    @staticmethod
    def _answer(req: BaseHTTPRequestHandler, status: int, payload: bytes) -> None:
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        req.wfile.write(payload)

    def by_order(self) -> dict[str, list[int]]:
        """Each order's seqs in the order they were first processed."""
        out: dict[str, list[int]] = defaultdict(list)
        for event_id in self.processing_order:
            body = self.processed[event_id]
            out[body["order_no"]].append(body["seq"])
        return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


# --- helpers -------------------------------------------------------------------------------------

def subscribe(api: Any, url: str, events: list[str] | None = None, role: str = "integration",
              secret: str | None = SECRET) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "events": events or ["status"]}
    if secret is not None:
        body["secret"] = secret
    response = api.post("/api/v1/webhooks", body, role=role)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def pack(api: Any, device: str = "PDA-01", waybill: str = WAYBILL) -> dict[str, Any]:
    api.scan(waybill, device=device)
    api.scan(SAMPLE, device=device)
    api.scan(MAIN, device=device)
    api.scan(SAMPLE, device=device)
    return api.scan(GIFTBOX, device=device)


def dispatcher_of(app: Any) -> WebhookDispatcher:
    return app.extensions["floor.webhooks"]


def pending_count(app: Any) -> int:
    with standalone_session(app, write=False) as s:
        return len(s.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.state.in_((domain.PENDING,)))).all())


def drain(app: Any, start: dt.datetime | None = None, rounds: int = 60) -> dt.datetime:
    """Run the dispatcher until nothing pending is left, each round past any backoff."""
    dispatcher = dispatcher_of(app)
    now = start or utcnow()
    for _ in range(rounds):
        dispatcher.run_once(now)
        if pending_count(app) == 0:
            return now
        now += dt.timedelta(seconds=MAX_BACKOFF_S + 1)
    raise AssertionError("deliveries still pending after every round")


def status_seqs(app: Any, after: int = 0) -> dict[str, list[int]]:
    """The status events on record, per order, in seq order."""
    with standalone_session(app, write=False) as s:
        rows = s.execute(select(Order.order_no, StatusEvent.seq)
                         .join(Order, Order.id == StatusEvent.order_id)
                         .where(StatusEvent.seq > after).order_by(StatusEvent.seq)).all()
    out: dict[str, list[int]] = defaultdict(list)
    for order_no, seq in rows:
        out[order_no].append(seq)
    return out


def attempts_of(app: Any) -> list[WebhookAttempt]:
    with standalone_session(app, write=False) as s:
        return list(s.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)))


# --- delivery ------------------------------------------------------------------------------------

def test_every_status_change_arrives_signed_once_after_dedup_in_order_despite_failures(
        app, api, waved, receiver):
    sub = subscribe(api, receiver.url)
    assert sub["secret"] == SECRET and sub["secret_hint"] == "••••" + SECRET[-4:]
    # The receiver's bad moments: two 500s, a timeout (processed, but answered too late), a
    # dropped connection, another 500.
    receiver.script = ["500", "500", "timeout", "drop", "500"]
    waved("TB001")
    waved("TB002", waybill="SF1000000000002", wave="W-2")
    assert pack(api)["status"] == "packed"
    api.scan("SF1000000000002", device="PDA-02")
    event = api.post("/api/v1/orders/TB001/events", {"event": "label_printed"})
    assert event.status_code == 200, event.get_json()

    drain(app)

    expected = status_seqs(app, after=sub["cursor"])
    assert sum(len(v) for v in expected.values()) >= 8
    assert receiver.bad_signatures == 0
    # Every status change exactly once after dedup, in seq order per order, none extra.
    assert receiver.by_order() == expected
    assert set(receiver.processed) == {domain.event_id(seq, "status")
                                       for seqs in expected.values() for seq in seqs}
    # The timeout was processed and then sent again: the receiver saw a duplicate.
    assert receiver.duplicates >= 1
    body = next(b for b in receiver.processed.values() if b["status"] == "packed")
    assert {"id", "type", "seq", "order_no", "status", "at"} <= set(body)
    assert (body["type"], body["from_status"], body["station"], body["device_id"],
            body["warehouse"], body["channel"]) == ("status", "packing", "P01", "PDA-01", "JX",
                                                    "taobao")
    # Retries happened and are in the history with their status codes and errors.
    tries = attempts_of(app)
    codes = [a.status_code for a in tries]
    assert codes.count(500) == 3
    assert sum(1 for a in tries if a.status_code is None and "timeout" in (a.error or "").lower()) == 1
    assert sum(1 for a in tries if a.status_code is None
               and "timeout" not in (a.error or "").lower()) == 1
    assert all(a.latency_ms >= 0 for a in tries)
    detail = api.get(f"/api/v1/webhooks/{sub['id']}", role="integration").get_json()
    assert detail["counts"]["delivered"] == len(receiver.processed)
    assert detail["counts"]["pending"] == detail["counts"]["dead"] == 0
    assert "secret" not in detail


def test_a_later_event_of_an_order_waits_until_the_earlier_one_is_acknowledged(
        app, api, waved, receiver):
    subscribe(api, receiver.url)
    waved("TB001")
    api.scan(WAYBILL)                      # wave_assigned, then packing: two events of TB001
    receiver.failing_orders = {"TB001"}
    now = utcnow()
    for _ in range(3):
        dispatcher_of(app).run_once(now)
        now += dt.timedelta(seconds=MAX_BACKOFF_S + 1)
    # Only the first event of TB001 was ever tried; the later ones waited behind it.
    tried = {r["id"] for r in receiver.requests}
    seqs = status_seqs(app)["TB001"]
    assert len(seqs) == 3 and len(receiver.requests) == 3
    assert tried == {domain.event_id(seqs[0], "status")}
    receiver.failing_orders = set()
    drain(app, now)
    assert receiver.by_order()["TB001"] == seqs


def test_dead_letter_holds_the_order_other_orders_go_on_redelivery_releases_it(
        app, api, waved, receiver):
    sub = subscribe(api, receiver.url)
    waved("TB001")
    waved("TB002", waybill="SF1000000000002", wave="W-2")
    receiver.failing_orders = {"TB001"}
    now = utcnow()
    for _ in range(MAX_ATTEMPTS + 1):
        dispatcher_of(app).run_once(now)
        now += dt.timedelta(seconds=MAX_BACKOFF_S + 1)
    dead = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries?state=dead",
                   role="supervisor").get_json()["deliveries"]
    assert len(dead) == 1 and dead[0]["order_no"] == "TB001"
    assert dead[0]["attempts"] == MAX_ATTEMPTS and dead[0]["last_status_code"] == 500
    # Later events of TB001 (now and afterwards) are held; TB002 went through all the while.
    api.scan(WAYBILL)                                      # TB001: packing
    api.scan("SF1000000000002", device="PDA-02")           # TB002: packing
    dispatcher_of(app).run_once(now)
    held = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries?state=held",
                   role="supervisor").get_json()["deliveries"]
    # wave_assigned (pending when the first one died) and packing (made afterwards).
    assert [d["order_no"] for d in held] == ["TB001", "TB001"]
    assert receiver.by_order()["TB002"] == status_seqs(app)["TB002"]
    assert "TB001" not in receiver.by_order()
    detail = api.get(f"/api/v1/webhook-deliveries/{dead[0]['id']}",
                     role="integration").get_json()
    assert [a["status_code"] for a in detail["attempt_history"]] == [500] * MAX_ATTEMPTS
    assert detail["body"]["id"] == dead[0]["event_id"]

    # The receiver is fixed; a supervisor redelivers: the dead one, then the held ones, in order.
    receiver.failing_orders = set()
    again = api.post(f"/api/v1/webhook-deliveries/{dead[0]['id']}/redeliver", role="supervisor")
    assert again.status_code == 200 and again.get_json()["state"] == "pending"
    drain(app, now)
    assert receiver.by_order()["TB001"] == status_seqs(app)["TB001"]
    assert api.post(f"/api/v1/webhook-deliveries/{dead[0]['id']}/redeliver",
                    role="supervisor").get_json()["code"] == "not_dead"
    changes = api.get("/api/v1/webhooks", role="supervisor").get_json()
    assert changes["subscriptions"][0]["counts"]["held"] == 0
    with standalone_session(app, write=False) as s:
        actions = [(c.action, c.by) for c in s.scalars(select(WebhookChange).order_by(WebhookChange.id))]
    assert ("redelivered", "test-supervisor") in actions


def test_after_a_long_outage_every_dead_letter_of_a_receiver_is_redelivered_at_once(
        app, api, waved, receiver):
    sub = subscribe(api, receiver.url)
    waved("TB001")
    waved("TB002", waybill="SF1000000000002", wave="W-2")
    receiver.failing_orders = {"TB001", "TB002"}
    now = utcnow()
    for _ in range(MAX_ATTEMPTS):
        dispatcher_of(app).run_once(now)
        now += dt.timedelta(seconds=MAX_BACKOFF_S + 1)
    assert api.get(f"/api/v1/webhooks/{sub['id']}", role="supervisor").get_json()["counts"]["dead"] == 2
    receiver.failing_orders = set()
    again = api.post(f"/api/v1/webhooks/{sub['id']}/redeliver-dead", role="integration")
    assert again.status_code == 200 and again.get_json()["redelivered"] == 2
    drain(app, now)
    assert receiver.by_order() == status_seqs(app)
    assert api.post("/api/v1/webhooks/99/redeliver-dead",
                    role="supervisor").get_json()["code"] == "unknown_webhook"


def test_a_discarded_dead_letter_lets_the_held_events_go_on_and_is_recorded(
        app, api, waved, receiver):
    sub = subscribe(api, receiver.url)
    waved("TB001")
    receiver.failing_orders = {"TB001"}
    now = utcnow()
    for _ in range(MAX_ATTEMPTS):
        dispatcher_of(app).run_once(now)
        now += dt.timedelta(seconds=MAX_BACKOFF_S + 1)
    api.scan(WAYBILL)
    dispatcher_of(app).run_once(now)
    dead = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries?state=dead",
                   role="supervisor").get_json()["deliveries"][0]
    path = f"/api/v1/webhook-deliveries/{dead['id']}/discard"
    assert api.post(path, {"reason": "x"}, role="integration").status_code == 403
    assert api.post(path, {}, role="supervisor").get_json()["code"] == "missing_field"
    receiver.failing_orders = set()
    done = api.post(path, {"reason": "OMS re-imported the order by hand"}, role="supervisor")
    assert done.status_code == 200 and done.get_json()["state"] == "discarded"
    drain(app, now)
    first, *rest = status_seqs(app)["TB001"]
    assert receiver.by_order()["TB001"] == rest          # the discarded one never arrived
    assert api.post(path, {"reason": "again"}, role="supervisor").status_code == 409
    page = api.client.get("/webhooks", headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    assert page.status_code == 200 and "OMS re-imported the order by hand" in page.get_data(as_text=True)


def test_pack_result_carries_the_packed_units_lots_and_snapshot_hash(app, api, waved, receiver):
    subscribe(api, receiver.url, events=["status", "pack_result"])
    lot_line = [{"sku": "SERUM", "name": "精华液", "qty": 1, "role": "main",
                 "barcodes": ["09501101020917"]},
                {"sku": "GIFTBOX", "name": "礼盒", "qty": 1, "role": "giftbox",
                 "barcodes": [GIFTBOX]}]
    waved("TB009", waybill="SF1000000000009", lines=lot_line)
    api.scan("SF1000000000009")
    api.scan("0109501101020917" + "10LOT42" + "\x1d" + "21SN0001")
    done = api.scan(GIFTBOX)
    assert done["status"] == "packed", done
    drain(app)
    results = [b for b in receiver.processed.values() if b["type"] == "pack_result"]
    assert len(results) == 1
    result = results[0]
    packed_status = next(b for b in receiver.processed.values()
                         if b["type"] == "status" and b["status"] == "packed")
    assert result["seq"] == packed_status["seq"] and result["id"] != packed_status["id"]
    order = api.get("/api/v1/orders/TB009").get_json()
    assert result["snapshot_hash"] == order["snapshot"]["hash"]
    assert (result["order_no"], result["station"], result["device_id"], result["packer"],
            result["waybill_no"]) == ("TB009", "P01", "PDA-01", "test-packer", "SF1000000000009")
    main = next(line for line in result["lines"] if line["sku"] == "SERUM")
    assert main["packed_qty"] == 1 and len(main["units"]) == 1
    assert (main["units"][0]["lot"], main["units"][0]["serial"]) == ("LOT42", "SN0001")
    assert result["overrides"] == []


def test_a_waybill_event_goes_out_and_a_later_rebind_leaves_the_pack_result_as_packed(
        app, api, waved, receiver):
    from floor.eventlog import record_event

    subscribe(api, receiver.url, events=["pack_result", "waybill"])
    waved("TB001")
    assert pack(api)["status"] == "packed"
    # A `waybill` event as the waybill API logs it (the label was replaced after packing).
    with standalone_session(app) as s:
        record_event(s, "waybill", ["warehouse:JX", "order:TB001"], {
            "order_no": "TB001", "channel": "taobao", "warehouse": "JX",
            "waybill_no": "YT9000000000009", "old_waybill_no": WAYBILL, "status": "packed",
            "reason": "relabelled", "by": "oms", "at": utcnow().isoformat()})
    drain(app)
    bodies = sorted(receiver.processed.values(), key=lambda b: b["seq"])
    assert [b["type"] for b in bodies] == ["pack_result", "waybill"]
    assert bodies[0]["waybill_no"] == WAYBILL              # as it was when packed
    assert {k: bodies[1][k] for k in ("order_no", "waybill_no", "old_waybill_no", "warehouse")} == {
        "order_no": "TB001", "waybill_no": "YT9000000000009", "old_waybill_no": WAYBILL,
        "warehouse": "JX"}
    assert bodies[1]["id"] == domain.event_id(bodies[1]["seq"], "waybill")


def test_deliveries_keep_their_event_ids_and_bodies_across_a_new_dispatcher(
        app, api, waved, receiver):
    """A restart: another dispatcher (another process, after the lease expired) resends what was
    not acknowledged, byte for byte, under the same event id."""
    subscribe(api, receiver.url)
    waved("TB001")
    receiver.script = ["timeout"]             # processed, but the answer never came back
    now = utcnow()
    dispatcher_of(app).run_once(now)
    first = receiver.requests[0]
    successor = WebhookDispatcher(app)
    later = now + dispatcher_of(app).lease_ttl + dt.timedelta(seconds=MAX_BACKOFF_S + 1)
    try:
        successor.run_once(later)
    finally:
        successor.stop()
    assert [r["id"] for r in receiver.requests] == [first["id"], first["id"]]
    assert receiver.duplicates == 1 and len(receiver.processed) == 1


# --- one dispatcher at a time --------------------------------------------------------------------

def test_one_dispatcher_at_a_time_the_lease_passes_on_when_it_expires(app, api, waved, receiver):
    subscribe(api, receiver.url)
    first, second = dispatcher_of(app), WebhookDispatcher(app)
    try:
        now = utcnow()
        assert first.run_once(now) == 0          # holds the lease; nothing to send yet
        waved("TB001")
        assert second.run_once(now) == -1        # the other process: not its turn
        assert receiver.requests == []
        assert first.run_once(now) == 1          # TB001's first event (its next one waits)
        waved("TB002", waybill="SF1000000000002", wave="W-2")
        # The first one stops renewing (a crash): once the lease expires the second takes over.
        later = now + first.lease_ttl + dt.timedelta(seconds=1)
        assert second.run_once(later) == 2       # TB001's second event, TB002's first
        assert first.run_once(later) == -1
        assert len(receiver.processed) == 3
    finally:
        second.stop()


def test_create_app_starts_nothing_and_floor_webhooks_0_keeps_a_process_out(
        app, database_url, tmp_path):
    from floor.config import load_config

    assert not dispatcher_of(app).started
    settings = {"SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)}
    assert load_config(settings, environ={"FLOOR_WEBHOOKS": "0"})["WEBHOOKS"] is False
    defaults = load_config(settings, environ={})
    assert (defaults["WEBHOOKS"], defaults["WEBHOOK_MAX_ATTEMPTS"],
            defaults["WEBHOOK_MAX_BACKOFF_S"]) == (True, 12, 300)
    off = create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path),
                      "SECRET_KEY": "x", "ALERT_INTERVAL_S": 0, "WEBHOOKS": False,
                      "SERIAL_READERS": False})
    try:
        start_background(off)
        assert not dispatcher_of(off).started
    finally:
        for name in off.extensions["floor.background"]:
            stop = getattr(off.extensions[name], "stop", None)
            if stop is not None:
                stop()
        get_db(off).engine.dispose()


def test_the_background_dispatcher_sends_soon_after_the_commit(app, api, waved, receiver):
    subscribe(api, receiver.url)
    dispatcher_of(app).ensure_started()
    waved("TB001")
    deadline = time.monotonic() + 30
    while len(receiver.processed) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.by_order() == status_seqs(app)       # received, wave_assigned


# --- subscriptions: roles and bad input ---------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("post", "/api/v1/webhooks"), ("get", "/api/v1/webhooks"), ("get", "/api/v1/webhooks/1"),
    ("patch", "/api/v1/webhooks/1"), ("delete", "/api/v1/webhooks/1"),
    ("get", "/api/v1/webhooks/1/deliveries"), ("get", "/api/v1/webhook-deliveries/1"),
    ("post", "/api/v1/webhook-deliveries/1/redeliver"), ("post", "/api/v1/webhooks/1/redeliver-dead"),
    ("post", "/api/v1/webhook-deliveries/1/discard")])
def test_roles_come_before_the_body(api, method, path):
    for role in ("packer", "qc", "device"):
        response = getattr(api.client, method)(
            path, data="not json", headers={"Authorization": f"Bearer {api.tokens[role]}"})
        assert response.status_code == 403, (role, path)
        assert response.get_json()["code"] == "forbidden"
    response = getattr(api.client, method)(path, data="not json")
    assert response.status_code == 401 and response.get_json()["code"] == "unauthenticated"


def test_the_page_is_for_supervisors(api, users):
    client = api.client
    assert client.get("/webhooks").status_code == 302          # to the login page
    assert client.get("/webhooks", headers={
        "Authorization": f"Bearer {api.tokens['packer']}"}).status_code == 403


@pytest.mark.parametrize("body, code", [
    (None, "invalid_json"), ([1], "invalid_json"), ({}, "missing_field"),
    ({"url": "ftp://x/y"}, "invalid_url"), ({"url": "https://u:p@x.example/y"}, "invalid_url"),
    ({"url": "https://x.example/" + "a" * 2001}, "invalid_url"), ({"url": 5}, "invalid_url"),
    ({"url": "https://x.example/y", "events": []}, "invalid_events"),
    ({"url": "https://x.example/y", "events": ["nope"]}, "invalid_events"),
    ({"url": "https://x.example/y", "events": "status"}, "invalid_events"),
    ({"url": "https://x.example/y", "secret": "short"}, "invalid_secret"),
    ({"url": "https://x.example/y", "secret": 12345678901234567}, "invalid_secret"),
    ({"url": "https://x.example/y", "enabled": "yes"}, "invalid_field"),
    ({"url": "http://169.254.169.254/latest/meta-data/"}, "blocked_destination"),
    ({"url": "http://[::ffff:169.254.169.254]/"}, "blocked_destination"),
    ({"url": "http://0.0.0.0:6379/"}, "blocked_destination"),
])
def test_bad_subscriptions_are_refused_with_stable_codes(api, body, code):
    response = api.post("/api/v1/webhooks", body, role="supervisor")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] == code


def test_a_subscription_is_listed_changed_disabled_and_deleted_and_every_change_is_audited(
        app, api, waved, receiver):
    made = subscribe(api, "https://oms.example.com/floor", secret=None, role="supervisor")
    generated = made["secret"]
    assert generated.startswith("whsec_") and len(generated) >= 32
    listed = api.get("/api/v1/webhooks", role="integration").get_json()
    assert [s["id"] for s in listed["subscriptions"]] == [made["id"]]
    assert generated not in json.dumps(listed) and listed["subscriptions"][0]["secret_hint"]
    path = f"/api/v1/webhooks/{made['id']}"
    client = api.client
    auth = {"Authorization": f"Bearer {api.tokens['integration']}"}
    assert client.patch(path, json={}, headers=auth).get_json()["code"] == "missing_field"
    assert client.patch(path, json={"url": "nope"}, headers=auth).get_json()["code"] == "invalid_url"
    assert client.patch(path, json={"enabled": 1}, headers=auth).get_json()["code"] == "invalid_field"
    changed = client.patch(path, json={"url": receiver.url, "events": ["status", "pack_result"]},
                           headers=auth).get_json()
    assert changed["url"] == receiver.url and changed["events"] == ["status", "pack_result"]
    assert "secret" not in changed and changed["updated_by"] == "test-integration"
    rotated = client.patch(path, json={"rotate_secret": True}, headers=auth).get_json()
    assert rotated["secret"] != generated and rotated["secret_hint"] != made["secret_hint"]
    client.patch(path, json={"secret": SECRET}, headers=auth)
    # Paused: nothing is sent; resumed: it catches up with what happened meanwhile.
    assert client.patch(path, json={"enabled": False}, headers=auth).get_json()["enabled"] is False
    waved("TB001")
    dispatcher_of(app).run_once(utcnow())
    assert receiver.requests == []
    client.patch(path, json={"enabled": True}, headers=auth)
    drain(app)
    assert receiver.by_order()["TB001"] == status_seqs(app)["TB001"]
    deleted = client.delete(path, headers=auth)
    assert deleted.status_code == 200 and deleted.get_json()["deleted_by"] == "test-integration"
    assert api.get("/api/v1/webhooks", role="supervisor").get_json()["subscriptions"] == []
    assert len(api.get("/api/v1/webhooks?all=1", role="supervisor").get_json()["subscriptions"]) == 1
    assert client.delete(path, headers=auth).get_json()["code"] == "webhook_deleted"
    assert client.patch(path, json={"enabled": True}, headers=auth).status_code == 409
    assert api.get("/api/v1/webhooks/999", role="supervisor").get_json()["code"] == "unknown_webhook"
    for huge in (2**31, 2**62):       # past a PostgreSQL integer: still a 404, not a 500
        assert api.get(f"/api/v1/webhooks/{huge}", role="supervisor").status_code == 404
        assert api.post(f"/api/v1/webhook-deliveries/{huge}/redeliver",
                        role="supervisor").status_code == 404
    assert api.get("/api/v1/webhook-deliveries/999", role="supervisor").status_code == 404
    assert api.post("/api/v1/webhook-deliveries/999/redeliver",
                    role="supervisor").get_json()["code"] == "unknown_delivery"
    bad = api.get(f"/api/v1/webhooks/{made['id']}/deliveries?state=lost", role="supervisor")
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_field"
    assert api.get(f"/api/v1/webhooks/{made['id']}/deliveries?limit=0",
                   role="supervisor").status_code == 400
    with standalone_session(app, write=False) as s:
        actions = [c.action for c in s.scalars(select(WebhookChange).order_by(WebhookChange.id))]
        secrets = json.dumps([c.detail for c in s.scalars(select(WebhookChange))])
    assert actions == ["created", "changed", "changed", "changed", "disabled", "enabled", "deleted"]
    assert generated not in secrets and SECRET not in secrets


def test_a_session_user_needs_the_csrf_token(app, api, users):
    client = app.test_client()
    page = client.get("/login")
    token = _csrf(page.get_data(as_text=True))
    client.post("/login", data={"username": "supervisor1", "password": "correct horse",
                                "csrf_token": token})
    refused = client.post("/api/v1/webhooks", json={"url": "https://oms.example.com/x"})
    assert refused.status_code == 400 and refused.get_json()["code"] == "csrf_failed"
    page = client.get("/webhooks")
    assert page.status_code == 200
    made = client.post("/api/v1/webhooks", json={"url": "https://oms.example.com/x"},
                       headers={"X-CSRFToken": _csrf(page.get_data(as_text=True))})
    assert made.status_code == 201 and made.get_json()["created_by"] == "supervisor1"


def _csrf(html: str) -> str:
    import re

    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def test_a_host_name_resolving_into_a_blocked_network_gets_nothing(app, api, waved, receiver):
    """`localhost` passes the literal-address check; at delivery it resolves to loopback, which
    this deployment blocks: the attempt is recorded as refused and the receiver sees nothing."""
    app.config["WEBHOOK_BLOCKED_NETWORKS"] = "127.0.0.0/8,::1/128"
    dispatcher_of(app).stop()
    app.extensions["floor.webhooks"] = WebhookDispatcher(app)
    port = receiver.url.split(":")[2].split("/")[0]
    assert api.post("/api/v1/webhooks", {"url": f"http://127.0.0.1:{port}/x"},
                    role="integration").get_json()["code"] == "blocked_destination"
    subscribe(api, receiver.url.replace("127.0.0.1", "localhost"))
    waved("TB001")
    pack(api)
    dispatcher_of(app).run_once(utcnow())
    attempts = attempts_of(app)
    assert attempts and all("blocked destination" in (a.error or "") for a in attempts)
    assert receiver.requests == []


def test_a_deployment_blocking_loopback_blocks_webhooks_to_this_hosts_unspecified_addresses(app, api):
    """0.0.0.0 and :: reach this host's loopback: a list naming only loopback blocks them too,
    and by default :: is blocked as 0.0.0.0/8 is."""
    assert api.post("/api/v1/webhooks", {"url": "http://[::]:8080/x"},
                    role="integration").get_json()["code"] == "blocked_destination"
    app.config["WEBHOOK_BLOCKED_NETWORKS"] = "127.0.0.0/8,::1/128"
    for url in ("http://0.0.0.0:8080/x", "http://[::]:8080/x", "http://0:8080/x"):
        refused = api.post("/api/v1/webhooks", {"url": url}, role="integration")
        assert (refused.status_code, refused.get_json()["code"]) == (400, "blocked_destination"), url


def test_finished_deliveries_are_pruned_after_the_keep_period_the_audit_stays(
        app, api, waved, receiver):
    sub = subscribe(api, receiver.url)
    waved("TB001")
    pack(api)
    start = drain(app)
    with standalone_session(app, write=False) as s:
        delivered = s.scalar(select(func.count(WebhookDelivery.id)))
    assert delivered and pending_count(app) == 0
    receiver.failing_orders.add("TB002")           # one delivery that never ends
    waved("TB002", waybill="SF1000000000002")
    dispatcher = dispatcher_of(app)
    dispatcher.run_once(start)
    dispatcher._next_prune = None                  # the hourly prune is due again
    dispatcher.run_once(start + dt.timedelta(days=29))
    with standalone_session(app, write=False) as s:
        assert s.scalar(select(func.count(WebhookDelivery.id))) > delivered   # nothing gone yet
    dispatcher._next_prune = None
    dispatcher.run_once(start + dt.timedelta(days=31))
    with standalone_session(app, write=False) as s:
        left = s.scalars(select(WebhookDelivery)).all()
        assert left and all(d.state != domain.DELIVERED for d in left)
        assert {d.order_no for d in left} == {"TB002"}
        orphans = s.scalar(select(func.count(WebhookAttempt.id)).where(
            ~WebhookAttempt.delivery_id.in_([d.id for d in left])))
        assert orphans == 0
        assert s.scalar(select(func.count(WebhookChange.id))
                        .where(WebhookChange.subscription_id == sub["id"])) >= 1
