"""Socket.IO admission: who may open an Engine.IO session, and how many at once.

Under the gthread worker an open websocket (or a waiting long-poll) holds one of the worker's
threads, so the gate stands in front of Engine.IO and decides before a session exists:

- a handshake carrying a credential (the session cookie of an open login, or
  `Authorization: Bearer <token>`) is checked there; a wrong one answers 401 `unauthenticated`;
- a handshake carrying none may be a client that authenticates in its Socket.IO CONNECT packet
  (`auth={"token": ...}`, the contract's way): it is admitted as *pending*, at most
  SOCKET_PENDING_PER_ADDRESS per address and SOCKET_PENDING_MAX in all, and closed unless a
  CONNECT to /floor succeeds within SOCKET_AUTH_GRACE_S (soon after a refused CONNECT); past
  those limits it answers 401 `unauthenticated` and no session is made;
- every connection counts towards SOCKET_MAX_PER_ADDRESS (429 `socket_address_limit`) and
  SOCKET_MAX (503 `socket_capacity`), which `floor serve` sizes below the worker's capacity.

Counts are per process (each process has its own worker to protect).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from flask import Flask, request
from flask_babel import gettext as _

from floor.auth.domain import SocketLimits, SocketRefusal, socket_admission
from floor.auth.security import current_principal

log = logging.getLogger(__name__)
SLOT = "floor.socket_slot"          # the environ key Engine.IO's connect hook finds the slot by
REFUSED_CLOSE_S = 1.0               # a refused CONNECT's error packet goes out before the close
SWEEP_S = 0.5


def socket_max_for(capacity: int | None) -> int:
    """The default SOCKET_MAX: the worker's capacity less a reserve for HTTP requests (an eighth,
    at least 4); 1000 where no pool bounds the process (the development server, tests)."""
    if not capacity:
        return 1000
    return max(1, capacity - max(4, capacity // 8))


@dataclass
class _Slot:
    addr: str
    pending: bool                   # no credential yet: must authenticate in its CONNECT
    deadline: float                 # monotonic time a pending slot is closed at
    eio_sid: str | None = None
    released: bool = False


class SocketGate:
    """WSGI middleware in front of Flask-SocketIO's, plus hooks on Engine.IO's connect and
    disconnect events that tie each admitted handshake to its session until it ends."""

    def __init__(self, app: Flask, inner: Callable[..., Iterable[bytes]], server: Any) -> None:
        cfg = app.config
        self.app, self.inner, self.server = app, inner, server
        self.limits = SocketLimits(cfg["SOCKET_MAX"], cfg["SOCKET_MAX_PER_ADDRESS"],
                                   cfg["SOCKET_PENDING_MAX"], cfg["SOCKET_PENDING_PER_ADDRESS"])
        self.grace_s = float(cfg["SOCKET_AUTH_GRACE_S"])
        self.path = "/" + str(cfg.get("SOCKETIO_PATH", "socket.io")).strip("/")
        self.lock = threading.Lock()
        self.open_by_addr: Counter[str] = Counter()
        self.pending_by_addr: Counter[str] = Counter()
        self.by_sid: dict[str, _Slot] = {}
        self._sweeper: threading.Thread | None = None
        self._hook(server.eio)

    # --- counts ---------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.lock:
            return {"open": sum(self.open_by_addr.values()),
                    "pending": sum(self.pending_by_addr.values())}

    def _release(self, slot: _Slot) -> None:
        with self.lock:
            if slot.released:
                return
            slot.released = True
            self.open_by_addr[slot.addr] -= 1
            if self.open_by_addr[slot.addr] <= 0:
                del self.open_by_addr[slot.addr]
            if slot.pending:
                self._unpend(slot)
            if slot.eio_sid is not None:
                self.by_sid.pop(slot.eio_sid, None)

    def _unpend(self, slot: _Slot) -> None:
        slot.pending = False
        self.pending_by_addr[slot.addr] -= 1
        if self.pending_by_addr[slot.addr] <= 0:
            del self.pending_by_addr[slot.addr]

    # --- WSGI -----------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not (path == self.path or path.startswith(self.path + "/")) \
                or "sid" in parse_qs(environ.get("QUERY_STRING", "")):
            return self.inner(environ, start_response)    # not a handshake: its session exists
        addr = environ.get("REMOTE_ADDR") or ""
        with self.app.request_context(environ):
            credential = self._credential()
            with self.lock:
                refusal = socket_admission(
                    credential, sum(self.open_by_addr.values()), self.open_by_addr[addr],
                    sum(self.pending_by_addr.values()), self.pending_by_addr[addr], self.limits)
                if refusal is None:
                    slot = _Slot(addr, credential == "none", time.monotonic() + self.grace_s)
                    self.open_by_addr[addr] += 1
                    if slot.pending:
                        self.pending_by_addr[addr] += 1
            if refusal is not None:
                return self._refuse(refusal, start_response)
        environ[SLOT] = slot
        try:
            return self.inner(environ, start_response)
        finally:
            if slot.eio_sid is None:        # Engine.IO made no session of it
                self._release(slot)

    def _credential(self) -> str:
        has_cookie = self.app.config.get("SESSION_COOKIE_NAME", "session") in request.cookies
        if not has_cookie and not request.headers.get("Authorization"):
            return "none"
        return "valid" if current_principal() is not None else "invalid"

    def _refuse(self, refusal: SocketRefusal, start_response: Callable[..., Any]) -> list[bytes]:
        messages = {
            "unauthenticated": _("Log in or send a bearer token."),
            "socket_address_limit": _("Too many open connections from this address."),
            "socket_capacity": _("The server has no room for another connection; try again shortly."),
        }
        body = json.dumps({"code": refusal.code, "message": messages[refusal.code]},
                          ensure_ascii=False).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if refusal.status != 401:
            headers.append(("Retry-After", "5"))
        reasons = {401: "UNAUTHORIZED", 429: "TOO MANY REQUESTS", 503: "SERVICE UNAVAILABLE"}
        start_response(f"{refusal.status} {reasons[refusal.status]}", headers)
        return [body]

    # --- Engine.IO sessions ---------------------------------------------------------------------
    def _hook(self, eio: Any) -> None:
        on_connect, on_disconnect = eio.handlers.get("connect"), eio.handlers.get("disconnect")

        def connect(eio_sid: str, environ: dict[str, Any]) -> Any:
            slot = environ.get(SLOT)
            if slot is not None:
                with self.lock:
                    slot.eio_sid = eio_sid
                    self.by_sid[eio_sid] = slot
                if slot.pending:
                    self._ensure_sweeper()
            return on_connect(eio_sid, environ) if on_connect else True

        def disconnect(eio_sid: str, reason: Any = None) -> Any:
            try:
                return on_disconnect(eio_sid, reason) if on_disconnect else None
            finally:
                slot = self.by_sid.get(eio_sid)
                if slot is not None:
                    self._release(slot)

        eio.on("connect", connect)
        eio.on("disconnect", disconnect)

    def admitted(self, environ: dict[str, Any]) -> None:
        """A CONNECT to /floor succeeded: a pending connection is pending no more."""
        slot = environ.get(SLOT)
        if slot is not None:
            with self.lock:
                if slot.pending and not slot.released:
                    self._unpend(slot)

    def refused(self, environ: dict[str, Any]) -> None:
        """A CONNECT to /floor was refused: the connection ends shortly (its error packet first)."""
        slot = environ.get(SLOT)
        if slot is not None:
            with self.lock:
                if not slot.released and not slot.pending:
                    slot.pending = True
                    self.pending_by_addr[slot.addr] += 1
                slot.deadline = min(slot.deadline, time.monotonic() + REFUSED_CLOSE_S)
            self._ensure_sweeper()

    def _ensure_sweeper(self) -> None:
        with self.lock:
            if self._sweeper is not None and self._sweeper.is_alive():
                return
            self._sweeper = threading.Thread(target=self._sweep, name="floor-socket-gate", daemon=True)
            self._sweeper.start()

    def _sweep(self) -> None:
        """Close the pending connections past their deadline; stop when none is left."""
        while True:
            time.sleep(SWEEP_S)
            now = time.monotonic()
            with self.lock:
                pending = [s for s in self.by_sid.values() if s.pending]
                if not pending and not self.pending_by_addr:
                    self._sweeper = None
                    return
            for slot in pending:
                if slot.deadline > now or slot.eio_sid is None:
                    continue
                try:
                    self.server.eio.disconnect(slot.eio_sid)
                except Exception:  # noqa: BLE001 - already gone: the release below is what matters
                    log.debug("closing pending socket %s", slot.eio_sid, exc_info=True)
                self._release(slot)
