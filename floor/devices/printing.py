"""Label printers: the drivers that send ZPL, and the per-printer print queue worker.

One process at a time sends (a lease, like the alert scheduler). For each printer the worker
takes the oldest queued job; when it is due it is sent outside any transaction, then the result
is recorded in a short one. A job that fails blocks the later jobs of its printer (a printer out
of paper must not print the next parcels' labels first) and is retried with exponential backoff
(1 s, 2 s, 4 s ... at most 60 s); after MAX_ATTEMPTS it is `failed`, the printer is marked
offline or in error and a `print_failed` event goes to the station's and warehouse's boards, and
the next job of that printer gets its own turn.

Delivery is at least once: raw port 9100 has no acknowledgement, so a crash between the send and
the record prints that label again when the worker comes back.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import socket
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from flask import Flask
from sqlalchemy import func, select

from floor import destinations
from floor.db import get_db, utcnow
from floor.devices import print_operations
from floor.devices.models import Printer, PrintJob
from floor.live import operations as live_operations

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF_S = 60.0
JOBS_PER_PRINTER_PER_ROUND = 20
LEASE = "printing"
LEASE_TTL = dt.timedelta(seconds=90)
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_JOB_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PrintError(Exception):
    """A send that did not reach the printer. `state` is what the printer is then: `offline`
    (no connection) or `error` (anything else)."""

    def __init__(self, message: str, state: str = "offline") -> None:
        super().__init__(message)
        self.state = state


class PrinterDriver(Protocol):
    def send(self, job_id: str, data: bytes) -> None: ...


# --- addresses -------------------------------------------------------------------------------

def parse_tcp_address(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`, port 1..65535. Raises ValueError with a readable message."""
    if not isinstance(address, str) or len(address) > 255:
        raise ValueError("A TCP printer's address is host:port.")
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
        if not sep or not host or not all(c in "0123456789abcdefABCDEF:." for c in host):
            raise ValueError("An IPv6 printer address is [address]:port.")
    else:
        host, sep, port = address.rpartition(":")
        if not sep or not _HOST.match(host):
            raise ValueError("A TCP printer's address is host:port, e.g. 10.0.0.5:9100.")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("The port must be a number from 1 to 65535.")
    return host, int(port)


def file_folder(address: str, roots: Sequence[str]) -> Path:
    """The folder of a file-driver printer: absolute, and inside one of the allowed roots
    (FLOOR_PRINT_FILE_ROOT, by default the instance folder's labels/). Symlinks are resolved
    before the check, so a link cannot lead out of the root."""
    if not isinstance(address, str) or not address or len(address) > 255 or "\x00" in address:
        raise ValueError("A file printer's address is a folder.")
    path = Path(address)
    if not path.is_absolute():
        raise ValueError("A file printer's folder must be an absolute path.")
    real = Path(os.path.realpath(path))
    for root in roots:
        root_real = Path(os.path.realpath(root))
        if real == root_real or real.is_relative_to(root_real):
            return real
    raise ValueError("A file printer may write only inside the configured print folder "
                     "(FLOOR_PRINT_FILE_ROOT).")


# --- drivers ---------------------------------------------------------------------------------

class TcpPrinterDriver:
    """The raw "port 9100" protocol: connect, send the ZPL, close. The printer answers nothing.

    The host is resolved at each send and every address it resolves to is checked against the
    blocked networks (FLOOR_PRINTER_BLOCKED_NETWORKS); the connection goes to an address that
    was checked, so a name re-pointed at a metadata service between checks is never reached."""

    def __init__(self, host: str, port: int, timeout: float = 5.0,
                 blocked: Sequence[destinations.Network] = ()) -> None:
        self.host, self.port, self.timeout, self.blocked = host, port, timeout, tuple(blocked)

    def send(self, job_id: str, data: bytes) -> None:
        try:
            addresses = destinations.resolve_allowed(self.host, self.port, self.blocked)
        except destinations.BlockedDestination as exc:
            raise PrintError(f"{self.host}:{self.port} not sent: {exc.address} is in a blocked "
                             "network (FLOOR_PRINTER_BLOCKED_NETWORKS)", "error") from None
        except (socket.gaierror, UnicodeError) as exc:
            raise PrintError(f"{self.host}:{self.port} unreachable: {exc}", "offline") from None
        except OSError as exc:
            raise PrintError(f"{self.host}:{self.port}: {exc}", "offline") from None
        error: OSError | None = None
        for family, sockaddr in addresses:
            try:
                with socket.socket(family, socket.SOCK_STREAM) as conn:
                    conn.settimeout(self.timeout)
                    conn.connect(sockaddr)
                    conn.sendall(data)
                    conn.shutdown(socket.SHUT_WR)
                return
            except OSError as exc:
                error = exc
        if isinstance(error, (ConnectionRefusedError, socket.timeout)):
            raise PrintError(f"{self.host}:{self.port} unreachable: {error}", "offline") from None
        raise PrintError(f"{self.host}:{self.port}: {error}", "offline") from None


class FilePrinterDriver:
    """Writes `<job_id>.zpl` into a folder, atomically (a temporary file renamed into place):
    a reader watching the folder never sees half a label. For tests and label archives."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def send(self, job_id: str, data: bytes) -> None:
        if not _JOB_FILE.match(job_id):
            raise PrintError(f"job id {job_id!r} is not a file name", "error")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{job_id}.", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.folder / f"{job_id}.zpl")
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise PrintError(f"cannot write to {self.folder}: {exc.strerror or exc}", "error") from None


def driver_for(printer: Any, *, file_roots: Sequence[str] = (), timeout: float = 5.0,
               blocked: Sequence[destinations.Network] = ()) -> PrinterDriver:
    """The driver of a printer row (or anything with `driver` and `address`). The file driver's
    folder is checked against the allowed roots again at send time, the TCP driver's addresses
    against the blocked networks."""
    try:
        if printer.driver == "tcp":
            host, port = parse_tcp_address(printer.address)
            return TcpPrinterDriver(host, port, timeout, blocked)
        if printer.driver == "file":
            return FilePrinterDriver(file_folder(printer.address, file_roots))
    except ValueError as exc:
        raise PrintError(str(exc), "error") from None
    raise PrintError(f"unknown printer driver {printer.driver!r}", "error")


# --- the queue worker ------------------------------------------------------------------------

def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed send: 1, 2, 4 ... seconds, at most 60."""
    return dt.timedelta(seconds=min(MAX_BACKOFF_S, 2.0 ** max(attempts - 1, 0)))


@dataclass(frozen=True)
class _Head:
    job_pk: int
    job_id: str
    payload: str
    printer_pk: int
    printer_id: str
    driver: str
    address: str


class PrintQueue:
    def __init__(self, app: Flask, poll_s: float = 1.0) -> None:
        self.app, self.poll_s = app, poll_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- called from request threads ---------------------------------------------------------

    def ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="floor-print-queue", daemon=True)
                self._thread.start()

    def notify(self) -> None:
        """A job was queued (after its commit): look at the queue now, not at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # --- one round ---------------------------------------------------------------------------

    def run_once(self, now: dt.datetime | None = None) -> int:
        """Send what is due, if this process holds the lease. Returns how many sends were tried.
        `now` (tests) is the clock the due times and backoff are judged by."""
        if not self._lease(now or utcnow()):
            return 0
        heads = self._due_heads(now or utcnow())
        if not heads:
            return 0
        if len(heads) == 1:
            return self._drain(heads[0], now)
        with ThreadPoolExecutor(max_workers=min(8, len(heads)), thread_name_prefix="floor-print") as pool:
            return sum(pool.map(lambda head: self._drain(head, now), heads))

    def _lease(self, now: dt.datetime) -> bool:
        db = get_db(self.app)
        with db.write_lock, db.sessionmaker() as s, s.begin():
            s.connection(execution_options={"floor_write": True})
            return live_operations.acquire_lease(s, LEASE, self.holder, LEASE_TTL, now)

    def _due_heads(self, now: dt.datetime) -> list[_Head]:
        with get_db(self.app).sessionmaker() as s:
            first = (select(PrintJob.printer_id, func.min(PrintJob.id).label("job_pk"))
                     .where(PrintJob.state == "queued").group_by(PrintJob.printer_id).subquery())
            rows = s.execute(select(PrintJob, Printer)
                             .join(first, first.c.job_pk == PrintJob.id)
                             .join(Printer, Printer.id == PrintJob.printer_id)
                             .order_by(PrintJob.id)).all()
            return [self._head(job, printer) for job, printer in rows if job.next_attempt_at <= now]

    @staticmethod
    def _head(job: PrintJob, printer: Printer) -> _Head:
        return _Head(job.id, job.job_id, job.payload, printer.id, printer.printer_id,
                     printer.driver, printer.address)

    def _next_head(self, printer_pk: int, now: dt.datetime) -> _Head | None:
        with get_db(self.app).sessionmaker() as s:
            job = s.scalar(select(PrintJob).where(PrintJob.printer_id == printer_pk,
                                                  PrintJob.state == "queued")
                           .order_by(PrintJob.id).limit(1))
            if job is None or job.next_attempt_at > now:
                return None
            return self._head(job, job.printer)

    def _drain(self, head: _Head | None, now: dt.datetime | None) -> int:
        """Send one printer's due jobs in order until one fails or none is left."""
        sent = 0
        while head is not None and sent < JOBS_PER_PRINTER_PER_ROUND and not self._stop.is_set():
            clock = now or utcnow()
            if not self._lease(clock):
                break
            error: PrintError | None = None
            try:
                driver = driver_for(head, file_roots=self.app.config["PRINT_FILE_ROOTS"],
                                    timeout=self.app.config["PRINT_TIMEOUT_S"],
                                    blocked=self.app.config["PRINTER_BLOCKED_NETWORKS"])
                driver.send(head.job_id, head.payload.encode("utf-8"))
            except PrintError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the queue
                log.exception("printer %s: send failed", head.printer_id)
                error = PrintError(f"{type(exc).__name__}: {exc}", "error")
            sent += 1
            self._record(head, error, now or utcnow())
            if error is not None:
                break
            head = self._next_head(head.printer_pk, now or utcnow())
        return sent

    def _record(self, head: _Head, error: PrintError | None, now: dt.datetime) -> None:
        db = get_db(self.app)
        with db.write_lock, db.sessionmaker() as s, s.begin():
            s.connection(execution_options={"floor_write": True})
            if error is None:
                events = print_operations.job_printed(s, head.job_pk, now)
            else:
                events = print_operations.job_failed(s, head.job_pk, str(error)[:500], error.state,
                                                     now, MAX_ATTEMPTS, backoff)
        if events:
            self.app.extensions["floor.pump"].notify()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("print queue round failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()
