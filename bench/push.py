"""The push benchmark: scan commit -> supervisor board receive latency, against a bare baseline.

Run by `make bench` after the scan benchmark (``bench/run.py``), or alone with
``.venv/bin/python bench/run.py --only push`` (or ``.venv/bin/python bench/push.py``).

Each run connects N boards (Socket.IO clients on namespace ``/floor`` subscribed to
``warehouse:JX``), then one handheld opens pre-made orders by waybill at a steady rate
(default 20 scans/s, ~15 s), so each scan commits one ``status`` event (``packing``) that the
event pump pushes to every board. For every (event, board) pair:

- latency = board receive time - the scan's send time (both on this machine's monotonic
  clock, in this process), so it includes the scan's own handling (the commit);
- "after answer" = board receive time - when the scan's HTTP answer came back (the commit is
  before that; negative when the push beats the answer).

Pairs never received within a few seconds after the stream are counted as missing.

Configurations:

- ``one process``: `floor serve --threads 600` (gunicorn gthread), SQLite;
- ``two processes + Redis``: two `floor serve` on one PostgreSQL schema with
  ``FLOOR_MESSAGE_QUEUE`` on a private redis-server; scans to A, boards split evenly over A
  and B (reported separately: B's extra is Redis plus B's pump);
- ``two processes, Redis stopped``: the same after stopping redis-server; B's pump finds the
  events by polling the log (every 0.25 s);
- ``bare``: `bench/bare_push_server.py`, python-socketio alone under gunicorn gthread; a
  ``POST /trigger`` emits to the room (no database, no pump);
- ``gevent worker``: floor under ``gunicorn -k gevent`` (if gevent is installed), 500 boards,
  against the gthread run, with the server's memory.

The boards are lean: the Engine.IO/Socket.IO handshake and the subscribe are done with
websocket-client, then one thread reads all boards' sockets with epoll and parses the
websocket frames itself (timestamping each read). That thread, the handheld and this
process share the machine's cores with the servers; the client CPU is reported.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
try:
    import floor_sim  # noqa: F401
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, str(ROOT / "device-sim"))

import requests  # noqa: E402

from floor_sim.handheld import LeanRestHandheld, _verdict_from_http  # noqa: E402
from floor_sim.load import percentile  # noqa: E402
from floor_sim.orders import KitProfile, OrderFactory, prepare_orders  # noqa: E402
from floor_sim.server import (LiveServer, RedisServer, ServerError, cpu_model, cpu_of,  # noqa: E402
                              free_port, postgres_schema, session_pids)

NAMESPACE = "/floor"
WAREHOUSE = "JX"
ROOM = f"warehouse:{WAREHOUSE}"
STATION = "PUSH01"
# One line per order: the orders are only opened, never packed.
PUSH_PROFILE = KitProfile(main_lines=(1, 1), main_qty=(1, 1), sample_lines=(0, 0),
                          sample_qty=(1, 1), gift_probability=0.0, giftbox_probability=0.0)
P99_TARGET_MS = 50.0
REDIS_TARGET_MS = 10.0
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def log(msg: str) -> None:
    print(f"[push {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


# --- processes -------------------------------------------------------------------------------

def rss_mb(pids: Sequence[int]) -> tuple[float, float]:
    """(largest process RSS, sum over the processes) in MiB."""
    sizes = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return (max(sizes, default=float("nan")), sum(sizes))


class Server:
    """What a run needs of a server: its URL, its processes, tokens."""

    def __init__(self, name: str, url: str, leader: int, live: LiveServer | None = None) -> None:
        self.name, self.url, self.leader, self.live = name, url, leader, live

    def pids(self) -> list[int]:
        return session_pids(self.leader)

    @classmethod
    def of(cls, name: str, live: LiveServer) -> "Server":
        assert live.proc is not None
        return cls(name, live.url, live.proc.pid, live)


class BareServer:
    """`bench/bare_push_server.py` under gunicorn gthread, one process."""

    def __init__(self, threads: int) -> None:
        self.port = free_port()
        self.threads = threads
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "BareServer":
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.proc = subprocess.Popen(
            [str(gunicorn) if gunicorn.exists() else "gunicorn", "-k", "gthread",
             "--threads", str(self.threads), "-w", "1", "--timeout", "0", "--keep-alive", "30",
             "-b", f"127.0.0.1:{self.port}", "--chdir", str(Path(__file__).parent),
             "--log-level", "warning", "bare_push_server:app"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.__exit__()
        raise ServerError("bare push server did not start")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, 9)
                except ProcessLookupError:
                    pass
        self.proc = None


# --- boards ----------------------------------------------------------------------------------

def _masked_text(text: str) -> bytes:
    import websocket

    return websocket.ABNF.create_frame(text, websocket.ABNF.OPCODE_TEXT).format()


class LeanBoard:
    """One board: handshake and subscribe with websocket-client, then raw frames read by
    `BoardReader`. Keeps (receive time, message) for every pushed event."""

    def __init__(self, url: str, token: str, group: str, timeout: float = 30.0) -> None:
        self.url, self.token, self.group, self.timeout = url, token, group, timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.got: list[tuple[float, str]] = []
        self.closed = False
        self.ack: dict[str, Any] = {}

    def connect(self, after_seq: int) -> "LeanBoard":
        import websocket

        parts = urlsplit(self.url)
        ws = websocket.create_connection(
            f"ws://{parts.netloc}/socket.io/?EIO=4&transport=websocket",
            timeout=self.timeout, skip_utf8_validation=True)
        try:
            if not str(ws.recv()).startswith("0"):
                raise ServerError("unexpected Engine.IO opening")
            ws.send(f"40{NAMESPACE}," + json.dumps({"token": self.token}))
            self._until(ws, f"40{NAMESPACE},")
            ws.send(f"42{NAMESPACE},1" + json.dumps(["subscribe", {"rooms": [ROOM], "after_seq": after_seq}]))
            ack = json.loads(self._until(ws, f"43{NAMESPACE},1[")[len(f"43{NAMESPACE},1"):])
            self.ack = ack[0] if ack else {}
            if not self.ack.get("ok"):
                raise ServerError(f"subscribe refused: {self.ack}")
        except BaseException:
            ws.close()
            raise
        # websocket-client reads exactly one frame at a time: nothing is left in its buffers.
        self.sock = ws.sock
        self.sock.setblocking(False)
        return self

    @staticmethod
    def _until(ws: Any, prefix: str) -> str:
        while True:
            msg = ws.recv()
            if not isinstance(msg, str):
                continue
            if msg == "2":
                ws.send("3")
            elif msg.startswith(prefix):
                return msg
            elif msg.startswith("44"):
                raise ServerError(f"refused: {msg}")

    def feed(self, data: bytes, now: float) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= 2:
            opcode, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, off = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, off = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < off + n:
                return
            payload = bytes(buf[off:off + n])
            del buf[:off + n]
            if opcode == 1:
                msg = payload.decode("utf-8", "replace")
                if msg.startswith("42"):
                    self.got.append((now, msg))
                elif msg == "2":
                    self._send("3")
                elif msg == "1" or msg.startswith("41"):
                    self.closed = True
            elif opcode == 8:
                self.closed = True
            elif opcode == 9:
                import websocket
                self._raw(websocket.ABNF.create_frame(payload, websocket.ABNF.OPCODE_PONG).format())

    def _send(self, text: str) -> None:
        self._raw(_masked_text(text))

    def _raw(self, frame: bytes) -> None:
        assert self.sock is not None
        self.sock.setblocking(True)
        try:
            self.sock.sendall(frame)
        finally:
            self.sock.setblocking(False)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.setblocking(True)
                sock.settimeout(1)
                sock.sendall(_masked_text("1"))
            except OSError:
                pass
            sock.close()


class BoardReader:
    """One thread reading every board's socket (epoll), timestamping each read."""

    def __init__(self, boards: Sequence[LeanBoard]) -> None:
        self.boards = boards
        self.sel = selectors.DefaultSelector()
        for b in boards:
            assert b.sock is not None
            self.sel.register(b.sock, selectors.EVENT_READ, b)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="board-reader", daemon=True)
        self.reads = 0

    def start(self) -> "BoardReader":
        self.thread.start()
        return self

    def _run(self) -> None:
        clock = time.perf_counter
        while not self._stop.is_set():
            for key, _ in self.sel.select(0.05):
                board = key.data
                try:
                    data = key.fileobj.recv(262144)  # type: ignore[union-attr]
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                now = clock()
                self.reads += 1
                if not data:
                    board.closed = True
                    self.sel.unregister(key.fileobj)
                    continue
                board.feed(data, now)

    def received(self) -> int:
        return sum(len(b.got) for b in self.boards)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sel.close()


def connect_boards(groups: Sequence[tuple[str, str, str, int, int]]) -> list[LeanBoard]:
    """groups: (label, url, token, count, after_seq)."""
    boards = [LeanBoard(url, token, label) for label, url, token, count, _ in groups for _ in range(count)]
    after = {label: seq for label, _, _, _, seq in groups}
    with ThreadPoolExecutor(8, thread_name_prefix="board-connect") as pool:
        list(pool.map(lambda b: b.connect(after[b.group]), boards))
    return boards


def close_boards(boards: Sequence[LeanBoard]) -> None:
    with ThreadPoolExecutor(8, thread_name_prefix="board-close") as pool:
        list(pool.map(lambda b: b.close(), boards))


# --- the scan stream -------------------------------------------------------------------------

class TriggerClient(LeanRestHandheld):
    """For the bare server: `POST /trigger` {"order_no", "status"} instead of a scan."""

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps({"order_no": body["code"], "status": "packing"}).encode()
        status, answer = self._request("POST", "/trigger", data)
        return _verdict_from_http(self.device_id, status, answer)


@dataclass
class Sent:
    order_no: str
    sent: float
    done: float | None
    code: str | None


def scan_stream(client: LeanRestHandheld, items: Sequence[tuple[str, str]], rate: float,
                duration: float) -> tuple[list[Sent], int]:
    """Send `items` (order_no, code) at `rate`/s on a fixed schedule for `duration` s; a late
    scan leaves at once (one handheld: it waits for each answer), and none leaves after
    `duration`. Answers (what was sent, how many scans were due but not sent)."""
    client.warm_up()
    out: list[Sent] = []
    start = time.perf_counter()
    due = int(rate * duration)
    for k in range(due):
        if k >= len(items) or time.perf_counter() > start + duration:
            return out, due - k
        t = start + k / rate
        now = time.perf_counter()
        if t > now:
            time.sleep(t - now)
        order_no, code = items[k]
        body = client.payload(code)
        sent = time.perf_counter()
        try:
            verdict = client.send(body)
            done: float | None = time.perf_counter()
            vcode = verdict.get("code") if isinstance(verdict.get("code"), str) else (
                "ok" if verdict.get("ok") else "not_ok")
        except Exception as exc:  # noqa: BLE001 - counted
            done, vcode = None, f"error: {exc!r}"[:80]
        out.append(Sent(order_no, sent, done, vcode))
    return out, 0


# --- one run ---------------------------------------------------------------------------------

def _ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"p50": percentile(values, 50) * 1000, "p99": percentile(values, 99) * 1000,
            "max": (values[-1] * 1000 if values else float("nan")), "n": len(values)}


@dataclass
class RunResult:
    config: str
    boards: int
    groups: dict[str, dict[str, Any]]
    scans: int
    scan_verdicts: dict[str, int]
    scan_ms: dict[str, float]
    window_s: float
    client_cpu_s: float
    server_cpu_s: float
    server_rss_mb: dict[str, float]
    unscheduled: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return self.__dict__.copy()


def push_run(config: str, groups: Sequence[tuple[str, Server, str, int]], scanner: LeanRestHandheld,
             items: list[tuple[str, str]], after_seq: dict[str, int], rate: float, duration: float,
             servers: Sequence[Server], ok_codes: frozenset[str], drain: float = 5.0) -> RunResult:
    """groups: (label, server, supervisor token, board count)."""
    total = sum(g[3] for g in groups)
    t0 = time.perf_counter()
    boards = connect_boards([(label, srv.url, tok, n, after_seq[label]) for label, srv, tok, n in groups])
    log(f"  {config}: {total} boards connected in {time.perf_counter() - t0:.1f} s")
    reader = BoardReader(boards).start()
    try:
        time.sleep(0.5)
        rss = {s.name: rss_mb(s.pids())[0] for s in servers}
        all_pids = [p for s in servers for p in s.pids()]
        cpu0, scpu0, w0 = _cpu(), cpu_of(all_pids), time.perf_counter()
        sent, unscheduled = scan_stream(scanner, items, rate, duration)
        ok = [s for s in sent if s.code in ok_codes]
        want = len(ok) * total
        deadline = time.perf_counter() + drain
        last, quiet_since = -1, time.perf_counter()
        while time.perf_counter() < deadline:
            got = reader.received()
            if got >= want:
                break
            if got != last:
                last, quiet_since = got, time.perf_counter()
            elif time.perf_counter() - quiet_since > 1.5:
                break
            time.sleep(0.05)
        window = time.perf_counter() - w0
        client_cpu, server_cpu = _cpu() - cpu0, cpu_of(all_pids) - scpu0
    finally:
        reader.stop()
        close_boards(boards)
    by_order = {s.order_no: s for s in ok}
    out_groups: dict[str, dict[str, Any]] = {}
    other = dup = closed = 0
    for label, _, _, n in groups:
        lat, after, missing = [], [], 0
        for b in (b for b in boards if b.group == label):
            seen: set[str] = set()
            closed += b.closed
            for t, msg in b.got:
                event, data = json.loads(msg[msg.index("["):])[:2]
                order_no = data.get("order_no") if isinstance(data, dict) else None
                s = by_order.get(order_no) if event == "status" and data.get("status") == "packing" else None
                if s is None:
                    other += 1
                    continue
                if order_no in seen:
                    dup += 1
                    continue
                seen.add(order_no)
                lat.append(t - s.sent)
                if s.done is not None:
                    after.append(t - s.done)
            missing += len(by_order) - len(seen)
        out_groups[label] = {"boards": n, "pairs": len(lat), "missing": missing,
                             "latency_ms": _ms(lat), "after_answer_ms": _ms(after)}
    verdicts: dict[str, int] = {}
    for s in sent:
        verdicts[s.code or "none"] = verdicts.get(s.code or "none", 0) + 1
    res = RunResult(config, total, out_groups, len(sent), verdicts,
                    _ms([s.done - s.sent for s in sent if s.done is not None]), window,
                    client_cpu, server_cpu, rss, unscheduled)
    if other:
        res.notes.append(f"{other} other events received (not a scan's `packing` status)")
    if dup:
        res.notes.append(f"{dup} events received twice by the same board")
    if closed:
        res.notes.append(f"{closed} boards were disconnected during the run")
    if unscheduled:
        res.notes.append(f"{unscheduled} of {int(rate * duration)} scans due were not sent within the "
                         f"{duration:g} s (the handheld waits for each answer: the server was behind)")
    bad = {k: v for k, v in verdicts.items() if k not in ok_codes}
    if bad:
        res.notes.append("scans without an event: " + ", ".join(f"{k} x{v}" for k, v in bad.items()))
    for label, g in out_groups.items():
        log(f"  {config} [{label}, {g['boards']} boards]: p50 {g['latency_ms']['p50']:.1f} ms, "
            f"p99 {g['latency_ms']['p99']:.1f} ms, pairs {g['pairs']}, missing {g['missing']}")
    log(f"  scans {len(sent)} (service p50 {res.scan_ms['p50']:.1f} ms), client CPU "
        f"{client_cpu:.1f} s, server CPU {server_cpu:.1f} s over {window:.1f} s; RSS {rss}")
    return res


# --- the benchmark ---------------------------------------------------------------------------

class PushBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.factory = OrderFactory(args.seed, warehouse=WAREHOUSE, profile=PUSH_PROFILE)
        self.results: list[RunResult] = []
        self.skipped: list[str] = []
        self.findings: list[str] = []

    def per_run(self) -> int:
        return int(self.args.rate * self.args.duration) + 10

    def prepare(self, server_url: str, integration: str, runs: int) -> list[list[tuple[str, str]]]:
        count = self.per_run() * runs
        t0 = time.perf_counter()
        prepared = prepare_orders(server_url, integration, count, [STATION], factory=self.factory,
                                  concurrency=4)
        log(f"  pushed {count} orders in {time.perf_counter() - t0:.1f} s")
        items = [(o.order_no, o.waybill_no) for o in prepared.orders]
        n = self.per_run()
        return [items[i * n:(i + 1) * n] for i in range(runs)]

    @staticmethod
    def last_seq(server: Server, supervisor: str) -> int:
        resp = requests.get(f"{server.url}/api/v1/board", params={"warehouse": WAREHOUSE},
                            headers={"Authorization": f"Bearer {supervisor}"}, timeout=30)
        resp.raise_for_status()
        return int(resp.json()["last_seq"])

    def floor_runs(self, config: str, live: LiveServer, sizes: Sequence[int]) -> None:
        server = Server.of("A", live)
        integration = live.token("integration", "push-oms")
        supervisor = live.token("supervisor", "push-boards")
        device = live.token("device", "push-handheld")
        batches = self.prepare(live.url, integration, len(sizes))
        for n, items in zip(sizes, batches):
            scanner = LeanRestHandheld(live.url, device, station=STATION, device_id="PUSH-PDA")
            seq = self.last_seq(server, supervisor)
            try:
                self.results.append(push_run(config, [("A", server, supervisor, n)], scanner, items,
                                             {"A": seq}, self.args.rate, self.args.duration,
                                             [server], frozenset({"order_opened"})))
            finally:
                scanner.close()
            time.sleep(1.0)

    def single(self) -> None:
        log("one process, SQLite: floor serve --threads %d" % self.args.threads)
        with LiveServer(serve_args=["--threads", str(self.args.threads)],
                        env={"FLOOR_ALERT_INTERVAL_S": "0"}) as live:
            self.floor_runs("one process", live, self.args.boards)

    def gevent(self) -> None:
        try:
            import gevent  # noqa: F401
        except ImportError:
            self.skipped.append("gevent worker: gevent is not installed (pip install gevent)")
            log("gevent worker: skipped (gevent not installed)")
            return
        gunicorn = Path(sys.executable).with_name("gunicorn")
        log("one process, SQLite: gunicorn -k gevent (floor as is)")
        live = LiveServer(command=[str(gunicorn), "-k", "gevent", "-w", "1", "--worker-connections",
                                   str(max(1000, 2 * max(self.args.boards))), "--timeout", "0",
                                   "--keep-alive", "30", "--log-level", "warning",
                                   "-b", "{host}:{port}", "floor:create_app()"],
                          env={"FLOOR_ALERT_INTERVAL_S": "0"})
        try:
            live.start()
        except ServerError as exc:
            self.skipped.append(f"gevent worker: did not start: {str(exc)[:300]}")
            return
        try:
            self.floor_runs("gevent worker", live, [max(self.args.boards)])
        except Exception as exc:  # noqa: BLE001 - reported
            self.skipped.append(f"gevent worker: failed: {exc!r}"[:300] + "\n" + live.log_tail(800))
            log(f"gevent worker failed: {exc!r}")
        finally:
            live.stop()

    def bare(self) -> None:
        log(f"bare python-socketio (gunicorn gthread --threads {self.args.threads})")
        with BareServer(self.args.threads) as bare:
            server = Server("A", bare.url, bare.proc.pid)  # type: ignore[union-attr]
            for n in self.args.boards:
                items = [(f"BARE-{n}-{i:06d}", f"BARE-{n}-{i:06d}") for i in range(self.per_run())]
                trigger = TriggerClient(bare.url, "-", station="-", device_id="TRIGGER")
                try:
                    self.results.append(push_run("bare python-socketio", [("A", server, "-", n)],
                                                 trigger, items, {"A": 0}, self.args.rate,
                                                 self.args.duration, [server], frozenset({"ok"})))
                finally:
                    trigger.close()
                time.sleep(1.0)

    def cluster(self) -> None:
        pg = self.args.postgres
        if not shutil.which("redis-server"):
            self.skipped.append("two processes: redis-server is not installed")
            return
        schema = contextlib.ExitStack()
        try:
            url = schema.enter_context(postgres_schema(pg, "floor_push"))
        except Exception as exc:  # noqa: BLE001
            self.skipped.append(f"two processes: PostgreSQL at {urlsplit(pg).netloc} unreachable ({type(exc).__name__})")
            log(f"two processes: skipped ({exc!r})"[:300])
            return
        redis_server = RedisServer()
        servers: list[LiveServer] = []
        try:
            redis_server.start()
            env = {"FLOOR_MESSAGE_QUEUE": redis_server.url, "FLOOR_SECRET_KEY": secrets.token_hex(16),
                   "FLOOR_ALERT_INTERVAL_S": "0"}
            log("two processes, PostgreSQL + Redis")
            servers = [LiveServer(database_url=url, env=env,
                                  serve_args=["--threads", str(self.args.threads)]) for _ in range(2)]
            for s in servers:
                s.start()
            a, b = Server.of("A", servers[0]), Server.of("B", servers[1])
            integration = servers[0].token("integration", "push-oms")
            supervisor = servers[0].token("supervisor", "push-boards")
            device = servers[0].token("device", "push-handheld")
            sizes = list(self.args.boards)
            nored = list(self.args.no_redis_boards)
            batches = self.prepare(a.url, integration, len(sizes) + len(nored))
            plan = [("two processes + Redis", n) for n in sizes] + \
                   [("two processes, Redis stopped", n) for n in nored]
            for (config, n), items in zip(plan, batches):
                if config.endswith("stopped") and redis_server.proc is not None:
                    redis_server.stop()
                    time.sleep(2.0)  # both pumps notice (their listeners time out after 1 s)
                seq = self.last_seq(a, supervisor)
                scanner = LeanRestHandheld(a.url, device, station=STATION, device_id="PUSH-PDA")
                try:
                    self.results.append(push_run(
                        config, [("A", a, supervisor, n - n // 2), ("B", b, supervisor, n // 2)],
                        scanner, items, {"A": seq, "B": seq}, self.args.rate, self.args.duration,
                        [a, b], frozenset({"order_opened"})))
                finally:
                    scanner.close()
                time.sleep(1.0)
        finally:
            for s in servers:
                s.stop()
            redis_server.stop()
            try:
                schema.close()
            except Exception:  # noqa: BLE001 - a failed drop must not hide the results
                pass


# --- report ----------------------------------------------------------------------------------

def _f(v: float, d: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{d}f}"


def report(bench: PushBench, started: dt.datetime, elapsed: float) -> tuple[str, dict[str, Any]]:
    args, res = bench.args, bench.results
    cores = os.cpu_count() or 0
    lines = [
        f"## floor push benchmark, {started.strftime('%Y-%m-%d %H:%M')} UTC",
        "",
        f"- CPU: {cpu_model()}, {cores} cores; Python {platform.python_version()}. Servers, "
        "Redis, PostgreSQL and the load generator all share these cores.",
        f"- One handheld opens orders by waybill at {args.rate:g} scans/s for {args.duration:g} s "
        f"(REST, lean client); each scan commits one `status` event pushed to every board "
        f"subscribed to `{ROOM}`. Latency per (event, board) = board receive - scan send "
        "(one clock); \"after answer\" = board receive - the scan's HTTP answer.",
        "- Boards: raw websocket clients read by one epoll thread in the load generator "
        "(its CPU is in the table: share of one core over the run).",
        f"- floor: `floor serve --threads {args.threads}` (gunicorn gthread, one process) unless "
        "said otherwise; bare: python-socketio `Server` + WSGIApp under the same gunicorn "
        "gthread, `POST /trigger` emits to the room (no database, no event pump).",
        f"- events/s sent: scans actually sent per second (the handheld waits for each answer, "
        f"so a server that is behind gets fewer than {args.rate:g}/s; none is sent after "
        f"{args.duration:g} s). CPU: share of one core over the stream and drain. Server RSS: the "
        "worker process with the boards connected. Two processes: A gets the scans; "
        "boards split evenly over A and B.",
        "",
        "| configuration | boards | group | p50 ms | p99 ms | max ms | p50 / p99 after answer ms "
        "| events/s sent | pairs | missing | scan p50 ms | client CPU % core | server CPU % core "
        "| server RSS MiB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res:
        for label, g in r.groups.items():
            lat, aft = g["latency_ms"], g["after_answer_ms"]
            rss = r.server_rss_mb.get(label, float("nan"))
            lines.append(
                f"| {r.config} | {r.boards} | {label} ({g['boards']}) | {_f(lat['p50'])} | "
                f"{_f(lat['p99'])} | {_f(lat['max'])} | {_f(aft['p50'])} / {_f(aft['p99'])} | "
                f"{_f(r.scans / args.duration)} | {g['pairs']:,} | {g['missing']:,} | {_f(r.scan_ms['p50'])} | "
                f"{_f(r.client_cpu_s / r.window_s * 100, 0)} | {_f(r.server_cpu_s / r.window_s * 100, 0)} | "
                f"{_f(rss, 0)} |")
    # Ratios against the bare server, same board count.
    by = {(r.config, r.boards): r for r in res}
    ratio_lines = []
    for n in args.boards:
        bare = by.get(("bare python-socketio", n))
        one = by.get(("one process", n))
        if bare and one:
            b, f = bare.groups["A"]["latency_ms"], one.groups["A"]["latency_ms"]
            ratio_lines.append(f"- {n} boards: floor one process / bare: p50 {_f(f['p50'] / b['p50'], 2)} x, "
                               f"p99 {_f(f['p99'] / b['p99'], 2)} x")
    if ratio_lines:
        lines += ["", "Ratios (floor / bare, same boards, same rate):", *ratio_lines]
    # Targets.
    big = max(args.boards)
    lines += ["", f"Targets (reported, not asserted): p99 < {P99_TARGET_MS:g} ms at {big} boards "
              f"in one process; Redis adds < {REDIS_TARGET_MS:g} ms at p99."]
    one = by.get(("one process", big))
    if one:
        p99 = one.groups["A"]["latency_ms"]["p99"]
        lines.append(f"- one process, {big} boards: p99 {_f(p99)} ms "
                     f"({'met' if p99 < P99_TARGET_MS and not one.groups['A']['missing'] else 'missed'})")
    for n in args.boards:
        two = by.get(("two processes + Redis", n))
        if two:
            pa, pb = two.groups["A"]["latency_ms"]["p99"], two.groups["B"]["latency_ms"]["p99"]
            lines.append(f"- two processes + Redis, {n} boards: B p99 - A p99 = {_f(pb - pa)} ms "
                         f"({'met' if pb - pa < REDIS_TARGET_MS else 'missed'})")
    gev, gth = by.get(("gevent worker", big)), by.get(("one process", big))
    if gev and gth:
        lines += ["", f"Worker class, {big} boards, one process, SQLite:",
                  f"- gthread (--threads {args.threads}): p50 {_f(gth.groups['A']['latency_ms']['p50'])} ms, "
                  f"p99 {_f(gth.groups['A']['latency_ms']['p99'])} ms, server RSS "
                  f"{_f(gth.server_rss_mb['A'], 0)} MiB, server CPU {_f(gth.server_cpu_s / gth.window_s * 100, 0)} % core",
                  f"- gevent (gunicorn -k gevent, floor unchanged): p50 {_f(gev.groups['A']['latency_ms']['p50'])} ms, "
                  f"p99 {_f(gev.groups['A']['latency_ms']['p99'])} ms, server RSS "
                  f"{_f(gev.server_rss_mb['A'], 0)} MiB, server CPU {_f(gev.server_cpu_s / gev.window_s * 100, 0)} % core"]
    notes = [f"- {r.config}, {r.boards} boards: {n}" for r in res for n in r.notes]
    notes += [f"- skipped: {s}" for s in bench.skipped]
    if notes:
        lines += ["", "Notes:", *notes]
    lines += ["", f"Whole push run: {elapsed:.0f} s.", ""]
    data = {"date": started.isoformat(), "cpu": cpu_model(), "cores": cores,
            "rate": args.rate, "duration": args.duration, "threads": args.threads,
            "runs": [r.summary() for r in res], "skipped": bench.skipped}
    return "\n".join(lines), data


def add_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    p = prefix
    parser.add_argument(f"--{p}boards", type=lambda s: [int(x) for x in s.split(",")], default=[50, 500],
                        help="board counts, comma-separated")
    parser.add_argument(f"--{p}no-redis-boards", type=lambda s: [int(x) for x in s.split(",") if x],
                        default=[50], help="board counts for the Redis-stopped runs")
    parser.add_argument(f"--{p}rate", type=float, default=20.0, help="scans (status events) per second")
    parser.add_argument(f"--{p}duration", type=float, default=15.0, help="seconds of each stream")
    parser.add_argument(f"--{p}threads", type=int, default=600, help="gthread threads of each server")
    parser.add_argument(f"--{p}configs", default="single,cluster,bare,gevent",
                        help="which configurations, comma-separated")
    parser.add_argument(f"--{p}postgres", default=os.environ.get("FLOOR_BENCH_POSTGRES_URL")
                        or os.environ.get("FLOOR_TEST_POSTGRES_URL") or DEFAULT_PG,
                        help="PostgreSQL URL for the two-process runs (a schema is made and dropped)")


def run(args: argparse.Namespace, out: Path) -> str:
    """Run the push benchmark; write `out` (and .json beside it); answer the Markdown."""
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    bench = PushBench(args)
    for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
        try:
            getattr(bench, name)()
        except Exception as exc:  # noqa: BLE001 - one configuration failing leaves the others
            bench.skipped.append(f"{name}: failed: {exc!r}"[:400])
            log(f"{name} failed: {exc!r}")
    text, data = report(bench, started, time.perf_counter() - t0)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    log(f"wrote {out} and {out.with_suffix('.json').name}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "push.md")
    args = parser.parse_args(argv)
    print(run(args, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
