"""Simulated handhelds and what a packer does with one.

A handheld sends one scan at a time and waits for its verdict, like the real device:
`scan(code)` returns `(verdict, latency_seconds)`. Every scan gets a fresh uuid4 `scan_id`
(or the one given); when the connection drops, the same payload, same `scan_id`, is sent
again after reconnecting, which the service answers with the first verdict.

Replay. A scan whose answer did not come back (connection refused or reset, a timeout, an
HTTP 5xx, or an answer whose code is in `RETRY_CODES`, e.g. ``database_unavailable``) stays
at the head of the handheld's queue: the handheld sends nothing else and sends the same
payload again, with backoff, until the service answers it or `replay_for` seconds have
passed since the first attempt (0: only `retries` more attempts, the old behaviour). Each
`send` leaves `last_attempts` (how many times the payload went out) and `last_refusals`
(the retryable answers it got, by code) for the caller to record.

Transports (all answer the same verdict dicts):

- ``socketio``: python-socketio `Client`, websocket transport only, namespace ``/floor``,
  ``auth={"token": ...}``; the scan is an ``emit`` whose ack is the verdict.
- ``rest``: a keep-alive `requests.Session` posting to ``/api/v1/scans``.
- ``socketio-lean``: the same Socket.IO frames on the same websocket, written and read by the
  calling thread with websocket-client (no reader/writer threads per client).
- ``rest-lean``: HTTP/1.1 keep-alive written and parsed on a plain socket.

The lean variants exist for load generation on a small machine, where the load generator
shares the CPU with the service: they put the same bytes on the wire with less client work.

`endpoint="bare"` sends the same payloads to the benchmark's bare endpoints instead
(``POST /bench/bare`` and the ``bench_bare`` event), which do one database insert each.

`PackScript` is the packer: open an order by its waybill, scan its items (the gift box
last), move to the next order once the service says the order is complete, and, at a given
error rate, make the usual mistakes: a wrong item, the gift box too early, a double read.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import select
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from floor_sim.orders import SimOrder

NAMESPACE = "/floor"
SCAN_EVENT = "scan"
BARE_EVENT = "bench_bare"
SCAN_PATH = "/api/v1/scans"
BARE_PATH = "/bench/bare"
HEARTBEAT_EVENT = "heartbeat"
HEARTBEAT_PATH = "/api/v1/devices/heartbeat"


class HandheldError(RuntimeError):
    """No verdict: the connection failed or the service answered something else."""


class RetryableAnswer(ConnectionError):
    """The service answered, but not with a verdict: try the same scan again later."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


# Answers that mean "not decided, ask again": the scan was not recorded (its transaction was
# rolled back), so the same scan_id may be sent again.
RETRY_CODES = frozenset({"database_unavailable", "server_error", "service_unavailable"})
REPLAY_BACKOFF_S = (0.1, 0.2, 0.5, 1.0)


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Handheld:
    """One device at one station. Subclasses implement `_connect`, `_close`, `_send`."""

    transport = "abstract"

    def __init__(self, url: str, token: str, *, station: str, device_id: str,
                 endpoint: str = "scan", timeout: float = 10.0, retries: int = 1,
                 send_at: bool = True, bare_namespace: str = NAMESPACE,
                 replay_for: float = 0.0) -> None:
        if endpoint not in ("scan", "bare"):
            raise ValueError("endpoint is 'scan' or 'bare'")
        self.url = url.rstrip("/")
        self.token = token
        self.station = station
        self.device_id = device_id
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self.send_at = send_at
        self.bare_namespace = bare_namespace
        self.replay_for = replay_for
        self.connected = False
        self.reconnects = 0
        self.last_attempts = 0
        self.last_refusals: list[str] = []

    # -- public interface --
    def connect(self) -> "Handheld":
        self._connect()
        self.connected = True
        return self

    def close(self) -> None:
        self.connected = False
        try:
            self._close()
        except Exception:
            pass

    def __enter__(self) -> "Handheld":
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def payload(self, code: str, scan_id: str | None = None) -> dict[str, Any]:
        body = {"scan_id": scan_id or str(uuid.uuid4()), "station": self.station,
                "device_id": self.device_id, "code": code}
        if self.send_at:
            body["at"] = _now_iso()
        return body

    def scan(self, code: str, scan_id: str | None = None) -> tuple[dict[str, Any], float]:
        """Send one scan and wait for its verdict: `(verdict, seconds from send to answer)`."""
        body = self.payload(code, scan_id)
        start = time.perf_counter()
        verdict = self.send(body)
        return verdict, time.perf_counter() - start

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a prepared payload until it is answered: reconnect and resend the same payload
        (same scan_id) on a dropped link, a timeout, a 5xx or a retryable answer; give up after
        `retries` more attempts or, with `replay_for`, once that many seconds have passed."""
        attempt = 0
        first = time.monotonic()
        self.last_attempts = 0
        self.last_refusals = []
        while True:
            try:
                if not self.connected:
                    self.connect()
                    self.reconnects += 1
                self.last_attempts += 1
                verdict = self._send(body)
                code = verdict.get("code")
                if isinstance(code, str) and code in RETRY_CODES and verdict.get("ok") is not True:
                    raise RetryableAnswer(code, str(verdict.get("message") or ""))
                return verdict
            except HandheldError:
                raise
            except Exception as exc:
                if isinstance(exc, RetryableAnswer):
                    self.last_refusals.append(exc.code)
                else:
                    self.close()    # a fresh connection for the next attempt
                attempt += 1
                waited = time.monotonic() - first
                if attempt > self.retries and waited >= self.replay_for:
                    raise HandheldError(f"{self.device_id}: no verdict after {attempt} attempts "
                                        f"in {waited:.1f} s: {exc!r}") from exc
                if attempt > self.retries or isinstance(exc, RetryableAnswer):
                    time.sleep(REPLAY_BACKOFF_S[min(attempt - 1, len(REPLAY_BACKOFF_S) - 1)])

    def warm_up(self) -> None:
        """Open the connection before measuring (REST: one keep-alive request)."""
        if not self.connected:
            self.connect()

    def send_dropping(self, body: dict[str, Any], linger: float) -> dict[str, Any] | None:
        """The Wi-Fi drops mid-scan: the payload goes out and the link dies `linger` seconds
        later, before or just after the service answered. Answers the verdict if it came back in
        time, else None. The handheld is disconnected afterwards: `send(body)` reconnects and
        sends the same payload (same scan_id) again, as the real handheld does."""
        if not self.connected:
            self.connect()
        try:
            return self._send_dropping(body, linger)
        finally:
            self.close()

    def heartbeat(self) -> dict[str, Any]:
        """The handheld's screen is open: ``POST /api/v1/devices/heartbeat`` (the Socket.IO
        client sends the ``heartbeat`` event instead). Answers the service's reply."""
        import requests

        resp = requests.post(self.url + HEARTBEAT_PATH,
                             json={"device_id": self.device_id, "station": self.station},
                             headers={"Authorization": f"Bearer {self.token}"},
                             timeout=self.timeout)
        try:
            answer = resp.json()
        except ValueError:
            answer = None
        return answer if isinstance(answer, dict) else {"ok": False, "code": f"http_{resp.status_code}"}

    # -- transport --
    def _connect(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _send_dropping(self, body: dict[str, Any], linger: float) -> dict[str, Any] | None:
        # HTTP transports: the same request on a connection of its own, cut before the answer
        # is read (the keep-alive connection is closed too, by `send_dropping`).
        path = SCAN_PATH if self.endpoint == "scan" else BARE_PATH
        _fire_http(self.url, self.token, path, body, linger, self.timeout)
        return None


def _fire_http(url: str, token: str, path: str, body: dict[str, Any], linger: float,
               timeout: float) -> None:
    """Write one POST and close the connection `linger` seconds later without reading."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if https else 80)
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (f"POST {parts.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode("latin-1")
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if https:
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.sendall(head + data)
        time.sleep(linger)
    finally:
        sock.close()


class SocketIOHandheld(Handheld):
    """python-socketio `Client` over the websocket transport."""

    transport = "socketio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None

    def _namespace(self) -> str:
        return NAMESPACE if self.endpoint == "scan" else self.bare_namespace

    def _connect(self) -> None:
        import socketio  # imported here: the REST handhelds do not need it

        client = socketio.Client(reconnection=False)
        namespaces = sorted({NAMESPACE, self._namespace()})
        try:
            # The token in the handshake too: the server admits the connection before making
            # an Engine.IO session, not on probation until the CONNECT packet.
            client.connect(self.url, auth={"token": self.token}, namespaces=namespaces,
                           headers={"Authorization": f"Bearer {self.token}"},
                           transports=["websocket"], wait_timeout=self.timeout)
        except Exception:
            client.disconnect()
            raise
        self._client = client

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        event = SCAN_EVENT if self.endpoint == "scan" else BARE_EVENT
        verdict = self._client.call(event, body, namespace=self._namespace(), timeout=self.timeout)
        if not isinstance(verdict, dict):
            raise HandheldError(f"{self.device_id}: ack is not a verdict: {verdict!r}")
        return verdict

    def _send_dropping(self, body: dict[str, Any], linger: float) -> dict[str, Any] | None:
        event = SCAN_EVENT if self.endpoint == "scan" else BARE_EVENT
        box: dict[str, Any] = {}

        def ack(*args: Any) -> None:
            box["verdict"] = args[0] if args else None

        self._client.emit(event, body, namespace=self._namespace(), callback=ack)
        time.sleep(linger)
        verdict = box.get("verdict")
        return verdict if isinstance(verdict, dict) else None

    def heartbeat(self) -> dict[str, Any]:
        if not self.connected:
            self.connect()
        answer = self._client.call(HEARTBEAT_EVENT, {"device_id": self.device_id,
                                                     "station": self.station},
                                   namespace=NAMESPACE, timeout=self.timeout)
        return answer if isinstance(answer, dict) else {"ok": False, "code": "no_ack"}


class LeanSocketIOHandheld(Handheld):
    """Socket.IO v5 over Engine.IO v4 on a plain websocket, driven by the calling thread.

    The frames are those python-socketio sends: ``40/floor,{auth}`` to join the namespace,
    ``42/floor,<id>["scan",{...}]`` for the emit and ``43/floor,<id>[verdict]`` for the ack.
    Server pings (``2``) are answered (``3``) whenever the handheld reads, so a handheld left
    idle for longer than the ping interval plus timeout (45 s by default) gets disconnected
    and reconnects on its next scan.
    """

    transport = "socketio-lean"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ws: Any = None
        self._ack = 0
        self._lock = threading.Lock()

    def _namespace(self) -> str:
        return NAMESPACE if self.endpoint == "scan" else self.bare_namespace

    def _connect(self) -> None:
        import websocket

        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        ws = websocket.create_connection(
            f"{scheme}://{parts.netloc}/socket.io/?EIO=4&transport=websocket",
            header=[f"Authorization: Bearer {self.token}"],
            timeout=self.timeout, enable_multithread=False, skip_utf8_validation=True)
        try:
            opening = ws.recv()
            if not isinstance(opening, str) or not opening.startswith("0"):
                raise HandheldError(f"unexpected Engine.IO opening: {opening!r}")
            for ns in sorted({NAMESPACE, self._namespace()}):
                prefix = "40" if ns == "/" else f"40{ns},"
                ws.send(prefix + json.dumps({"token": self.token}))
                while True:
                    msg = ws.recv()
                    if msg == "2":
                        ws.send("3")
                    elif msg.startswith(prefix):
                        break
                    elif msg.startswith("44"):
                        raise HandheldError(f"connection to {ns} refused: {msg[2:]}")
        except BaseException:
            ws.close()
            raise
        self._ws = ws

    def _close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.send("1")
            finally:
                ws.close()

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = self._namespace()
        event = SCAN_EVENT if self.endpoint == "scan" else BARE_EVENT
        with self._lock:
            self._ack += 1
            ack = self._ack
            head = f"42{ns},{ack}" if ns != "/" else f"42{ack}"
            want = f"43{ns},{ack}[" if ns != "/" else f"43{ack}["
            ws = self._ws
            ws.send(head + json.dumps([event, body], separators=(",", ":")))
            deadline = time.monotonic() + self.timeout
            while True:
                msg = ws.recv()
                if not isinstance(msg, str):
                    continue
                if msg.startswith(want):
                    args = json.loads(msg[len(want) - 1:])
                    verdict = args[0] if args else None
                    if not isinstance(verdict, dict):
                        raise HandheldError(f"{self.device_id}: ack is not a verdict: {verdict!r}")
                    return verdict
                if msg == "2":
                    ws.send("3")
                elif msg == "1" or msg.startswith(f"41{ns}"):
                    raise ConnectionError("disconnected by the server")
                if time.monotonic() > deadline:
                    raise TimeoutError("no ack")

    def _send_dropping(self, body: dict[str, Any], linger: float) -> dict[str, Any] | None:
        ns = self._namespace()
        event = SCAN_EVENT if self.endpoint == "scan" else BARE_EVENT
        with self._lock:
            self._ack += 1
            head = f"42{ns},{self._ack}" if ns != "/" else f"42{self._ack}"
            self._ws.send(head + json.dumps([event, body], separators=(",", ":")))
        time.sleep(linger)
        return None


class RestHandheld(Handheld):
    """A keep-alive `requests.Session`."""

    transport = "rest"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session: Any = None

    def _connect(self) -> None:
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        self._session = session

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def warm_up(self) -> None:
        super().warm_up()
        self._session.get(self.url + "/healthz", timeout=self.timeout)

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        path = SCAN_PATH if self.endpoint == "scan" else BARE_PATH
        resp = self._session.post(self.url + path, json=body, timeout=self.timeout)
        return _verdict_from_http(self.device_id, resp.status_code, resp.content)


class LeanRestHandheld(Handheld):
    """HTTP/1.1 keep-alive on a plain socket: the request written and the response read by
    the calling thread, without an HTTP library (responses with Content-Length or chunked
    bodies; a connection the server closed is reopened before the next request)."""

    transport = "rest-lean"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parts = urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._head = (f"Host: {parts.netloc}\r\nAuthorization: Bearer {self.token}\r\n"
                      "Content-Type: application/json\r\nAccept: application/json\r\n")
        self._sock: socket.socket | None = None
        self._buf = b""

    def _connect(self) -> None:
        sock = socket.create_connection((self._host, self._port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._https:
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._host)
        self._sock = sock
        self._buf = b""

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _stale(self) -> bool:
        """True when the server has closed the idle connection (readable with nothing)."""
        sock = self._sock
        if sock is None or self._https:
            return sock is None
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _recv(self) -> bytes:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        return chunk

    def _request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self._stale():
            self._close()
            self._connect()
        assert self._sock is not None
        data = body or b""
        request = (f"{method} {self._prefix}{path} HTTP/1.1\r\n{self._head}"
                   f"Content-Length: {len(data)}\r\n\r\n").encode("latin-1") + data
        self._sock.sendall(request)
        buf = self._buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            buf += self._recv()
        head, rest = buf[:end], buf[end + 4:]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(None, 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            size = int(headers[b"content-length"])
            while len(rest) < size:
                rest += self._recv()
            payload, self._buf = rest[:size], rest[size:]
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            payload, self._buf = self._read_chunked(rest)
        else:  # the body runs to the end of the connection
            chunks = [rest]
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            payload, self._buf = b"".join(chunks), b""
            headers[b"connection"] = b"close"
        closing = headers.get(b"connection", b"").lower() == b"close" or lines[0].startswith(b"HTTP/1.0")
        if closing:
            self._close()
            self.connected = False
        return status, payload

    def _read_chunked(self, rest: bytes) -> tuple[bytes, bytes]:
        out = []
        while True:
            while b"\r\n" not in rest:
                rest += self._recv()
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in rest:
                    rest += self._recv()
                # skip trailers up to the blank line
                while not rest.startswith(b"\r\n"):
                    _, _, rest = rest.partition(b"\r\n")
                    while b"\r\n" not in rest:
                        rest += self._recv()
                return b"".join(out), rest[2:]
            while len(rest) < size + 2:
                rest += self._recv()
            out.append(rest[:size])
            rest = rest[size + 2:]

    def warm_up(self) -> None:
        super().warm_up()
        self._request("GET", "/healthz", None)

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        path = SCAN_PATH if self.endpoint == "scan" else BARE_PATH
        status, data = self._request("POST", path, json.dumps(body, separators=(",", ":")).encode())
        return _verdict_from_http(self.device_id, status, data)


def _verdict_from_http(device_id: str, status: int, data: bytes) -> dict[str, Any]:
    if status >= 500:
        # Not decided: the same scan_id is sent again (see `Handheld.send`).
        try:
            answer = json.loads(data)
        except ValueError:
            answer = None
        code = answer.get("code") if isinstance(answer, dict) else None
        raise RetryableAnswer(code if isinstance(code, str) else f"http_{status}",
                              f"HTTP {status}: {data[:200]!r}")
    try:
        verdict = json.loads(data)
    except ValueError as exc:
        raise HandheldError(f"{device_id}: HTTP {status}, not JSON: {data[:200]!r}") from exc
    if not isinstance(verdict, dict):
        raise HandheldError(f"{device_id}: HTTP {status}: {verdict!r}")
    if status in (401, 403):
        raise HandheldError(f"{device_id}: HTTP {status} {verdict.get('code')}: {verdict.get('message')}")
    if status >= 400 and "ok" not in verdict:
        # An API error ({"code", "message"}) rather than a verdict: keep it as a refusal.
        verdict = {"ok": False, "code": verdict.get("code", f"http_{status}"),
                   "message": verdict.get("message", ""), "http_status": status}
    return verdict


TRANSPORTS: dict[str, type[Handheld]] = {
    "socketio": SocketIOHandheld,
    "rest": RestHandheld,
    "socketio-lean": LeanSocketIOHandheld,
    "rest-lean": LeanRestHandheld,
}


def make_handheld(transport: str, url: str, token: str, *, station: str, device_id: str,
                  **kwargs: Any) -> Handheld:
    try:
        cls = TRANSPORTS[transport]
    except KeyError:
        raise ValueError(f"unknown transport {transport!r}; one of {', '.join(TRANSPORTS)}") from None
    return cls(url, token, station=station, device_id=device_id, **kwargs)


# --- what a packer does ----------------------------------------------------------------------

OPEN_OK = frozenset({"order_opened"})
ITEM_OK = frozenset({"accepted"})
EXPECTED_FOR_KIND: dict[str, frozenset[str]] = {
    "open": OPEN_OK,
    "item": ITEM_OK,
    "wrong_item": frozenset({"wrong_item", "other_order", "unknown_code"}),
    "early_giftbox": frozenset({"giftbox_incomplete"}),
    # Inside the debounce window a double read is a duplicate_read; with debounce off it is
    # credited when the line still has room, else refused as over_scan.
    "double_read": frozenset({"duplicate_read", "over_scan", "accepted"}),
    "bare": frozenset({"ok"}),
    # Injected faults (floor_sim.faults); their steps usually carry a narrower `expected`.
    "other_order": frozenset({"other_order"}),
    "missing_line": frozenset({"accepted", "giftbox_incomplete"}),
    "garbage": frozenset({"unreadable"}),
    "partial_line": frozenset({"unreadable"}),
}
ERROR_KINDS = ("wrong_item", "early_giftbox", "double_read")
# The gift box closes the kit: these roles must be complete before it is accepted (the
# service's default `giftbox_requires`: main items, samples and gifts).
ROLES_BEFORE_GIFTBOX = frozenset({"main", "sample", "gift"})


@dataclass(frozen=True)
class Step:
    code: str
    # open | item | wrong_item | early_giftbox | double_read | bare, and with injected faults
    # (floor_sim.faults) other_order | missing_line | garbage | partial_line
    kind: str
    order_no: str | None = None
    immediate: bool = False        # sent right after the previous scan (a double read)
    # Injected faults (floor_sim.faults): which one, what the service must answer, and how the
    # device sends it. None: the kind's usual expectation, a plain scan.
    fault: str | None = None
    expected: frozenset[str] | None = None   # verdict codes; None: EXPECTED_FOR_KIND[kind]
    complete: bool | None = None   # the verdict's progress.complete must be this (None: any)
    reasons: frozenset[str] | None = None    # an unreadable verdict's params.reason
    action: str | None = None      # drop (Wi-Fi) | unplug | burst (serial double read)
    raw: bytes | None = None       # bytes a serial scanner writes instead of the code (garbage),
                                   # or the half line it writes before an unplug

    @property
    def expect(self) -> frozenset[str]:
        return self.expected if self.expected is not None else EXPECTED_FOR_KIND[self.kind]


@dataclass
class _OrderProgress:
    order: SimOrder
    items: dict[str, int]          # barcode -> units left, non-giftbox lines
    giftbox: dict[str, int]        # barcode -> units left, giftbox lines
    before_giftbox: frozenset[str]  # barcodes of the lines the gift box waits for
    opened: bool = False
    steps: int = 0

    @classmethod
    def of(cls, order: SimOrder) -> "_OrderProgress":
        return cls(order, {l.product.barcode: l.qty for l in order.item_lines},
                   {l.product.barcode: l.qty for l in order.giftbox_lines},
                   frozenset(l.product.barcode for l in order.item_lines
                             if l.product.role in ROLES_BEFORE_GIFTBOX))

    def left(self) -> int:
        return sum(self.items.values()) + sum(self.giftbox.values())


class PackScript:
    """A packer working through a list of orders on one handheld.

    `next_step()` says what to scan next; `observe(step, verdict)` reads the screen. The
    service's verdicts are the truth: a unit counts when it is accepted, an order is done when
    a verdict says ``progress.complete``. An order that cannot be finished (refused opening,
    or still incomplete with everything scanned) is abandoned and left open.
    """

    def __init__(self, orders: Iterable[SimOrder], *, error_rate: float = 0.0,
                 rng: random.Random | None = None, wrong_codes: Sequence[str] = (),
                 open_by: str = "waybill") -> None:
        if not 0.0 <= error_rate < 1.0:
            raise ValueError("error_rate is in [0, 1)")
        self.queue: deque[SimOrder] = deque(orders)
        self.error_rate = error_rate
        self.rng = rng or random.Random()
        self.wrong_codes = list(wrong_codes)
        self.open_by = open_by
        self.current: _OrderProgress | None = None
        self.packed: list[str] = []
        self.abandoned: dict[str, str] = {}
        self._last: Step | None = None
        self._last_accepted = False

    @property
    def orders_left(self) -> int:
        return len(self.queue) + (1 if self.current is not None else 0)

    def next_step(self) -> Step | None:
        cur = self.current
        if cur is None:
            if not self.queue:
                return None
            order = self.queue.popleft()
            self.current = _OrderProgress.of(order)
            code = order.waybill_no if self.open_by == "waybill" else order.order_no
            return self._remember(Step(code, "open", order.order_no))
        cur.steps += 1
        if self.error_rate and self.rng.random() < self.error_rate:
            step = self._mistake(cur)
            if step is not None:
                return self._remember(step)
        pending = [code for code, left in cur.items.items() if left > 0]
        if not pending:
            pending = [code for code, left in cur.giftbox.items() if left > 0]
        if not pending:
            # Everything is scanned yet the service did not call it complete: scan the
            # waybill again (it binds the label if that is what is missing).
            return self._remember(Step(cur.order.waybill_no, "open", cur.order.order_no))
        if len(pending) > 1 and self._last is not None and self._last.code in pending:
            # People tend to finish a different line than the one just scanned, when they can.
            pending.remove(self._last.code)
        return self._remember(Step(self.rng.choice(pending), "item", cur.order.order_no))

    def _remember(self, step: Step) -> Step:
        self._last = step
        return step

    def _mistake(self, cur: _OrderProgress) -> Step | None:
        order_no = cur.order.order_no
        options: list[Step] = []
        own = set(cur.items) | set(cur.giftbox)
        foreign = [c for c in self.wrong_codes if c not in own]
        if foreign:
            options.append(Step(self.rng.choice(foreign), "wrong_item", order_no))
        early = [c for c, left in cur.giftbox.items() if left > 0]
        if early and any(cur.items[c] > 0 for c in cur.before_giftbox):
            options.append(Step(self.rng.choice(early), "early_giftbox", order_no))
        last = self._last
        if (last is not None and last.kind == "item" and last.order_no == order_no
                and self._last_accepted):
            options.append(Step(last.code, "double_read", order_no, immediate=True))
        return self.rng.choice(options) if options else None

    def observe(self, step: Step, verdict: dict[str, Any] | None) -> None:
        cur = self.current
        if cur is None or step.order_no != cur.order.order_no:
            return
        verdict = verdict or {}
        code = verdict.get("code")
        self._last_accepted = code == "accepted"
        if step.kind == "open" and not cur.opened:
            if verdict.get("ok"):
                cur.opened = True
            else:
                self._abandon(f"open refused: {code}")
            return
        if code == "accepted":
            for bucket in (cur.items, cur.giftbox):
                if bucket.get(step.code, 0) > 0:
                    bucket[step.code] -= 1
                    break
        progress = verdict.get("progress")
        if isinstance(progress, dict) and progress.get("complete"):
            self.packed.append(cur.order.order_no)
            self.current = None
            self._last = None
            return
        if cur.steps > self._step_limit(cur):
            self._abandon("too many scans without completing")

    def _step_limit(self, cur: _OrderProgress) -> int:
        return 3 * cur.order.units() + 10

    def _abandon(self, reason: str) -> None:
        assert self.current is not None
        self.abandoned[self.current.order.order_no] = reason
        self.current = None
        self._last = None


class BareScript:
    """Endless scans for the bare endpoints: any code, the answer is {"ok": true}."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.packed: list[str] = []
        self.abandoned: dict[str, str] = {}

    orders_left = 0

    def next_step(self) -> Step:
        return Step(f"2{self.rng.randrange(10**11):011d}", "bare")

    def observe(self, step: Step, verdict: dict[str, Any] | None) -> None:
        pass


@dataclass
class Device:
    """A handheld with the script it follows."""
    handheld: Handheld
    script: PackScript | BareScript
    extra: dict[str, Any] = field(default_factory=dict)
