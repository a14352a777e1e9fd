"""A serial scanner as the simulator drives it: a pty pair the service reads, and the station
screen the verdicts come back to.

The service reads the slave side of a `PtyScanner` through pyserial (so it must run on the
same host as the simulator), after the scanner is registered with ``POST /api/v1/devices``.
A serial scanner has no answer channel of its own: the service pushes each line's verdict as a
``scan_verdict`` event to the room ``station:<id>`` on the Socket.IO namespace ``/floor``. Each
scanner here has one listener connection subscribed to its station's room, and correlates
verdicts with the lines it wrote first in, first out (one scanner's verdicts come in the order
its lines were written), checking the verdict's ``raw`` against the line.

The listener reads its websocket on one thread of its own, so events are handled in the order
the service pushed them (python-socketio's client runs each event handler on a new thread,
which may reorder them). That order matters after an unplug: a line cut off by it is reported
(``partial_line``) before the scanner's ``device`` event saying it went offline.

`SerialScanner` has the `Handheld` interface (`connect`, `send`, `close`, ...), so the load
loops drive it like a handheld; `send` writes the code and the terminator and answers the
verdict. The service makes the scan_id (`assigns_scan_ids`).
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import requests

from floor_sim.handheld import NAMESPACE, Handheld, HandheldError
from floor_sim.serial_port import TERMINATORS, PtyScanner

VERDICT_EVENT = "scan_verdict"
DEVICE_EVENT = "device"
DEVICES_PATH = "/api/v1/devices"
# "After" every event there is: the subscription sends no backlog, only what comes next.
NO_BACKLOG = 2**53 - 1


class DeviceRegistry:
    """``/api/v1/devices`` with a supervisor or integration token."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self._lock = threading.Lock()

    def register_serial(self, device_id: str, port: str, station: str, *, baudrate: int = 9600,
                        terminator: str | None = "CR", enabled: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"device_id": device_id, "kind": "serial", "port": port,
                                "baudrate": baudrate, "station": station, "enabled": enabled}
        if terminator is not None:
            body["terminator"] = terminator
        with self._lock:
            resp = self.http.post(self.url + DEVICES_PATH, json=body, timeout=self.timeout)
        if resp.status_code not in (200, 201):
            raise HandheldError(f"{device_id}: registration answered {resp.status_code}: "
                                f"{resp.text[:300]}")
        return resp.json()

    def devices(self, station: str | None = None) -> list[dict[str, Any]]:
        params = {"station": station} if station else None
        with self._lock:
            resp = self.http.get(self.url + DEVICES_PATH, params=params, timeout=self.timeout)
        resp.raise_for_status()
        return list(resp.json().get("devices", []))

    def device(self, device_id: str, station: str | None = None) -> dict[str, Any] | None:
        return next((d for d in self.devices(station) if d.get("device_id") == device_id), None)

    def wait_state(self, device_id: str, state: str, *, station: str | None = None,
                   timeout: float = 15.0, poll: float = 0.1) -> dict[str, Any] | None:
        """Poll until the device is in `state`; answers it then, or None at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = self.device(device_id, station)
            except requests.RequestException:
                found = None
            if found is not None and found.get("state") == state:
                return found
            if time.monotonic() > deadline:
                return None
            time.sleep(poll)

    def close(self) -> None:
        self.http.close()


class StationListener:
    """One websocket to ``/floor`` subscribed to ``station:<id>``, read by its own thread.

    Keeps, for one device id, the ``scan_verdict`` events (with when each arrived) in a FIFO and
    the ``device`` events in a list. Events come in the service's seq order; `out_of_order`
    counts any that did not.
    """

    def __init__(self, url: str, token: str, station: str, device_id: str,
                 timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.station = station
        self.device_id = device_id
        self.timeout = timeout
        self.verdicts: deque[tuple[float, dict[str, Any]]] = deque()
        self.device_events: list[dict[str, Any]] = []
        self.last_seq = 0
        self.out_of_order = 0
        self.error: str | None = None
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._acks: dict[int, list[Any]] = {}
        self._ack_id = 0
        self._ws: Any = None
        self._thread: threading.Thread | None = None
        self._closing = False

    # -- connection ---------------------------------------------------------------------------
    def start(self) -> "StationListener":
        import websocket

        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        ws = websocket.create_connection(
            f"{scheme}://{parts.netloc}/socket.io/?EIO=4&transport=websocket",
            timeout=self.timeout, enable_multithread=True)
        try:
            opening = ws.recv()
            if not isinstance(opening, str) or not opening.startswith("0"):
                raise HandheldError(f"unexpected Engine.IO opening: {opening!r}")
            prefix = f"40{NAMESPACE},"
            ws.send(prefix + json.dumps({"token": self.token}))
            while True:
                msg = ws.recv()
                if msg == "2":
                    ws.send("3")
                elif isinstance(msg, str) and msg.startswith(prefix):
                    break
                elif isinstance(msg, str) and msg.startswith(f"44{NAMESPACE}"):
                    raise HandheldError(f"{self.device_id}: listener refused: {msg}")
        except BaseException:
            ws.close()
            raise
        self._ws = ws
        # Reads block for at most a second, so `close` is noticed.
        ws.settimeout(1.0)
        self._thread = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"listen-{self.device_id}")
        self._thread.start()
        answer = self.call("subscribe", {"room": f"station:{self.station}",
                                         "after_seq": NO_BACKLOG})
        if not isinstance(answer, dict) or not answer.get("ok"):
            self.close()
            raise HandheldError(f"{self.device_id}: subscribe to station:{self.station} "
                                f"refused: {answer!r}")
        return self

    def close(self) -> None:
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                with self._send_lock:
                    ws.send("1")
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            try:
                ws.close()
            except Exception:  # noqa: BLE001
                pass
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        with self._cond:
            self._cond.notify_all()

    def _send(self, frame: str) -> None:
        ws = self._ws
        if ws is None:
            raise HandheldError(f"{self.device_id}: the listener is closed")
        with self._send_lock:
            ws.send(frame)

    def call(self, event: str, data: Any) -> Any:
        with self._cond:
            self._ack_id += 1
            ack_id = self._ack_id
            self._acks[ack_id] = []
        self._send(f"42{NAMESPACE},{ack_id}" + json.dumps([event, data], separators=(",", ":")))
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while not self._acks[ack_id]:
                left = deadline - time.monotonic()
                if left <= 0 or self.error is not None:
                    del self._acks[ack_id]
                    raise HandheldError(f"{self.device_id}: no answer to {event}"
                                        + (f" ({self.error})" if self.error else ""))
                self._cond.wait(left)
            args = self._acks.pop(ack_id)[0]
        return args[0] if args else None

    # -- the reader thread --------------------------------------------------------------------
    def _read_loop(self) -> None:
        import websocket

        event_prefix = f"42{NAMESPACE},"
        ack_prefix = f"43{NAMESPACE},"
        while not self._closing:
            ws = self._ws
            if ws is None:
                break
            try:
                msg = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception as exc:  # noqa: BLE001 - the connection is gone
                if not self._closing:
                    self._fail(f"{type(exc).__name__}: {exc}")
                break
            if not isinstance(msg, str) or not msg:
                continue
            if msg == "2":
                try:
                    self._send("3")
                except Exception:  # noqa: BLE001
                    pass
            elif msg.startswith(event_prefix):
                self._on_event(msg[len(event_prefix):])
            elif msg.startswith(ack_prefix):
                rest = msg[len(ack_prefix):]
                digits = len(rest) - len(rest.lstrip("0123456789"))
                try:
                    ack_id, args = int(rest[:digits]), json.loads(rest[digits:])
                except ValueError:
                    continue
                with self._cond:
                    if ack_id in self._acks:
                        self._acks[ack_id].append(args)
                        self._cond.notify_all()
            elif msg == "1" or msg.startswith(f"41{NAMESPACE}"):
                if not self._closing:
                    self._fail("disconnected by the server")
                break

    def _fail(self, why: str) -> None:
        with self._cond:
            self.error = why
            self._cond.notify_all()

    def _on_event(self, body: str) -> None:
        received = time.perf_counter()
        digits = len(body) - len(body.lstrip("0123456789"))
        try:
            name, *args = json.loads(body[digits:])
        except ValueError:
            return
        payload = args[0] if args else None
        if not isinstance(payload, dict):
            return
        seq = payload.get("seq")
        if isinstance(seq, int):
            if seq <= self.last_seq:
                self.out_of_order += 1
            self.last_seq = max(self.last_seq, seq)
        if payload.get("device_id") != self.device_id:
            return
        with self._cond:
            if name == VERDICT_EVENT:
                self.verdicts.append((received, payload))
            elif name == DEVICE_EVENT:
                self.device_events.append(payload)
            else:
                return
            self._cond.notify_all()

    # -- waiting ------------------------------------------------------------------------------
    def take(self, timeout: float, accept: Callable[[dict[str, Any]], bool] | None = None,
             strays: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], float]:
        """The next verdict of this device: `(payload, perf_counter when it arrived)`. Verdicts
        `accept` refuses are set aside in `strays` (they answer no line written since)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self.verdicts:
                    received, payload = self.verdicts.popleft()
                    if accept is None or accept(payload):
                        return payload, received
                    if strays is not None:
                        strays.append(payload)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.device_id}: no scan_verdict within {timeout:g} s"
                                       + (f" ({self.error})" if self.error else ""))
                if self.error is not None:
                    raise HandheldError(f"{self.device_id}: listener lost: {self.error}")
                self._cond.wait(left)

    def pending(self) -> list[dict[str, Any]]:
        with self._cond:
            return [payload for _, payload in self.verdicts]

    def device_mark(self) -> int:
        with self._cond:
            return len(self.device_events)

    def wait_device(self, state: str, since: int, timeout: float) -> dict[str, Any] | None:
        """The first ``device`` event in `state` after mark `since`, or None at the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.device_events[since:]:
                    if event.get("state") == state:
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.error is not None:
                    return None
                self._cond.wait(left)


class SerialScanner(Handheld):
    """A serial scanner at its own station: a pty the service reads, registered through the API,
    with a listener for its verdicts. `connect` plugs it in, registers it and waits until the
    service reports it online; `close` disables the registration and unplugs it."""

    transport = "serial"
    kind = "serial"
    assigns_scan_ids = True      # the service makes each line's scan_id

    def __init__(self, url: str, token: str, *, station: str, device_id: str,
                 link: str | Path, registry: DeviceRegistry, terminator: str = "CR",
                 baudrate: int = 9600, timeout: float = 10.0, state_timeout: float = 20.0,
                 **kwargs: Any) -> None:
        kwargs.pop("endpoint", None)
        super().__init__(url, token, station=station, device_id=device_id, timeout=timeout,
                         retries=0, send_at=False, **kwargs)
        self.pty = PtyScanner(link, terminator)
        self.terminator_name = terminator
        self.terminator = TERMINATORS[terminator]
        self.baudrate = baudrate
        self.registry = registry
        self.state_timeout = state_timeout
        self.listener: StationListener | None = None
        self.registered = False
        self.last_received: float | None = None
        # What happened to it, for the summary.
        self.strays: list[dict[str, Any]] = []
        self.raw_mismatches = 0
        self.unplugs = 0
        self.offline_seen = 0          # offline in GET /api/v1/devices after an unplug
        self.online_seen = 0           # back online there after the replug
        self.reads_lost = 0            # reads made while unplugged (never reach the service)
        self.partial_lines = 0         # cut-off lines the service reported (partial_line)
        self.partial_lost = 0          # cut-off lines that never reached the service
        self.out_of_order = 0          # events of closed listeners that came out of seq order

    # -- Handheld interface ------------------------------------------------------------------
    def _connect(self) -> None:
        self.pty.plug()
        if self.listener is None:
            self.listener = StationListener(self.url, self.token, self.station, self.device_id,
                                            self.timeout).start()
        mark = self.listener.device_mark()
        self.registry.register_serial(self.device_id, str(self.pty.link), self.station,
                                      baudrate=self.baudrate, terminator=self.terminator_name)
        self.registered = True
        if self.registry.wait_state(self.device_id, "online", station=self.station,
                                    timeout=self.state_timeout) is None:
            raise HandheldError(f"{self.device_id}: not online {self.state_timeout:g} s after "
                                f"registration: {self.registry.device(self.device_id)}")
        # Its own online event too, so that later waits start after it.
        self.listener.wait_device("online", mark, 2.0)

    def _close(self) -> None:
        try:
            if self.registered:
                # Disabled: the service's reader lets go of the port instead of retrying it.
                self.registry.register_serial(self.device_id, str(self.pty.link), self.station,
                                              baudrate=self.baudrate,
                                              terminator=self.terminator_name, enabled=False)
                self.registered = False
        finally:
            if self.listener is not None:
                self.listener.close()
                self.out_of_order += self.listener.out_of_order
                self.listener = None
            self.pty.close()

    def warm_up(self) -> None:
        if not self.connected:
            self.connect()

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """One read: the code and the terminator on the line, the verdict from the station's
        room. Never re-sent: a scanner has no idea whether its line arrived."""
        if not self.connected:
            self.connect()
        return self.write([str(body["code"])])[0][0]

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.write([str(body["code"])])[0][0]

    def send_dropping(self, body: dict[str, Any], linger: float) -> dict[str, Any] | None:
        raise HandheldError("a serial scanner has no Wi-Fi to drop")

    def heartbeat(self) -> dict[str, Any]:
        return {"ok": True}

    # -- the line ------------------------------------------------------------------------------
    def write(self, codes: list[str], raw: bytes | None = None,
              expect_raw: list[str | None] | None = None) -> list[tuple[dict[str, Any], float]]:
        """Write `codes` (each with the terminator) in one go, or `raw` bytes as they are, and
        answer their verdicts in order, each with the perf_counter time it arrived.
        `expect_raw` is what each verdict's ``raw`` should be (None: anything, for garbage,
        which the service escapes)."""
        if self.listener is None:
            raise HandheldError(f"{self.device_id}: not connected")
        data = raw if raw is not None else b"".join(c.encode("utf-8") + self.terminator
                                                      for c in codes)
        expects = expect_raw if expect_raw is not None else list(codes)
        self.pty.write_raw(data)
        verdicts = []
        for want in expects:
            payload, received = self.listener.take(self.timeout, self._matcher(want), self.strays)
            self.last_received = received
            verdicts.append((payload, received))
        return verdicts

    def _matcher(self, want: str | None) -> Callable[[dict[str, Any]], bool] | None:
        if want is None:
            return None

        def accept(payload: dict[str, Any]) -> bool:
            if payload.get("raw") == want:
                return True
            self.raw_mismatches += 1
            return False

        return accept

    def unplug_cycle(self, half: bytes | None, lost_code: str, away: float = 0.5) -> dict[str, Any]:
        """The cable comes out: mid-line when `half` is given (written, then the unplug), a read
        of `lost_code` made while unplugged goes nowhere, the cable goes back in. Waits for the
        service to report the scanner offline, then online again (GET /api/v1/devices).
        Answers what happened, with the verdict of the cut-off line if the service read it."""
        assert self.listener is not None
        out: dict[str, Any] = {"partial": None, "partial_received": None, "offline": False,
                               "online": False, "lost_reads": 0}
        mark = self.listener.device_mark()
        if half:
            self.pty.write_raw(half)
            time.sleep(0.3)      # the service's reader has the bytes, waiting for the terminator
        self.pty.unplug()
        out["unplugged_at"] = time.perf_counter()
        self.unplugs += 1
        # The cut-off line's verdict comes before the offline event: waiting for the event first
        # leaves no doubt whether there is one.
        offline_event = self.listener.wait_device("offline", mark, self.state_timeout)
        if self.registry.wait_state(self.device_id, "offline", station=self.station,
                                    timeout=self.state_timeout) is not None:
            self.offline_seen += 1
            out["offline"] = True
        if half:
            want = half.decode("utf-8", "replace")
            pending = self.listener.pending()
            if offline_event is not None and any(p.get("raw") == want for p in pending):
                payload, received = self.listener.take(0.1, self._matcher(want), self.strays)
                out["partial"], out["partial_received"] = payload, received
                self.partial_lines += 1
            else:
                self.partial_lost += 1
        try:
            self.pty.scan(lost_code)
        except OSError:
            out["lost_reads"] += 1
            self.reads_lost += 1
        time.sleep(away)
        mark = self.listener.device_mark()
        self.pty.plug()
        if self.registry.wait_state(self.device_id, "online", station=self.station,
                                    timeout=self.state_timeout) is not None:
            self.online_seen += 1
            out["online"] = True
        self.listener.wait_device("online", mark, 2.0)
        return out

    def stats(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "station": self.station, "port": str(self.pty.link),
                "unplugs": self.unplugs, "offline_seen": self.offline_seen,
                "online_seen": self.online_seen, "reads_lost_unplugged": self.reads_lost,
                "partial_lines": self.partial_lines, "partial_lines_lost": self.partial_lost,
                "stray_verdicts": len(self.strays), "raw_mismatches": self.raw_mismatches,
                "out_of_order_events": self.out_of_order
                + (self.listener.out_of_order if self.listener else 0)}


def make_scanners(url: str, token: str, registry: DeviceRegistry, folder: str | Path,
                  stations: list[str], device_ids: list[str], *, terminator: str = "CR",
                  timeout: float = 10.0) -> list[SerialScanner]:
    """One scanner per station, its pty link ``<folder>/<device_id>``."""
    return [SerialScanner(url, token, station=station, device_id=device_id,
                          link=Path(folder) / device_id, registry=registry,
                          terminator=terminator, timeout=timeout)
            for station, device_id in zip(stations, device_ids)]
