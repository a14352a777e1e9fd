"""A background watcher that registers recording files dropped in the recordings folder
(`FLOOR_RECORDINGS_WATCH=1`), one process at a time (a lease, as the alert scheduler)."""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading

from flask import Flask

from floor.db import get_db, standalone_session, utcnow
from floor.evidence import operations
from floor.live.operations import acquire_lease
from floor.packing.domain import Actor

log = logging.getLogger(__name__)
ACTOR = Actor("recordings-watch", "system")


class RecordingWatcher:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval_s = float(app.config.get("RECORDINGS_WATCH_INTERVAL_S", 30))
        self.enabled = bool(app.config.get("RECORDINGS_WATCH"))
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        if self._thread is not None or not self.enabled or self.interval_s <= 0:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="floor-recordings",
                                                daemon=True)
                self._thread.start()

    def run_once(self, now: dt.datetime | None = None) -> int:
        """Register new files if this process holds the lease; returns how many it stored.
        Files are probed between two short transactions, never inside one."""
        now = now or utcnow()
        root = operations.recordings_root(self.app.config)
        with standalone_session(self.app) as s:
            ttl = dt.timedelta(seconds=max(self.interval_s * 3, 30))
            if not acquire_lease(s, "recordings-watch", self.holder, ttl, now):
                return 0
        if not root.is_dir():
            return 0
        with standalone_session(self.app, write=False) as s:
            planned = operations.new_folder_files(s, root, root)
        probed = operations.probe_all(planned)
        if not probed:
            return 0
        with get_db(self.app).write_lock, standalone_session(self.app) as s:
            for req, info in probed:
                operations.store_recording(s, req, info, ACTOR)
        return len(probed)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("recordings watch failed")

    def stop(self) -> None:
        self._stop.set()
