"""Alerts are evaluated inside the app on a schedule, by one process at a time (a lease)."""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading

from flask import Flask

from floor.db import get_db, utcnow
from floor.devices import operations as device_operations
from floor.live import operations

log = logging.getLogger(__name__)


class AlertScheduler:
    def __init__(self, app: Flask, interval_s: float) -> None:
        self.app, self.interval_s = app, interval_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        if self._thread is not None or self.interval_s <= 0:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="floor-alerts", daemon=True)
                self._thread.start()

    def run_once(self, now: dt.datetime | None = None) -> int:
        """Evaluate if this process holds the lease; returns how many alert events it made."""
        db = get_db(self.app)
        now = now or utcnow()
        with db.sessionmaker() as s, s.begin():
            s.connection(execution_options={"floor_write": True})
            ttl = dt.timedelta(seconds=max(self.interval_s * 3, 30))
            if not operations.acquire_lease(s, "alerts", self.holder, ttl, now):
                return 0
            events = operations.evaluate_alerts(s, now)
            # Handhelds whose heartbeats stopped go offline on the boards.
            events += device_operations.mark_silent_handhelds(s, now)
        if events:
            self.app.extensions["floor.pump"].notify()
        return len(events)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("alert evaluation failed")

    def stop(self) -> None:
        self._stop.set()
