"""Label printers end to end: registering printers, the waybill label moving an order through
labelling to labelled, the print queue against a real TCP printer on loopback and a folder,
retries in order, refusals, roles, and barcode images. The queue is driven with `run_once()`."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from floor import labels
from floor.db import standalone_session, utcnow
from floor.devices import printing
from floor.devices.models import PrintJob
from floor.eventlog import EventLogEntry
from floor.packing.models import Order
from tests.conftest import make_order

MAIN, GIFTBOX = "6901234567892", "6901234567915"
LINES = [{"sku": "SERUM", "name": "精华液 30ml", "qty": 1, "role": "main", "barcodes": [MAIN]},
         {"sku": "GIFTBOX", "name": "限定礼盒", "qty": 1, "role": "giftbox", "barcodes": [GIFTBOX]}]


class LoopbackPrinter:
    """A raw-9100 printer on 127.0.0.1: bound at once (so connecting is refused until
    `start()` listens), then collects every connection's bytes until the sender closes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.sock.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
            with self._changed:
                self.received.append(b"".join(chunks))
                self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.received) >= count, timeout), self.received
            return list(self.received)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tcp_printer():  # type: ignore[no-untyped-def]
    printer = LoopbackPrinter()
    yield printer
    printer.close()


@pytest.fixture
def queue(app):  # type: ignore[no-untyped-def]
    return app.extensions["floor.printing"]


def register(api: Any, printer_id: str = "PRN-P01", station: str = "P01", driver: str = "tcp",
             address: str = "127.0.0.1:9", role: str = "supervisor") -> Any:
    return api.post("/api/v1/printers", {"printer_id": printer_id, "station": station,
                                         "driver": driver, "address": address}, role=role)


def pack(api: Any, order_no: str = "TB001", waybill: str = "SF1000000000001",
         device: str = "PDA-01", wave: str = "W-1") -> dict[str, Any]:
    """An order with a waybill, waved and packed at P01 by its own device."""
    body = make_order(order_no, waybill=waybill, lines=LINES)
    body["customer"] = {"name": "张三", "phone": "13800001234", "address": "江西省南昌市红谷滩区 88 号"}
    assert api.post("/api/v1/orders", body).status_code == 201
    assert api.post("/api/v1/waves", {"wave_no": wave, "order_nos": [order_no],
                                      "station": "P01"}).status_code == 200
    assert api.scan(waybill, device=device)["code"] == "order_opened"
    assert api.scan(MAIN, device=device)["code"] == "accepted"
    last = api.scan(GIFTBOX, device=device)
    assert (last["code"], last["status"]) in {("accepted", "packed"), ("accepted", "labelling")}
    return body


def label(api: Any, order_no: str = "TB001", role: str = "packer", **body: Any) -> Any:
    return api.post(f"/api/v1/orders/{order_no}/label", {"station": "P01", **body}, role=role)


def events_of(app: Any, type_: str) -> list[dict[str, Any]]:
    with app.app_context(), standalone_session(app) as s:
        return [(row.rooms, row.payload) for row in s.scalars(
            select(EventLogEntry).where(EventLogEntry.type == type_).order_by(EventLogEntry.seq))]


def job_row(app: Any, job_id: str) -> PrintJob:
    with app.app_context(), standalone_session(app) as s:
        job = s.scalar(select(PrintJob).where(PrintJob.job_id == job_id))
        assert job is not None
        s.expunge(job)
        return job


# --- the waybill label over raw TCP ----------------------------------------------------------

def test_waybill_label_over_tcp_moves_the_order_to_labelled(app, api, queue, tcp_printer):
    tcp_printer.start()
    created = register(api, address=tcp_printer.address)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["state"] == "online" and created.get_json()["station"] == "P01"
    pack(api)

    queued = label(api, device_id="PDA-01")
    assert queued.status_code == 202, queued.get_json()
    job = queued.get_json()
    assert (job["state"], job["printer_id"], job["kind"], job["order_no"]) == (
        "queued", "PRN-P01", "waybill", "TB001")
    assert job["order_status"] == "labelling"
    assert queue._wake.is_set()                       # publish() woke the print queue
    assert api.get(f"/api/v1/print-jobs/{job['job_id']}", role="packer").get_json()["state"] == "queued"

    assert queue.run_once() == 1
    [sent] = tcp_printer.wait_for(1)
    payload = job_row(app, job["job_id"]).payload
    assert sent == payload.encode("utf-8")
    assert sent.startswith(b"^XA^CI28") and sent.rstrip().endswith(b"^XZ")
    assert ">:SF1>5000000000001" in payload           # the waybill as Code 128, digits in subset C
    assert "E:SIMSUN.TTF" in payload and "138****1234" in payload

    done = api.get(f"/api/v1/print-jobs/{job['job_id']}", role="device").get_json()
    assert (done["state"], done["attempts"], done["last_error"]) == ("printed", 1, None)
    assert done["printed_at"] and done["created_by"] == "test-packer"
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert detail["status"] == "labelled"
    tail = detail["timeline"][-3:]
    assert [(e["from"], e["status"]) for e in tail] == [
        ("packing", "packed"), ("packed", "labelling"), ("labelling", "labelled")]
    assert tail[1]["by"] == "test-packer" and tail[1]["station"] == "P01"
    assert tail[1]["device_id"] == "PDA-01" and "PRN-P01" in tail[1]["reason"]
    assert tail[2]["reason"] == f"label printed on PRN-P01 (job {job['job_id']})"
    assert tail[2]["device_id"] == "PRN-P01" and tail[2]["station"] == "P01"
    [(rooms, queued_event)] = events_of(app, "print_queued")
    assert set(rooms) == {"warehouse:JX", "station:P01", "order:TB001"}
    assert queued_event["job_id"] == job["job_id"] and queued_event["by"] == "test-packer"

    assert queue.run_once() == 0                      # nothing left: nothing sent twice
    assert len(tcp_printer.received) == 1


def test_reprint_queues_a_new_label_and_moves_nothing(app, api, queue, tcp_printer):
    tcp_printer.start()
    register(api, address=tcp_printer.address)
    pack(api)
    label(api)
    queue.run_once()
    timeline = api.get("/api/v1/orders/TB001").get_json()["timeline"]

    again = label(api, role="supervisor")
    assert again.status_code == 202 and again.get_json()["order_status"] == "labelled"
    assert queue.run_once() == 1
    assert len(tcp_printer.wait_for(2)) == 2
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert detail["status"] == "labelled" and detail["timeline"] == timeline


def test_job_id_makes_the_request_idempotent(app, api, queue):
    register(api, driver="file", address=str(Path(app.instance_path) / "labels" / "P01"))
    pack(api)
    first = label(api, job_id="pda01-TB001-1")
    second = label(api, job_id="pda01-TB001-1")
    assert first.status_code == second.status_code == 202
    assert first.get_json()["job_id"] == second.get_json()["job_id"] == "pda01-TB001-1"
    with app.app_context(), standalone_session(app) as s:
        assert len(s.scalars(select(PrintJob)).all()) == 1
    statuses = [e["status"] for e in api.get("/api/v1/orders/TB001").get_json()["timeline"]]
    assert statuses.count("labelling") == 1
    pack(api, "TB002", "SF1000000000002", device="PDA-02", wave="W-2")
    reused = label(api, "TB002", job_id="pda01-TB001-1")
    assert (reused.status_code, reused.get_json()["code"]) == (409, "job_id_in_use")
    bad = label(api, job_id="../../etc/passwd")
    assert (bad.status_code, bad.get_json()["code"]) == (400, "invalid_field")


# --- the file driver -------------------------------------------------------------------------

def test_file_driver_writes_each_label_atomically(app, api, queue):
    folder = Path(app.instance_path) / "labels" / "P01"
    assert register(api, driver="file", address=str(folder), role="integration").status_code == 201
    pack(api)
    job = label(api).get_json()
    station = api.post("/api/v1/printers/PRN-P01/labels",
                       {"kind": "station", "code": "P01", "job_id": "station-P01"}, role="supervisor")
    assert station.status_code == 202 and station.get_json()["kind"] == "station"
    assert queue.run_once() == 2
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted([f"{job['job_id']}.zpl", "station-P01.zpl"])   # no temporary files
    assert (folder / f"{job['job_id']}.zpl").read_bytes() == job_row(app, job["job_id"]).payload.encode()
    assert (folder / "station-P01.zpl").read_text() == labels.station_zpl("P01")
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "labelled"


def test_file_printers_may_write_only_inside_the_print_root(app, api, tmp_path):
    outside = tmp_path.parent / f"elsewhere-{uuid.uuid4().hex[:6]}"
    refused = register(api, driver="file", address=str(outside))
    assert (refused.status_code, refused.get_json()["code"]) == (400, "folder_not_allowed")
    sneaky = register(api, driver="file", address=str(Path(app.instance_path) / "labels" / ".." / "x"))
    assert (sneaky.status_code, sneaky.get_json()["code"]) == (400, "folder_not_allowed")
    relative = register(api, driver="file", address="labels/P01")
    assert (relative.status_code, relative.get_json()["code"]) == (400, "invalid_address")
    root = Path(app.instance_path) / "labels"
    root.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path.parent, root / "link")
    linked = register(api, driver="file", address=str(root / "link" / "x"))
    assert (linked.status_code, linked.get_json()["code"]) == (400, "folder_not_allowed")
    assert register(api, driver="file", address=str(root / "P01")).status_code == 201


@pytest.mark.parametrize("body, code", [
    ({"station": "P01", "driver": "tcp", "address": "10.0.0.5:9100"}, "missing_field"),
    ({"printer_id": "PRN 1", "station": "P01", "driver": "tcp", "address": "10.0.0.5:9100"}, "invalid_field"),
    ({"printer_id": "PRN-1", "station": "P01", "driver": "usb", "address": "x"}, "invalid_field"),
    ({"printer_id": "PRN-1", "station": "P01", "driver": "tcp", "address": "10.0.0.5"}, "invalid_address"),
    ({"printer_id": "PRN-1", "station": "P01", "driver": "tcp", "address": "10.0.0.5:0"}, "invalid_address"),
    ({"printer_id": "PRN-1", "station": "P01", "driver": "tcp", "address": "10.0.0.5:65536"}, "invalid_address"),
    ({"printer_id": "PRN-1", "station": "P01", "driver": "tcp", "address": "bad host:9100"}, "invalid_address"),
    ({"printer_id": "PRN-1", "station": "P01", "driver": "tcp", "address": 9100}, "invalid_field"),
    ({"printer_id": "PRN-1", "station": "P\ud800", "driver": "tcp", "address": "h:1"}, "invalid_field"),
])
def test_bad_printer_registrations_get_400(api, body, code):
    response = api.client.post("/api/v1/printers", data=json.dumps(body), headers={
        "Authorization": f"Bearer {api.tokens['supervisor']}", "Content-Type": "application/json"})
    assert (response.status_code, response.get_json()["code"]) == (400, code), response.get_json()


def test_printers_are_listed_and_can_be_moved(app, api):
    assert register(api, address="printer-p01.local:9100").status_code == 201
    moved = register(api, station="P02", address="[::1]:9100")
    assert moved.status_code == 200 and moved.get_json()["address"] == "[::1]:9100"
    listed = api.get("/api/v1/printers", role="integration").get_json()["printers"]
    assert [(p["printer_id"], p["station"], p["state"], p["queue_depth"]) for p in listed] == [
        ("PRN-P01", "P02", "online", 0)]
    assert listed[0]["registered_by"] == "test-supervisor"
    assert len(events_of(app, "printer")) == 2


# --- retries, order and giving up ------------------------------------------------------------

def test_a_printer_that_is_down_gets_its_labels_later_in_order(app, api, queue, tcp_printer):
    register(api, address=tcp_printer.address)           # bound, not listening: refused
    pack(api, "TB001", "SF1000000000001", device="PDA-01", wave="W-1")
    pack(api, "TB002", "SF1000000000002", device="PDA-02", wave="W-2")
    first = label(api, "TB001").get_json()["job_id"]
    second = label(api, "TB002").get_json()["job_id"]
    now = utcnow()

    assert queue.run_once(now) == 1                       # the first fails; the second waits
    one, two = job_row(app, first), job_row(app, second)
    assert (one.state, one.attempts) == ("queued", 1) and "unreachable" in one.last_error
    assert (two.state, two.attempts) == ("queued", 0)
    [printer] = api.get("/api/v1/printers").get_json()["printers"]
    assert (printer["state"], printer["queue_depth"]) == ("offline", 2)
    assert printer["last_error"] == one.last_error
    assert queue.run_once(now + dt.timedelta(milliseconds=500)) == 0   # backing off

    tcp_printer.start()
    assert queue.run_once(now + dt.timedelta(seconds=1, milliseconds=1)) == 2
    received = tcp_printer.wait_for(2)
    assert received == [job_row(app, first).payload.encode(), job_row(app, second).payload.encode()]
    assert b"SF1000000000001" in received[0] and b"SF1000000000002" in received[1]
    assert queue.run_once(now + dt.timedelta(seconds=60)) == 0
    assert len(tcp_printer.received) == 2                 # no duplicates
    assert [job_row(app, j).attempts for j in (first, second)] == [2, 1]
    assert api.get("/api/v1/printers").get_json()["printers"][0]["state"] == "online"
    for order_no in ("TB001", "TB002"):
        assert api.get(f"/api/v1/orders/{order_no}").get_json()["status"] == "labelled"
    states = [p["state"] for _rooms, p in events_of(app, "printer")]
    assert states == ["online", "offline", "online"]


def test_a_label_that_never_prints_fails_and_says_so(app, api, queue, tcp_printer):
    register(api, address=tcp_printer.address)
    pack(api, "TB001", "SF1000000000001", device="PDA-01", wave="W-1")
    pack(api, "TB002", "SF1000000000002", device="PDA-02", wave="W-2")
    first = label(api, "TB001").get_json()["job_id"]
    second = label(api, "TB002").get_json()["job_id"]
    clock = utcnow()
    waits = []
    for _ in range(printing.MAX_ATTEMPTS):
        assert queue.run_once(clock) == 1
        job = job_row(app, first)
        if job.state == "queued":
            waits.append((job.next_attempt_at - clock).total_seconds())
            assert job_row(app, second).attempts == 0     # blocked behind the first
        clock += dt.timedelta(seconds=61)
    assert waits == [1, 2, 4, 8, 16, 32, 60]
    failed = job_row(app, first)
    assert (failed.state, failed.attempts) == ("failed", printing.MAX_ATTEMPTS)
    [(rooms, event)] = events_of(app, "print_failed")
    assert {"station:P01", "warehouse:JX", "order:TB001"} <= set(rooms)
    assert (event["job_id"], event["printer_id"], event["order_no"]) == (first, "PRN-P01", "TB001")
    assert api.get("/api/v1/print-jobs/" + first, role="integration").get_json()["state"] == "failed"
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "labelling"   # nothing moved back
    [printer] = api.get("/api/v1/printers").get_json()["printers"]
    assert printer["state"] == "offline" and printer["queue_depth"] == 1

    tcp_printer.start()                                    # the next job gets its own turn
    assert queue.run_once(clock) == 1
    assert tcp_printer.wait_for(1) == [job_row(app, second).payload.encode()]


def test_only_the_lease_holder_sends(app, api, tcp_printer):
    tcp_printer.start()
    register(api, address=tcp_printer.address)
    pack(api)
    label(api)
    other = printing.PrintQueue(app)                       # as if in another process
    assert app.extensions["floor.printing"].run_once() == 1
    label(api, role="supervisor")
    assert other.run_once() == 0
    assert app.extensions["floor.printing"].run_once() == 1
    assert len(tcp_printer.wait_for(2)) == 2


# --- refusals and roles ----------------------------------------------------------------------

def test_refusals_are_4xx_with_stable_codes(app, api, waved):
    waved("TB001", waybill="SF1000000000001")
    not_packed = label(api)
    assert (not_packed.status_code, not_packed.get_json()["code"]) == (409, "not_packed")
    unknown = label(api, "NOPE")
    assert (unknown.status_code, unknown.get_json()["code"]) == (404, "unknown_order")
    missing = api.post("/api/v1/orders/TB001/label", None, role="packer")
    assert (missing.status_code, missing.get_json()["code"]) == (400, "invalid_json")
    no_station = api.post("/api/v1/orders/TB001/label", {"job_id": "x"}, role="packer")
    assert (no_station.status_code, no_station.get_json()["code"]) == (400, "missing_field")

    pack(api, "TB002", "SF1000000000002", device="PDA-02", wave="W-2")
    no_printer = label(api, "TB002")
    assert (no_printer.status_code, no_printer.get_json()["code"]) == (409, "no_printer")
    assert "P01" in no_printer.get_json()["message"]
    register(api, address="127.0.0.1:9")
    unknown_printer = label(api, "TB002", printer_id="PRN-X")
    assert (unknown_printer.status_code, unknown_printer.get_json()["code"]) == (404, "unknown_printer")
    with app.app_context(), standalone_session(app) as s:
        s.scalar(select(Order).where(Order.order_no == "TB002")).waybill_no = None
    no_waybill = label(api, "TB002")
    assert (no_waybill.status_code, no_waybill.get_json()["code"]) == (409, "waybill_required")
    assert api.get("/api/v1/orders/TB002").get_json()["status"] == "packed"
    unknown_job = api.get("/api/v1/print-jobs/nope", role="packer")
    assert (unknown_job.status_code, unknown_job.get_json()["code"]) == (404, "unknown_job")


def test_roles(api):
    assert label(api, role="integration").status_code == 403
    assert label(api, role="qc").status_code == 403
    assert register(api, role="packer").status_code == 403
    assert register(api, role="device").status_code == 403
    assert api.get("/api/v1/printers", role="packer").status_code == 403
    assert api.get("/api/v1/print-jobs/x", role="qc").status_code == 403
    assert api.get("/api/v1/labels/station.zpl?code=P01", role="packer").status_code == 403
    assert api.post("/api/v1/printers/PRN-P01/labels", {"kind": "station", "code": "P01"},
                    role="integration").status_code == 403
    assert api.client.get("/api/v1/labels/barcode.svg?text=A1").status_code == 401


# --- printing automatically when a pack session completes -----------------------------------

def _put(api: Any, path: str, body: Any, role: str = "supervisor") -> Any:
    return api.client.put(path, json=body, headers={"Authorization": f"Bearer {api.tokens[role]}"})


def test_auto_print_queues_the_waybill_label_when_packing_completes(app, api, queue, tcp_printer):
    tcp_printer.start()
    register(api, address=tcp_printer.address)
    setting = _put(api, "/api/v1/warehouses/JX/printing", {"auto_print_waybill": True})
    assert setting.status_code == 200 and setting.get_json() == {"warehouse": "JX",
                                                                 "auto_print_waybill": True}
    pack(api)
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "labelling"
    assert queue._wake.is_set()
    assert queue.run_once() == 1
    assert b"SF1000000000001" in tcp_printer.wait_for(1)[0]
    timeline = api.get("/api/v1/orders/TB001").get_json()["timeline"]
    assert [e["status"] for e in timeline][-3:] == ["packed", "labelling", "labelled"]
    assert timeline[-2]["device_id"] == "PDA-01" and timeline[-2]["by"] == "test-packer"

    bad = _put(api, "/api/v1/warehouses/JX/printing", {"auto_print_waybill": "yes"})
    assert (bad.status_code, bad.get_json()["code"]) == (400, "invalid_field")


def test_auto_print_without_a_printer_still_packs_and_tells_the_board(app, api):
    _put(api, "/api/v1/warehouses/JX/printing", {"auto_print_waybill": True}, role="integration")
    pack(api)                                              # the completing scan is accepted
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "packed"
    [(rooms, event)] = events_of(app, "print_failed")
    assert event["code"] == "no_printer" and "station:P01" in rooms and "warehouse:JX" in rooms


def test_without_auto_print_packing_queues_nothing(app, api):
    register(api)
    pack(api)
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "packed"
    assert api.get("/api/v1/printers").get_json()["printers"][0]["queue_depth"] == 0


# --- labels and barcode images ---------------------------------------------------------------

def test_station_and_location_label_zpl(api):
    response = api.get("/api/v1/labels/station.zpl?code=P01")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == labels.station_zpl("P01")
    location = api.get("/api/v1/labels/location.zpl", query_string={"code": "A-01-02^XZ"})
    assert location.status_code == 200
    body = location.get_data(as_text=True)
    assert body.count("^XA") == 1 and body.count("^XZ") == 1 and "A-01-02_5EXZ" in body
    for path, status, code in [("/api/v1/labels/shelf.zpl?code=A", 404, "unknown_label"),
                               ("/api/v1/labels/station.zpl", 400, "missing_field"),
                               ("/api/v1/labels/station.zpl?code=" + "P" * 33, 400, "invalid_field"),
                               ("/api/v1/labels/location.zpl?code=货架", 400, "not_code128")]:
        response = api.get(path)
        assert (response.status_code, response.get_json()["code"]) == (status, code), path


def test_barcode_images_decode_back(api):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    png = api.get("/api/v1/labels/barcode.png?text=SF1000000000001", role="packer")
    assert png.status_code == 200 and png.mimetype == "image/png"
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert (read.text, read.format.name) == ("SF1000000000001", "Code128")
    ean = api.get("/api/v1/labels/barcode.png?text=690123456789&symbology=ean13", role="device")
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(ean.data)))
    assert read.text == "6901234567892"
    svg = api.get("/api/v1/labels/barcode.svg?text=P01&symbology=code128", role="qc")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.get_data(as_text=True).startswith("<svg")


@pytest.mark.parametrize("query, code", [
    ("", "missing_field"),
    ("text=" + "A" * 129, "invalid_field"),
    ("text=%E7%B2%BE", "not_code128"),
    ("text=6901234567893&symbology=ean13", "invalid_ean13"),
    ("text=12AB&symbology=ean13", "invalid_ean13"),
    ("text=A&symbology=qr", "unknown_symbology"),
    ("text=A%00B", "invalid_parameter"),         # refused before the view: see floor/routing.py
])
def test_bad_barcode_requests_get_400(api, query, code):
    for fmt in ("svg", "png"):
        response = api.get(f"/api/v1/labels/barcode.{fmt}?{query}", role="packer")
        assert (response.status_code, response.get_json()["code"]) == (400, code), (fmt, query)


def test_auto_print_after_a_supervisor_override_completes_the_kit(app, api, queue, tcp_printer):
    tcp_printer.start()
    register(api, address=tcp_printer.address)
    _put(api, "/api/v1/warehouses/JX/printing", {"auto_print_waybill": True})
    body = make_order("TB009", waybill="SF1000000000009", lines=[
        *LINES[:1], {"sku": "SAMPLE", "name": "试用装", "qty": 1, "role": "sample",
                     "barcodes": ["6901234567908"]}, LINES[1]])
    assert api.post("/api/v1/orders", body).status_code == 201
    assert api.post("/api/v1/waves", {"wave_no": "W-9", "order_nos": ["TB009"],
                                      "station": "P01"}).status_code == 200
    api.scan("SF1000000000009")
    api.scan(MAIN)
    assert api.scan(GIFTBOX, scan_id="gb-9")["code"] == "giftbox_incomplete"
    done = api.post("/api/v1/scans/gb-9/override", {"reason_code": "stock_out_waived"},
                    role="supervisor")
    assert done.status_code == 200, done.get_json()
    assert api.get("/api/v1/orders/TB009").get_json()["status"] == "labelling"
    assert queue.run_once() == 1
    assert b"SF1000000000009" in tcp_printer.wait_for(1)[0]
    assert api.get("/api/v1/orders/TB009").get_json()["status"] == "labelled"


# --- where a printer may be, and what a label may carry ------------------------------------------

@pytest.mark.parametrize("address", [
    "169.254.169.254:9100",               # the cloud metadata service
    "[fe80::1]:9100",                      # link-local IPv6
    "0.0.0.0:9100",
    "224.0.0.1:9100",                      # multicast
    "2852039166:9100",                     # 169.254.169.254 written as one number
    "0xa9fea9fe:9100",
    "[::ffff:169.254.169.254]:9100",       # IPv4-mapped
])
def test_a_printer_in_a_blocked_network_is_refused(api, address):
    refused = register(api, address=address)
    assert refused.status_code == 400, refused.get_json()
    assert (refused.get_json()["code"], refused.get_json()["field"]) == ("blocked_destination", "address")
    assert api.get("/api/v1/printers").get_json()["printers"] == []


def test_blocked_printer_networks_are_a_setting_and_a_re_registration_is_checked_too(app, api):
    from floor.config import load_config
    from floor.destinations import parse_networks

    assert load_config(environ={})["PRINTER_BLOCKED_NETWORKS"] == parse_networks(None)
    assert load_config(environ={"FLOOR_PRINTER_BLOCKED_NETWORKS": "10.0.0.0/8"})[
        "PRINTER_BLOCKED_NETWORKS"] == parse_networks("10.0.0.0/8")
    assert register(api, address="10.0.0.5:9100").status_code == 201
    moved = register(api, address="169.254.169.254:9100")
    assert (moved.status_code, moved.get_json()["code"]) == (400, "blocked_destination")
    app.config["PRINTER_BLOCKED_NETWORKS"] = parse_networks("10.0.0.0/8")
    added = register(api, "PRN-2", address="10.1.2.3:9100")
    assert (added.status_code, added.get_json()["code"]) == (400, "blocked_destination")
    [printer] = api.get("/api/v1/printers").get_json()["printers"]
    assert printer["address"] == "10.0.0.5:9100"


@pytest.mark.parametrize("address", ["[::]:9100", "100.100.100.200:9100", "[fd00:ec2::254]:80",
                                     "[::ffff:100.100.100.200]:80"])
def test_this_host_and_the_clouds_metadata_addresses_are_blocked_by_default(api, address):
    """`::` is "this host" as 0.0.0.0 is (a connection to it reaches loopback); Alibaba Cloud's
    and AWS's IPv6 metadata services are not link-local addresses."""
    refused = register(api, address=address)
    assert (refused.status_code, refused.get_json()["code"]) == (400, "blocked_destination"), address
    assert register(api, address="[fd00::5]:9100").status_code == 201     # other ULAs are fine


def test_a_deployment_blocking_loopback_blocks_this_hosts_unspecified_addresses(app, api):
    """A list that names loopback but not 0.0.0.0/8 or :: (it replaces the default list) still
    keeps printers off this host: connecting to 0.0.0.0 or :: is connecting to loopback."""
    from floor.destinations import parse_networks

    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind(("::", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        # What the rule is for: both spellings reach the listener on this host.
        for host in ("0.0.0.0", "::"):
            with socket.create_connection((host, port), timeout=5):
                listener.accept()[0].close()
        app.config["PRINTER_BLOCKED_NETWORKS"] = parse_networks("127.0.0.0/8,::1/128")
        for address in (f"0.0.0.0:{port}", f"0:{port}", f"[::]:{port}", f"[::ffff:0.0.0.0]:{port}",
                        f"0.1.2.3:{port}"):
            refused = register(api, address=address)
            assert (refused.status_code, refused.get_json()["code"]) == (
                400, "blocked_destination"), (address, refused.get_json())
        assert register(api, address=f"10.0.0.5:{port}").status_code == 201
    finally:
        listener.close()


def test_a_printer_name_is_resolved_and_checked_at_every_send(app, api, queue):
    """A name that now resolves into a blocked network (DNS rebinding) is not connected to."""
    from floor.destinations import parse_networks

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        assert register(api, address=f"localhost:{port}").status_code == 201
        pack(api)
        job = label(api).get_json()
        app.config["PRINTER_BLOCKED_NETWORKS"] = parse_networks("127.0.0.0/8,::1/128")
        assert queue.run_once() == 1
        with pytest.raises(BlockingIOError):
            listener.accept()                          # nothing connected
        row = job_row(app, job["job_id"])
        assert row.state == "queued" and "blocked network" in row.last_error
        printer = api.get("/api/v1/printers").get_json()["printers"][0]
        assert printer["state"] == "error"
        # The same name outside the blocked networks prints (the retry, once due).
        app.config["PRINTER_BLOCKED_NETWORKS"] = parse_networks(None)
        assert queue.run_once(now=utcnow() + dt.timedelta(seconds=5)) == 1
        listener.setblocking(True)
        listener.settimeout(5)
        conn, _ = listener.accept()
        with conn:
            assert conn.recv(8) == b"^XA^CI28"
        assert job_row(app, job["job_id"]).state == "printed"
    finally:
        listener.close()


INJECTIONS = "^XZ^XA^FO0,0^A0N,200,200^FDINJECTED^FS^XZ~JA~JR"


def test_label_text_never_reaches_the_zpl_framing(app, api, queue, tcp_printer):
    """Customer, address and item names full of ZPL commands, and control characters: the
    bytes a real TCP printer gets hold exactly one label, every such text escaped."""
    tcp_printer.start()
    assert register(api, address=tcp_printer.address).status_code == 201
    lines = [dict(LINES[0], name=f"精华液{INJECTIONS}"), LINES[1]]
    body = make_order("TB009", waybill="SF1000000000009", lines=lines)
    body["customer"] = {"name": INJECTIONS, "phone": "13800001234",
                        "address": f"江西省\r\n^XA^FDLINE2^FS\x00\x1b{INJECTIONS}"}
    assert api.post("/api/v1/orders", body).status_code == 201
    assert api.post("/api/v1/waves", {"wave_no": "W-9", "order_nos": ["TB009"],
                                      "station": "P01"}).status_code == 200
    for code in ("SF1000000000009", MAIN, GIFTBOX):
        assert api.scan(code, device="PDA-09")["ok"] in (True, False)
    assert label(api, "TB009").status_code == 202
    place = api.post("/api/v1/printers/PRN-P01/labels", {"kind": "location", "code": "A^XZ^XA~JR"},
                     role="supervisor")
    assert place.status_code == 202, place.get_json()
    assert queue.run_once() == 2
    for sent in tcp_printer.wait_for(2):
        assert sent.count(b"^XA") == 1 and sent.count(b"^XZ") == 1, sent
        assert sent.startswith(b"^XA^CI28") and sent.rstrip(b"\n").endswith(b"^XZ")
        assert b"~" not in sent and b"INJECTED^FS" not in sent
        # No control character but the newlines between commands.
        assert all(b >= 0x20 or b == 0x0A for b in sent), sent
    waybill = tcp_printer.received[0].decode("utf-8")
    assert "_5EXZ_5EXA_5EFO0,0" in waybill and "_7EJA_7EJR" in waybill
