"""The event pump: the one place that pushes logged events to Socket.IO clients, in seq order.

Use cases write events to the event log inside their transaction; after the commit the entry
point calls `notify()`. The pump thread of every server process reads the log past its cursor
and emits each event to its own clients only (`ignore_queue`), so an event reaches a board on
any process exactly once, in order. Subscriptions are served by the same thread: the backlog
after the client's `after_seq`, then the join, so nothing is missed, doubled or reordered.

Redis only wakes the other processes early; when it is down they poll the log, so scans still
commit, the local process still pushes at once, and remote boards lag by a poll interval.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import select

from floor.db import get_db
from floor.eventlog import EventCounter, EventLogEntry, EventRoom

log = logging.getLogger(__name__)
NAMESPACE = "/floor"
CHANNEL = "floor:events"
BATCH = 500
BACKLOG_LIMIT = 5000


@dataclass
class _Subscription:
    sid: str
    rooms: list[str]
    after_seq: int
    scope: str | None = None       # the warehouse code the client is limited to; None: all
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] = field(default_factory=dict)


def _visible(entry: EventLogEntry, warehouse_code: str) -> bool:
    """Whether a client limited to this warehouse may see the event: events name their
    warehouse as a `warehouse:<code>` room; one naming none is not bound to a warehouse."""
    named = [room[10:] for room in entry.rooms if room.startswith("warehouse:")]
    return not named or warehouse_code in named


class EventPump:
    def __init__(self, app: Flask, socketio: Any, poll_s: float = 0.25,
                 poll_with_redis_s: float = 2.0) -> None:
        self.app, self.socketio = app, socketio
        url = app.config.get("MESSAGE_QUEUE") or ""
        self.redis_url = url if url.startswith(("redis://", "rediss://")) else None
        self.poll_s, self.poll_with_redis_s = poll_s, poll_with_redis_s
        self.cursor = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._subs: "queue.SimpleQueue[_Subscription]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._redis: Any = None
        self._redis_ok = False
        # sid -> rooms joined through the pump: that client has every event of these rooms.
        self._joined: dict[str, set[str]] = {}
        # sid -> seq up to which live events are skipped (the client saw them elsewhere).
        self._skip_upto: dict[str, int] = {}
        # sid -> the one warehouse a client is limited to: events of any other warehouse are
        # never sent to it, whatever rooms it joined (a second fence behind the room check).
        self._scope: dict[str, str] = {}

    # --- called from request threads ---------------------------------------------------------

    def ensure_started(self) -> None:
        if self._threads:
            return
        with self._lock:
            if self._threads:
                return
            self._threads.append(self._spawn(self._run, "floor-event-pump"))
            if self.redis_url:
                self._threads.append(self._spawn(self._listen, "floor-event-wakeup"))

    def _spawn(self, target: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def notify(self) -> None:
        """A transaction with events committed: push them now."""
        self.ensure_started()
        self._wake.set()

    def subscribe(self, sid: str, rooms: list[str], after_seq: int, timeout: float = 10.0,
                  scope: str | None = None) -> dict[str, Any]:
        self.ensure_started()
        sub = _Subscription(sid, rooms, after_seq, scope)
        self._subs.put(sub)
        self._wake.set()
        if not sub.done.wait(timeout):
            return {"ok": False, "code": "busy", "message": "The event pump did not answer; retry."}
        return sub.result

    def forget(self, sid: str) -> None:
        """The client left; its bookkeeping is dropped by the pump thread (which owns it)."""
        if self._threads:
            self._subs.put(_Subscription(sid, [], -1))
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)

    # --- the pump thread ---------------------------------------------------------------------

    def _session(self) -> Any:
        return get_db(self.app).sessionmaker()

    def _run(self) -> None:
        with self._session() as s:
            self.cursor = s.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1)) or 0
        while not self._stop.is_set():
            self._wake.wait(self.poll_with_redis_s if self._redis_ok else self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                with self._session() as s:
                    self._pump(s)              # bring the cursor up to date for new subscribers
                    self._serve_subscriptions(s)
                    if self._pump(s):
                        self._wake.set()       # a full batch: there may be more
            except Exception:  # noqa: BLE001 - a database blip must not end the pump
                log.exception("event pump: will retry")
                self._stop.wait(0.5)

    def _emit(self, entry: EventLogEntry, to: Any, skip: list[str] | None = None) -> None:
        self.socketio.emit(entry.type, entry.payload, to=to, namespace=NAMESPACE,
                           skip_sid=skip or None, ignore_queue=True)

    def _pump(self, s: Any) -> bool:
        rows = s.scalars(select(EventLogEntry).where(EventLogEntry.seq > self.cursor)
                         .order_by(EventLogEntry.seq).limit(BATCH)).all()
        for entry in rows:
            skip = [sid for sid, upto in self._skip_upto.items() if upto >= entry.seq]
            if self._scope:
                skip += [sid for sid, code in self._scope.items() if not _visible(entry, code)]
            self._emit(entry, entry.rooms, skip)
            self.cursor = entry.seq
        if self._skip_upto:
            self._skip_upto = {sid: upto for sid, upto in self._skip_upto.items() if upto > self.cursor}
        if rows:
            self._publish(self.cursor)
        return len(rows) == BATCH

    def _serve_subscriptions(self, s: Any) -> None:
        while True:
            try:
                sub = self._subs.get_nowait()
            except queue.Empty:
                return
            if sub.after_seq < 0:
                self._joined.pop(sub.sid, None)
                self._skip_upto.pop(sub.sid, None)
                self._scope.pop(sub.sid, None)
                continue
            try:
                sub.result = self._subscribe(s, sub)
            except Exception:  # noqa: BLE001
                log.exception("subscription failed")
                sub.result = {"ok": False, "code": "server_error", "message": "Subscription failed."}
            sub.done.set()

    def _subscribe(self, s: Any, sub: _Subscription) -> dict[str, Any]:
        joined = self._joined.setdefault(sub.sid, set())
        if sub.scope is not None:
            self._scope[sub.sid] = sub.scope
        new_rooms = set(sub.rooms) - joined
        sent = 0
        if sub.after_seq > self.cursor:
            # Nobody has seen events that do not exist yet: an after_seq past the log's end
            # (a client bug, or a reset database) is taken as "up to now".
            newest = s.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1)) or 0
            sub.after_seq = min(sub.after_seq, newest)
        if new_rooms and sub.after_seq < self.cursor:
            seqs = (select(EventRoom.seq).where(EventRoom.room.in_(new_rooms),
                                                EventRoom.seq > sub.after_seq,
                                                EventRoom.seq <= self.cursor)
                    .distinct().limit(BACKLOG_LIMIT + 1))
            rows = s.scalars(select(EventLogEntry).where(EventLogEntry.seq.in_(seqs))
                             .order_by(EventLogEntry.seq)).all()
            # Events of a room joined earlier already reached this client (or it had them).
            backlog = [e for e in rows if set(e.rooms) & new_rooms and not set(e.rooms) & joined
                       and (sub.scope is None or _visible(e, sub.scope))]
            if len(backlog) > BACKLOG_LIMIT:
                return {"ok": False, "code": "backlog_too_large",
                        "message": "Too many missed events: reload the full state, then subscribe.",
                        "last_seq": sub.after_seq}
            for entry in backlog:
                self._emit(entry, sub.sid)
            sent = len(backlog)
        for room in new_rooms:
            self.socketio.server.enter_room(sub.sid, room, namespace=NAMESPACE)
        joined |= new_rooms
        if sub.after_seq > self.cursor:
            # The client has seen newer events (from another process): don't send them again.
            self._skip_upto[sub.sid] = max(self._skip_upto.get(sub.sid, 0), sub.after_seq)
        return {"ok": True, "rooms": sorted(joined), "sent": sent,
                "last_seq": max(sub.after_seq, self.cursor)}

    # --- Redis: wake the other processes early -------------------------------------------------

    def _publish(self, seq: int) -> None:
        if self._redis is None or not self._redis_ok:
            return
        try:
            self._redis.publish(CHANNEL, str(seq))
        except Exception:  # noqa: BLE001 - Redis down: others poll the log instead
            self._redis_ok = False

    def _listen(self) -> None:
        import redis

        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=5,
                                                   socket_connect_timeout=2)
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                self._redis_ok = True
                backoff = 0.5
                self._wake.set()           # catch up on whatever happened while it was down
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        try:
                            if int(message["data"]) > self.cursor:
                                self._wake.set()
                        except (TypeError, ValueError):
                            pass
            except Exception as exc:  # noqa: BLE001
                if self._redis_ok:
                    log.warning("Redis unavailable (%s): polling the event log", exc)
                self._redis_ok = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
