"""Serial scanners: one reader thread per port, outside the request path, feeding each line into
the same scan pipeline as the handhelds.

`ReaderSupervisor` (one per process, started by `floor serve`) keeps a reader running for every
enabled serial device this process holds the lease of: with several processes or hosts, exactly
one reads a port (and pyserial's exclusive lock guards the port on the host too). A reader that
loses its port (unplugged, removed, permission) reports the device `offline` and reopens it with
backoff; once it reads again the device is `online`.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import stat
import threading
import time
import tomllib
import uuid
from typing import Any, Callable, Sequence

import serial
from sqlalchemy.exc import DBAPIError
from flask import Flask
from flask_babel import force_locale

from floor.db import get_db, run_in_transaction, utcnow
from floor.devices import domain, operations
from floor.eventlog import PendingEvent
from floor.packing.domain import Actor

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1
# Bytes without a terminator for this long are a line that will not end (a scanner set to
# another suffix, or cut off): reported as unreadable rather than left hanging.
IDLE_FLUSH_S = 1.5
# An open port is a live scanner: its last seen moves on this often even when nobody scans.
HEARTBEAT_S = 20.0
LEASE_TTL = dt.timedelta(seconds=20)
TICK_S = 2.0


def open_port(spec: domain.SerialSpec,
              globs: Sequence[str] = domain.DEFAULT_SERIAL_PORT_GLOBS) -> Any:
    """Opens a serial device by its path, exclusively (one reader per port on this host).

    Never `serial_for_url`: a URL (`socket://`, `spy://...?file=`, `rfc2217://`) would connect
    anywhere or write files. The path and the device it links to (a /dev/serial/by-id link
    names /dev/ttyUSBn) must both be allowed, and what is opened must be a character device,
    checked again on the open file, so a link swapped in between cannot lead elsewhere."""
    real = os.path.realpath(spec.port)
    if not (domain.port_allowed(spec.port, globs) and domain.port_allowed(real, globs)):
        raise serial.SerialException(f"{spec.port} is not an allowed serial device path")
    if not stat.S_ISCHR(os.stat(real).st_mode):
        raise serial.SerialException(f"{spec.port} is not a serial device")
    port = serial.Serial(port=real, baudrate=spec.baudrate, timeout=READ_TIMEOUT_S,
                         exclusive=True)
    if not stat.S_ISCHR(os.fstat(port.fileno()).st_mode):
        port.close()
        raise serial.SerialException(f"{spec.port} is not a serial device")
    return port


SCREEN_LANGUAGES = ("zh", "en")


def _render_in(lang: str, render: Callable[[str, dict[str, Any]], str]
               ) -> Callable[[str, dict[str, Any]], str]:
    def rendered(code: str, params: dict[str, Any]) -> str:
        with force_locale(lang):
            return render(code, params)
    return rendered


def _reason(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[:160]


class SerialReader(threading.Thread):
    """Reads one port: lines to `submit`, state changes to `report`. Never raises out."""

    def __init__(self, spec: domain.SerialSpec,
                 submit: Callable[[domain.SerialSpec, domain.Frame], None],
                 report: Callable[[domain.SerialSpec, str, str], None],
                 opener: Callable[[domain.SerialSpec], Any] = open_port) -> None:
        super().__init__(name=f"floor-serial-{spec.device_id}", daemon=True)
        self.spec, self.submit, self.report, self.opener = spec, submit, report, opener
        self._stop_event = threading.Event()
        self.lines_read = 0
        self.bytes_read = 0

    def stop(self) -> None:
        self._stop_event.set()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        attempt, last_report = 0, None
        while not self.stopping:
            try:
                port = self.opener(self.spec)
            except (serial.SerialException, OSError, ValueError) as exc:
                reason = f"cannot open {self.spec.port}: {_reason(exc)}"
                if reason != last_report:          # not one event per retry
                    self._safe_report("offline", reason)
                    last_report = reason
                self._stop_event.wait(domain.reconnect_delay(attempt))
                attempt += 1
                continue
            attempt, last_report = 0, None
            self._safe_report("online", f"reading {self.spec.port}")
            framer = domain.LineFramer(self.spec.terminator)
            try:
                self._read(port, framer)
                reason = "reader stopped"
            except (serial.SerialException, OSError) as exc:
                reason = f"disconnected: {_reason(exc)}"
            finally:
                try:
                    port.close()
                except Exception:  # noqa: BLE001 - a vanished device may fail to close
                    pass
            # A line cut off by the unplug is not a barcode: say so, the packer rescans.
            for frame in framer.flush("partial_line"):
                self._safe_submit(frame)
            if not self.stopping:
                self._safe_report("offline", reason)
                last_report = reason

    def _read(self, port: Any, framer: domain.LineFramer) -> None:
        last_data = last_beat = time.monotonic()
        while not self.stopping:
            data = port.read(max(1, getattr(port, "in_waiting", 0) or 0))
            now = time.monotonic()
            if data:
                last_data = now
                self.bytes_read += len(data)
                for frame in framer.feed(data):
                    self._safe_submit(frame)
            elif framer.pending and now - last_data > IDLE_FLUSH_S:
                for frame in framer.flush("no_terminator"):
                    self._safe_submit(frame)
            if now - last_beat > HEARTBEAT_S:
                last_beat = now
                self._safe_report("online", f"reading {self.spec.port}")

    def _safe_submit(self, frame: domain.Frame) -> None:
        self.lines_read += 1
        try:
            self.submit(self.spec, frame)
        except Exception:  # noqa: BLE001 - one bad line must not stop the port
            log.exception("scan from %s failed", self.spec.device_id)

    def _safe_report(self, state: str, reason: str) -> None:
        try:
            self.report(self.spec, state, reason)
        except Exception:  # noqa: BLE001
            log.exception("could not record the state of %s", self.spec.device_id)


class ReaderSupervisor:
    """Keeps one reader per leased serial device of this process, in step with the registry."""

    def __init__(self, app: Flask, opener: Callable[[domain.SerialSpec], Any] | None = None) -> None:
        self.app = app
        # The allow-list is read at each open: the configuration, not a copy taken at start.
        self.opener = opener or (lambda spec: open_port(spec, self.port_globs))
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.readers: dict[str, SerialReader] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()

    @property
    def port_globs(self) -> Sequence[str]:
        # The list registrations are checked against (an empty one allows no port), never a
        # wider default of its own.
        return self.app.config["SERIAL_PORT_GLOBS"]

    # --- lifecycle ---------------------------------------------------------------------------
    def ensure_started(self) -> None:
        # Off on processes whose host has no scanners plugged in (FLOOR_SERIAL_READERS=0).
        if self._thread is not None or not self.app.config.get("SERIAL_READERS", True):
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="floor-serial", daemon=True)
                self._thread.start()

    def notify(self) -> None:
        """The registry changed: reconcile now rather than at the next tick."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for reader in list(self.readers.values()):
            reader.stop()
        for reader in list(self.readers.values()):
            reader.join(timeout=2)
        self.readers.clear()

    def load_configured(self) -> list[str]:
        """Register the scanners listed in FLOOR_DEVICES_FILE (TOML, `[[scanner]]` tables with
        the registration fields). A bad entry is logged and skipped, never fatal to serving."""
        path = self.app.config.get("DEVICES_FILE")
        if not path:
            return []
        try:
            with open(path, "rb") as fh:
                entries = tomllib.load(fh).get("scanner", [])
        except (OSError, tomllib.TOMLDecodeError) as exc:
            log.error("cannot read the devices file %s: %s", path, exc)
            return []
        registered = []
        actor = Actor("config", "supervisor", None, None)
        for entry in entries if isinstance(entries, list) else []:
            try:
                with self.app.app_context():
                    body, _, events = run_in_transaction(lambda s: operations.register_device(
                        s, {"kind": "serial", **entry}, actor, self.port_globs))
                    self._publish(events)
                registered.append(body["device_id"])
            except Exception as exc:  # noqa: BLE001 - one bad entry, the others still count
                log.error("devices file %s: entry %r skipped: %s", path, entry, exc)
        return registered

    def _run(self) -> None:
        self.load_configured()
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.exception("serial reader supervision failed")
            self._wake.wait(TICK_S)
            self._wake.clear()

    # --- one reconciliation --------------------------------------------------------------------
    def run_once(self) -> dict[str, SerialReader]:
        """Start readers for devices leased to this process, stop the others."""
        from floor.live.operations import acquire_lease

        db = get_db(self.app)
        now = utcnow()
        with db.sessionmaker() as s:
            wanted = {spec.device_id: spec for spec in operations.serial_devices(s)}
        held: set[str] = set()
        if wanted or self.readers:
            with db.sessionmaker() as s, s.begin():
                s.connection(execution_options={"floor_write": True})
                for device_id in sorted(wanted):
                    if acquire_lease(s, f"serial:{device_id}", self.holder, LEASE_TTL, now):
                        held.add(device_id)
        for device_id, reader in list(self.readers.items()):
            spec = wanted.get(device_id)
            if spec is None or device_id not in held or spec != reader.spec or not reader.is_alive():
                reader.stop()
                reader.join(timeout=2)
                del self.readers[device_id]
        for device_id in sorted(held):
            if device_id not in self.readers:
                reader = SerialReader(wanted[device_id], self.submit, self.report, self.opener)
                self.readers[device_id] = reader
                reader.start()
        return self.readers

    # --- into the scan pipeline ------------------------------------------------------------------
    def submit(self, spec: domain.SerialSpec, frame: domain.Frame) -> dict[str, Any]:
        """One line, one scan transaction (the same use case as the handhelds'), its verdict
        pushed to the station. Retried with the same scan_id while the database is away."""
        from floor.scan import messages
        from floor.scan.operations import ScanRequest

        code = frame.text if frame.readable else frame.raw.decode("utf-8", "backslashreplace")
        request = ScanRequest(str(uuid.uuid4()), spec.station, spec.device_id, code,
                              reader_error=frame.error)
        actor = Actor(spec.device_id, "device", spec.device_id, spec.station)
        delay = 0.2
        while True:
            try:
                with self.app.app_context(), force_locale(self.app.config["BABEL_DEFAULT_LOCALE"]):
                    result = run_in_transaction(lambda s: operations.record_serial_scan(
                        s, request, actor, self.app.config["SCAN_DEBOUNCE_MS"], messages.render,
                        {lang: _render_in(lang, messages.render) for lang in SCREEN_LANGUAGES}))
                    self._publish(result.events)
                    return result.response
            except DBAPIError:  # the database is away: keep the line, keep the order
                if self._stop.is_set():
                    raise
                log.warning("scan from %s not recorded yet, retrying", spec.device_id, exc_info=True)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def report(self, spec: domain.SerialSpec, state: str, reason: str) -> None:
        with self.app.app_context():
            events = run_in_transaction(
                lambda s: operations.set_state(s, spec.device_id, state, reason, "floor"))
            self._publish(events)

    def _publish(self, events: list[PendingEvent]) -> None:
        if events:
            self.app.extensions["floor.pump"].notify()
