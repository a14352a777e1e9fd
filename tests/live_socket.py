"""A real `floor serve` and a Socket.IO client recording what it is pushed, for the tests that
watch events arrive (SQLite always, PostgreSQL when FLOOR_TEST_POSTGRES_URL is set)."""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Callable, Iterable, Iterator

import socketio
from floor_sim.server import LiveServer, postgres_schema

PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
LIVE_BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

Event = tuple[str, dict]


@contextlib.contextmanager
def live_server(backend: str, schema: str) -> Iterator[LiveServer]:
    """A server on its own database (a fresh PostgreSQL schema of that name), alerts not run
    on a schedule."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_schema(PG_URL, schema)) if backend == "postgresql" else None
        live = LiveServer(database_url=url, env={"FLOOR_ALERT_INTERVAL_S": "0"})
        live.start()
        stack.callback(live.stop)
        yield live


class RecordingClient:
    """A Socket.IO client of /floor recording every event of these names pushed to it."""

    def __init__(self, url: str, token: str, names: Iterable[str]) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False)
        for name in names:
            self.sio.on(name, self._handler(name), namespace="/floor")
        self.sio.connect(url, namespaces=["/floor"], transports=["websocket"], auth={"token": token})

    def _handler(self, name: str) -> Callable[[dict], None]:
        def handle(data: dict) -> None:
            with self.lock:
                self.events.append((name, data))
        return handle

    def subscribe(self, rooms: list[str], after_seq: int = 0) -> dict:
        return self.sio.call("subscribe", {"rooms": rooms, "after_seq": after_seq},
                             namespace="/floor", timeout=10)

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = 10.0) -> list[Event]:
        """The events so far, once the predicate holds for them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self.events):
                    return list(self.events)
            time.sleep(0.01)
        with self.lock:
            raise AssertionError(f"never came; got {self.events}")

    def first(self, predicate: Callable[[str, dict], bool], timeout: float = 10.0) -> dict:
        """The first event (name, payload) the predicate holds for, once it has come."""
        events = self.wait_for(lambda got: any(predicate(n, e) for n, e in got), timeout)
        return next(e for n, e in events if predicate(n, e))

    def order_nos(self) -> set[str]:
        with self.lock:
            return {e.get("order_no") for _, e in self.events}

    def close(self) -> None:
        self.sio.disconnect()
