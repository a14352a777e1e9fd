"""Status webhooks through a crash: a real `floor serve`, a simulated shift packing orders, an
OMS stand-in on loopback that has outages, and `kill -9` of the server in the middle.

The server is restarted on the same database and the shift goes on. At the end the receiver
must hold every status change of every order exactly once after deduplicating by event id, in
seq order per order, every signature valid, and that set must be the `status` events on record.
Runs on SQLite, and on PostgreSQL too when FLOOR_TEST_POSTGRES_URL is set (in a schema of its
own, dropped afterwards).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from sqlalchemy import create_engine, text

from floor.webhooks import domain
from floor_sim.load import run_shift
from floor_sim.orders import OrderFactory
from floor_sim.server import LiveServer, free_port, postgres_schema

pytestmark = pytest.mark.e2e
PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
SECRET = "whsec_crash_test_secret_0123456789"
SERVER_TIMEOUT_S = 1.0            # the dispatcher's per-request timeout in this test
ORDERS = 24


class Oms:
    """The OMS stand-in: verifies signatures, deduplicates by event id, and answers as its
    current `mode` says ("ok", "500", "drop", "timeout"); besides, every 7th request gets a
    500 (a flaky receiver)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.lock = threading.Lock()
        self.requests = 0
        self.failures: dict[str, int] = defaultdict(int)
        self.bad_signatures = 0
        self.incomplete = 0
        self.processed: dict[str, dict[str, Any]] = {}
        self.first_seen: list[str] = []
        self.duplicates = 0
        oms = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                oms.handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass              # connections the sender gave up on

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/oms/floor-events"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length", "0"))
        raw = req.rfile.read(length)
        if len(raw) < length:
            # The sender died mid-request (the kill -9): a cut-off body is not a signed request,
            # and no answer can reach a dead sender.
            with self.lock:
                self.incomplete += 1
            req.close_connection = True
            return
        signed = domain.verify_signature(SECRET, req.headers.get(domain.SIGNATURE_HEADER), raw,
                                         time.time())
        with self.lock:
            self.requests += 1
            mode = self.mode if self.requests % 7 else "500"
            if not signed:
                self.bad_signatures += 1
                mode = "reject"
            elif mode != "ok":
                self.failures[mode] += 1
        if mode in ("500", "reject"):
            self._answer(req, 500 if mode == "500" else 401)
            return
        if mode == "drop":
            req.close_connection = True
            req.connection.shutdown(socket.SHUT_RDWR)
            return
        body = json.loads(raw)
        with self.lock:
            if body["id"] in self.processed:
                self.duplicates += 1
            else:
                self.processed[body["id"]] = body
                self.first_seen.append(body["id"])
        if mode == "timeout":
            time.sleep(SERVER_TIMEOUT_S * 2)
        with contextlib.suppress(OSError):
            self._answer(req, 200)

    @staticmethod
    def _answer(req: BaseHTTPRequestHandler, status: int) -> None:
        req.send_response(status)
        req.send_header("Content-Length", "0")
        req.end_headers()

    def by_order(self) -> dict[str, list[int]]:
        with self.lock:
            out: dict[str, list[int]] = defaultdict(list)
            for event_id in self.first_seen:
                body = self.processed[event_id]
                out[body["order_no"]].append(body["seq"])
            return dict(out)


@pytest.fixture
def oms() -> Iterator[Oms]:
    receiver = Oms()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@contextlib.contextmanager
def database(backend: str, instance: Path) -> Iterator[tuple[str | None, str]]:
    """(the server's FLOOR_DATABASE_URL or None for its own SQLite file, a URL to read it)"""
    if backend == "sqlite":
        yield None, f"sqlite:///{instance / 'floor.db'}"
        return
    assert PG_URL
    with postgres_schema(PG_URL, "floor_whcrash") as url:
        yield url, url.replace("postgresql://", "postgresql+psycopg://")


def status_events(read_url: str) -> dict[str, list[int]]:
    engine = create_engine(read_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT o.order_no, s.seq FROM status_events s JOIN orders o ON o.id = s.order_id "
                "ORDER BY s.seq")).all()
    finally:
        engine.dispose()
    out: dict[str, list[int]] = defaultdict(list)
    for order_no, seq in rows:
        out[order_no].append(seq)
    return dict(out)


def scalar(read_url: str, sql: str) -> int:
    engine = create_engine(read_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    finally:
        engine.dispose()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def kill_9(server: LiveServer) -> None:
    """SIGKILL to the server's whole process session (gunicorn's master and worker): nothing
    gets to clean up."""
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    server.stop()


BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_status_change_reaches_the_oms_once_in_order_through_outages_and_a_kill_9(
        backend: str, tmp_path: Path, oms: Oms) -> None:
    instance = tmp_path / "instance"
    port = free_port()
    env = {"FLOOR_WEBHOOK_MAX_BACKOFF_S": "1", "FLOOR_WEBHOOK_MAX_ATTEMPTS": "10000",
           "FLOOR_WEBHOOK_TIMEOUT_S": str(SERVER_TIMEOUT_S), "FLOOR_ALERT_INTERVAL_S": "0"}
    with database(backend, instance) as (server_url, read_url):
        def serve() -> LiveServer:
            return LiveServer(instance_path=instance, port=port, database_url=server_url,
                              env=env).start()

        server = serve()
        try:
            device = server.token("device", "crash-handhelds")
            integration = server.token("integration", "crash-oms")
            made = requests.post(f"{server.url}/api/v1/webhooks", timeout=10,
                                 headers={"Authorization": f"Bearer {integration}"},
                                 json={"url": oms.url, "events": ["status"], "secret": SECRET})
            assert made.status_code == 201, made.text
            subscription = made.json()

            shift: dict[str, Any] = {}

            def run() -> None:
                try:
                    shift["result"] = run_shift(
                        server.url, device, integration, handhelds=3, transport="rest",
                        orders=ORDERS, cadence=0.1, cadence_jitter=0.3, duration=120,
                        seed=61, factory=OrderFactory(seed=61, tag="61061"), audit=False)
                except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                    shift["error"] = exc

            worker = threading.Thread(target=run, name="shift", daemon=True)
            worker.start()
            # The receiver's first outage, while the orders come in and waves are released.
            wait_for(lambda: scalar(read_url, "SELECT count(*) FROM status_events") >= 10, 60,
                     "the first status changes")
            oms.mode = "500"
            time.sleep(1.5)
            oms.mode = "timeout"
            time.sleep(1.5)
            oms.mode = "ok"
            # Mid-shift (about a third of the orders packed), with the receiver down again so
            # the outbox has a backlog, the server is killed.
            wait_for(lambda: scalar(read_url, "SELECT count(*) FROM status_events "
                                              "WHERE status = 'packed'") >= ORDERS // 3, 90,
                     "a third of the orders packed")
            oms.mode = "500"
            time.sleep(1.5)
            backlog = scalar(read_url, "SELECT count(*) FROM webhook_deliveries "
                                       "WHERE state = 'pending'")
            packed_at_kill = scalar(read_url, "SELECT count(*) FROM status_events "
                                              "WHERE status = 'packed'")
            kill_9(server)
            time.sleep(1.0)
            oms.mode = "ok"
            seen_before = oms.requests
            server = serve()                      # same instance folder, same database
            # Once the new process dispatches (the dead one's lease has expired), the receiver
            # drops connections for a while.
            wait_for(lambda: oms.requests > seen_before, 60, "the dispatcher to resume")
            oms.mode = "drop"
            time.sleep(1.5)
            oms.mode = "ok"
            worker.join(180)
            assert not worker.is_alive(), "the shift did not end"
            assert "error" not in shift, repr(shift.get("error"))

            def caught_up() -> bool:
                expected = status_events(read_url)
                return sum(map(len, expected.values())) == len(oms.processed)

            wait_for(caught_up, 120, "every status change at the receiver")
            expected = status_events(read_url)
            counts = requests.get(f"{server.url}/api/v1/webhooks/{subscription['id']}",
                                  headers={"Authorization": f"Bearer {integration}"},
                                  timeout=10).json()["counts"]
        finally:
            server.stop()

    summary = shift["result"].summary()
    context = json.dumps({"summary": {k: summary.get(k) for k in ("sent", "answered", "no_answer",
                                                                  "orders_packed")},
                          "failures": oms.failures, "duplicates": oms.duplicates,
                          "incomplete": oms.incomplete,
                          "backlog_at_kill": backlog, "packed_at_kill": packed_at_kill,
                          "counts": counts}, default=str)
    # The kill really happened mid-shift, with deliveries waiting, and the receiver failed on
    # purpose in every way: retries and resends happened.
    assert backlog > 0 and 0 < packed_at_kill < ORDERS, context
    assert all(oms.failures[kind] > 0 for kind in ("500", "timeout", "drop")), context
    assert oms.bad_signatures == 0, context
    # Only the kill may cut a request off (its headers sent, the body not yet): one at most.
    assert oms.incomplete <= 1, context
    assert counts["pending"] == counts["held"] == counts["dead"] == 0, context
    # Exactly the status events on record, each once after dedup, in seq order per order.
    assert oms.by_order() == expected, context
    assert set(oms.processed) == {domain.event_id(seq, "status")
                                  for seqs in expected.values() for seq in seqs}, context
    assert subscription["cursor"] < min(seq for seqs in expected.values() for seq in seqs)
    packed = [body["order_no"] for body in oms.processed.values() if body["status"] == "packed"]
    assert len(packed) == len(set(packed)) and len(packed) > packed_at_kill, context
