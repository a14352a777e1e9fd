"""Shifts under faults against a real `floor serve`, checked from the database, as a table.

    floor-sim faults-table [--backend sqlite|postgresql] [--orders 60] [--kills 3] ...

Each row is one short shift (handhelds packing orders with the usual mistakes injected)
against a fresh server and database, with one fault on top:

| fault | what happens |
| --- | --- |
| ``none`` | nothing else |
| ``wifi_drop`` | handhelds lose the link mid-scan and send the same scan again |
| ``kill_9`` | the server's whole process group gets SIGKILL `kills` times at random moments; it is restarted on the same database |
| ``db_outage`` | SQLite: another process holds the write lock past the busy timeout; PostgreSQL: the network to the database is cut (`floor_sim.proxy`) |
| ``redis_down`` | the server shares events through Redis, which is stopped mid-shift and started again |
| ``serial_unplug`` | two serial scanners (pty pairs) are unplugged, sometimes mid-line, and send garbage |

The numbers come from the run: scans sent (scan_ids the devices sent; serial lines the
service read), recorded (rows in ``scan_events`` at the shift's stations), lost (sent, not
recorded), duplicated (recorded twice, or answered twice for one scan_id), mistakes injected
and escaped mistakes (an order ``packed`` with a line short, over or foreign, from the
service's own record), and `record_problems`: the pack-session invariants.

`crash_shift` and the helpers below are what tests/e2e/test_crash_safety.py uses too.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from floor_sim.faults import FAULTS
from floor_sim.load import ShiftResult, run_shift
from floor_sim.orders import OrderFactory
from floor_sim.server import LiveServer, RedisServer, cpu_model, free_port, postgres_schema

MISTAKES = ("wrong_item", "other_order", "missing_line", "early_giftbox", "double_read")
FAULT_ROWS = ("none", "wifi_drop", "kill_9", "db_outage", "redis_down", "serial_unplug")
ROW_LABELS = {"none": "none (mistakes only)", "wifi_drop": "Wi-Fi drops (handhelds)",
              "kill_9": "server kill -9", "db_outage": "database outage",
              "redis_down": "Redis down", "serial_unplug": "serial scanner unplug + garbage"}
PACKED_OR_LATER = ("packed", "labelling", "labelled", "awaiting_loading", "loading", "loaded",
                   "handed_over")


# --- the database under the server ------------------------------------------------------------

@dataclass
class Backend:
    name: str                         # "sqlite" or "postgresql"
    server_url: str | None            # the server's FLOOR_DATABASE_URL (None: its SQLite file)
    read_url: str                     # SQLAlchemy URL to read the same database directly
    sqlite_path: Path | None = None


@contextlib.contextmanager
def backend_for(name: str, instance: Path, pg_url: str | None = None) -> Iterator[Backend]:
    """A fresh database for one run: the instance folder's SQLite file, or a schema of its
    own on PostgreSQL (dropped afterwards)."""
    instance.mkdir(parents=True, exist_ok=True)
    if name == "sqlite":
        path = instance / "floor.db"
        yield Backend("sqlite", None, f"sqlite:///{path}", path)
        return
    if not pg_url:
        raise ValueError("PostgreSQL needs a base URL (FLOOR_TEST_POSTGRES_URL)")
    with postgres_schema(pg_url, "floor_faults") as url:
        yield Backend("postgresql", url, url.replace("postgresql://", "postgresql+psycopg://", 1))


class Restartable:
    """`floor serve` on a fixed port, instance folder and database, killed and started again."""

    def __init__(self, instance: Path, backend: Backend, *, database_url: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.instance = instance
        self.backend = backend
        self.database_url = database_url if database_url is not None else backend.server_url
        self.env = dict(env or {})
        self.port = free_port()
        self.server: LiveServer | None = None
        self.kills = 0
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.server = LiveServer(instance_path=self.instance, port=self.port,
                                 database_url=self.database_url, env=self.env).start()
        return self.server

    def kill_9(self) -> None:
        """SIGKILL to the server's whole process session: nothing gets to clean up."""
        server, self.server = self.server, None
        assert server is not None and server.proc is not None
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        server.stop()
        self.kills += 1

    def restart(self) -> None:
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def log_tail(self) -> str:
        return self.server.log_tail() if self.server is not None else ""


def _engine(read_url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(read_url)


def scan_count(read_url: str, stations: Sequence[str]) -> int:
    from sqlalchemy import bindparam, text

    engine = _engine(read_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM scan_events WHERE station IN :st")
                                    .bindparams(bindparam("st", expanding=True)),
                                    {"st": list(stations)}).scalar() or 0)
    finally:
        engine.dispose()


def recorded_scan_ids(read_url: str, stations: Sequence[str]) -> Counter[str]:
    """scan_id -> rows in scan_events, for the scans made at these stations."""
    from sqlalchemy import bindparam, text

    engine = _engine(read_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT scan_id FROM scan_events WHERE station IN :st")
                                .bindparams(bindparam("st", expanding=True)),
                                {"st": list(stations)}).scalars().all()
    finally:
        engine.dispose()
    return Counter(rows)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def record_problems(read_url: str, order_nos: Sequence[str]) -> list[str]:
    """The pack record's invariants for these orders, read straight from the tables:

    - an order `packed` (or later) has exactly one completed session, closed, no open one,
      and exactly one `packed` status event; its current status is its last status event's;
    - its accepted scans (verdict ``accepted``) match its frozen snapshot line by line (no line
      short or over: nothing packed short);
    - a completed session's order is packed or later, and its counts are the snapshot's;
    - every session's counts are the accepted scan rows recorded on it, line by line (a
      session is never half-written: counters and scan rows agree);
    - at most one open session per order.
    """
    from sqlalchemy import bindparam, text

    engine = _engine(read_url)
    wanted = list(order_nos)
    problems: list[str] = []
    try:
        with engine.connect() as conn:
            def rows(sql: str) -> list[Any]:
                return conn.execute(text(sql).bindparams(bindparam("nos", expanding=True)),
                                    {"nos": wanted}).all()

            orders = {r.id: r for r in rows(
                "SELECT o.id, o.order_no, o.status, k.lines FROM orders o "
                "LEFT JOIN kit_snapshots k ON k.id = o.snapshot_id WHERE o.order_no IN :nos")}
            sessions = rows("SELECT s.id, s.order_id, s.state, s.counts, s.closed_at "
                            "FROM pack_sessions s JOIN orders o ON o.id = s.order_id "
                            "WHERE o.order_no IN :nos")
            accepted = rows("SELECT e.order_id, e.session_id, e.line_no, e.sku FROM scan_events e "
                            "JOIN orders o ON o.id = e.order_id WHERE o.order_no IN :nos "
                            "AND e.verdict = 'accepted' AND e.ok")
            statuses = rows("SELECT s.order_id, s.status, s.seq FROM status_events s "
                            "JOIN orders o ON o.id = s.order_id WHERE o.order_no IN :nos "
                            "ORDER BY s.seq")
    finally:
        engine.dispose()
    missing = set(wanted) - {o.order_no for o in orders.values()}
    problems += [f"{no}: not on record" for no in sorted(missing)]
    by_session: dict[int, Counter[int]] = {}
    by_order_sku: dict[int, Counter[str]] = {}
    for a in accepted:
        if a.session_id is None:
            problems.append(f"order id {a.order_id}: an accepted scan without a session")
            continue
        by_session.setdefault(a.session_id, Counter())[int(a.line_no)] += 1
        by_order_sku.setdefault(a.order_id, Counter())[a.sku] += 1
    last_status: dict[int, str] = {}
    packed_events: Counter[int] = Counter()
    for ev in statuses:
        last_status[ev.order_id] = ev.status
        packed_events[ev.order_id] += ev.status == "packed"
    sessions_of: dict[int, list[Any]] = {}
    for s in sessions:
        sessions_of.setdefault(s.order_id, []).append(s)
    for oid, order in sorted(orders.items()):
        lines = _json(order.lines) or []
        qty = {int(l["line_no"]): int(l["qty"]) for l in lines}
        kit_sku = Counter()
        for l in lines:
            kit_sku[l["sku"]] += int(l["qty"])
        name = order.order_no
        mine = sessions_of.get(oid, [])
        open_ = [s for s in mine if s.state == "open"]
        done = [s for s in mine if s.state == "completed"]
        if len(open_) > 1:
            problems.append(f"{name}: {len(open_)} open sessions")
        if last_status.get(oid, "received") != order.status:
            problems.append(f"{name}: status {order.status}, last status event "
                            f"{last_status.get(oid)}")
        for s in mine:
            counts = {int(k): int(v) for k, v in (_json(s.counts) or {}).items() if int(v)}
            rows_here = dict(by_session.get(s.id, Counter()))
            if counts != rows_here:
                problems.append(f"{name}: session {s.id} ({s.state}) counts {counts}, "
                                f"accepted scan rows {rows_here}")
            over = {n: c for n, c in counts.items() if c > qty.get(n, 0)}
            if over:
                problems.append(f"{name}: session {s.id} over the snapshot: {over}")
            if s.state == "completed":
                if s.closed_at is None:
                    problems.append(f"{name}: session {s.id} completed but not closed")
                if order.status not in PACKED_OR_LATER:
                    problems.append(f"{name}: session {s.id} completed, order {order.status}")
                if counts != {n: q for n, q in qty.items() if q}:
                    problems.append(f"{name}: session {s.id} completed with {counts}, kit {qty}")
        if order.status in PACKED_OR_LATER:
            if len(done) != 1 or open_:
                problems.append(f"{name}: {order.status} with {len(done)} completed and "
                                f"{len(open_)} open sessions")
            if packed_events[oid] != 1:
                problems.append(f"{name}: {packed_events[oid]} packed status events")
            got = by_order_sku.get(oid, Counter())
            if +got != +kit_sku:
                problems.append(f"{name}: packed with {dict(got)} accepted, kit {dict(kit_sku)}")
    return problems


# --- one shift with a fault ---------------------------------------------------------------------

@dataclass
class FaultRun:
    fault: str
    backend: str
    result: ShiftResult | None = None
    stations: list[str] = field(default_factory=list)
    recorded: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    marks: list[int] = field(default_factory=list)      # scans on record at each fault
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def sent_ids(self) -> list[str]:
        """scan_ids the devices sent (handhelds) or the service answered (serial lines)."""
        assert self.result is not None
        return [r.scan_id for r in self.result.load.records if r.scan_id]

    def unanswered(self) -> int:
        assert self.result is not None
        return sum(1 for r in self.result.load.records if r.done is None)

    def lost(self) -> list[str]:
        """Scans sent and not on record; a serial line never answered counts too (the service
        names its scan_id, so without an answer it cannot be found)."""
        assert self.result is not None
        missing = set(self.sent_ids()) - set(self.recorded)
        nameless = [f"{r.device_id} {r.code!r} (no answer)" for r in self.result.load.records
                    if not r.scan_id]
        return sorted(missing) + nameless

    def unaccounted(self) -> list[str]:
        return sorted(set(self.recorded) - set(self.sent_ids()))

    def duplicated(self) -> list[str]:
        answered_twice = Counter(self.sent_ids())
        return sorted({sid for sid, n in self.recorded.items() if n > 1}
                      | {sid for sid, n in answered_twice.items() if n > 1})

    def refusals(self) -> Counter[str]:
        assert self.result is not None
        return Counter(code for r in self.result.load.records for code in r.refusals)

    def row(self) -> dict[str, Any]:
        assert self.result is not None
        s = self.result.summary()
        injected = s.get("faults") or {}
        mistakes = sum(v["injected"] for k, v in injected.items() if k in MISTAKES)
        escaped = len((self.result.audit.escaped if self.result.audit else {})) + sum(
            1 for p in self.problems if "packed with" in p)
        return {
            "fault": self.fault, "backend": self.backend,
            "sent": len(self.result.load.records),
            "recorded": sum(self.recorded.values()),
            "lost": len(self.lost()), "unanswered": self.unanswered(),
            "duplicated": len(self.duplicated()),
            "mistakes": mistakes, "escaped": escaped,
            "replays": sum(r.attempts - 1 for r in self.result.load.records),
            "refusals": dict(self.refusals()),
            "unaccounted": len(self.unaccounted()),
            "problems": len(self.problems),
            "orders": s["orders"], "packed": s.get("orders_packed_by_service", 0),
            "marks": list(self.marks), "notes": list(self.notes),
            "seconds": round(self.seconds, 1),
        }


def expected_scans(factory_seed: int, tag: str, orders: int) -> int:
    """About how many scans packing these orders takes (one per unit, one to open each)."""
    made = OrderFactory(seed=factory_seed, tag=tag).make_orders(orders)
    return sum(o.units() + 1 for o in made)


def _wait(predicate: Callable[[], bool], timeout: float, stop: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@contextlib.contextmanager
def _sqlite_write_lock(path: Path) -> Iterator[None]:
    """Another process's writer holding SQLite's write lock (BEGIN IMMEDIATE) meanwhile."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def faulted_shift(fault: str, workdir: Path, *, backend: str = "sqlite",
                  pg_url: str | None = None, handhelds: int = 20, orders: int = 60,
                  kills: int = 3, outage_s: float = 4.0, cadence: float = 0.1,
                  mistake_rate: float = 0.1, seed: int = 1, duration: float = 240.0,
                  transport: str = "socketio+rest",
                  log: Callable[[str], None] | None = None) -> FaultRun:
    """One shift under `fault` (see the module's table) on a fresh server and database."""
    from floor_sim.proxy import TcpProxy

    if fault not in FAULT_ROWS:
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULT_ROWS)}")
    say = log or (lambda _m: None)
    run = FaultRun(fault, backend)
    rng = random.Random(seed)
    tag = f"{seed % 90000 + 10000:05d}"
    instance = workdir / f"{fault}-{backend}"
    env = {"FLOOR_ALERT_INTERVAL_S": "0"}
    serial = 2 if fault == "serial_unplug" else 0
    faults = list(MISTAKES) + {"wifi_drop": ["wifi_drop"],
                               "serial_unplug": ["unplug", "garbage"]}.get(fault, [])
    stack = contextlib.ExitStack()
    started = time.monotonic()
    with stack:
        db = stack.enter_context(backend_for(backend, instance, pg_url))
        database_url = db.server_url
        proxy = None
        redis = None
        if fault == "db_outage":
            if backend == "sqlite":
                # Shorter than the outage, so that the held lock turns into answers rather
                # than a long wait (still long enough for a wave release under load).
                env["FLOOR_SQLITE_BUSY_TIMEOUT_MS"] = "1000"
            else:
                from urllib.parse import urlsplit

                target = urlsplit(db.server_url or "")
                proxy = stack.enter_context(TcpProxy(target.hostname or "127.0.0.1",
                                                     target.port or 5432))
                database_url = proxy.rewrite(db.server_url or "")
        if fault == "redis_down":
            if not shutil.which("redis-server"):
                raise RuntimeError("redis_down needs redis-server")
            redis = RedisServer()
            redis.start()
            stack.callback(redis.stop)
            env["FLOOR_MESSAGE_QUEUE"] = redis.url
        server = Restartable(instance, db, database_url=database_url, env=env)
        server.start()
        stack.callback(server.stop)
        device = server.server.token("device", f"faults-{fault}")        # type: ignore[union-attr]
        integration = server.server.token("integration", f"faults-{fault}-oms")  # type: ignore[union-attr]
        prefix = f"F{FAULT_ROWS.index(fault)}"
        run.stations = [f"{prefix}{i:02d}" for i in range(1, handhelds + serial + 1)]
        total = expected_scans(seed, tag, orders)
        box: dict[str, Any] = {}

        def shift() -> None:
            try:
                box["result"] = run_shift(
                    server.url, device, integration, handhelds=handhelds, serial=serial,
                    transport=transport, orders=orders, cadence=cadence, cadence_jitter=0.5,
                    duration=duration, faults=faults, fault_rate=mistake_rate, seed=seed,
                    station_prefix=prefix, device_prefix=f"{prefix}-PDA",
                    serial_prefix=f"{prefix}-SCN", timeout=5.0,
                    factory=OrderFactory(seed=seed, tag=tag), replay_for=120.0)
            except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=shift, name=f"shift-{fault}", daemon=True)
        worker.start()
        stop = threading.Event()

        def progress(share: float) -> Callable[[], bool]:
            return lambda: (not worker.is_alive()
                            or scan_count(db.read_url, run.stations) >= share * total)

        if fault == "kill_9":
            shares = sorted(rng.uniform(0.1, 0.85) for _ in range(kills))
            for share in shares:
                _wait(progress(share), duration, stop)
                time.sleep(rng.uniform(0.0, 0.5))
                if not worker.is_alive():
                    run.notes.append("the shift ended before every kill")
                    break
                server.kill_9()
                run.marks.append(scan_count(db.read_url, run.stations))
                say(f"kill -9 #{server.kills} at {run.marks[-1]} scans on record")
                time.sleep(rng.uniform(0.5, 2.0))
                server.restart()
        elif fault in ("db_outage", "redis_down"):
            _wait(progress(0.35), duration, stop)
            run.marks.append(scan_count(db.read_url, run.stations))
            say(f"{fault} for {outage_s:g} s at {run.marks[-1]} scans on record")
            if fault == "redis_down":
                assert redis is not None
                redis.stop()
                time.sleep(outage_s)
                redis.start()
            elif proxy is not None:
                proxy.cut()
                time.sleep(outage_s)
                proxy.restore()
            else:
                assert db.sqlite_path is not None
                with _sqlite_write_lock(db.sqlite_path):
                    time.sleep(outage_s)
        worker.join(duration + 180)
        if worker.is_alive():
            raise RuntimeError(f"{fault}: the shift did not end\n{server.log_tail()}")
        if "error" in box:
            raise RuntimeError(f"{fault}: the shift failed: {box['error']!r}\n"
                               f"{server.log_tail()}") from box["error"]
        run.result = box["result"]
        run.recorded = recorded_scan_ids(db.read_url, run.stations)
        run.problems = record_problems(db.read_url, [o.order_no for o in run.result.orders])
        run.seconds = time.monotonic() - started
    return run


# --- the table ------------------------------------------------------------------------------------

def format_table(rows: Sequence[dict[str, Any]]) -> str:
    head = ("| fault | backend | scans sent | recorded | lost | duplicated | mistakes injected "
            "| escaped mistakes | replays | 503 answers | orders packed |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    out = [head]
    for r in rows:
        label = ROW_LABELS.get(r["fault"], r["fault"])
        if r["fault"] == "kill_9":
            label += f" ×{len(r['marks'])}"
        unavailable = sum(n for code, n in r["refusals"].items() if code != "server_error")
        out.append(f"| {label} | {r['backend']} | {r['sent']:,} | {r['recorded']:,} | {r['lost']} "
                   f"| {r['duplicated']} | {r['mistakes']} | {r['escaped']} | {r['replays']} "
                   f"| {unavailable} | {r['packed']}/{r['orders']} |")
    return "\n".join(out)


def machine_line() -> str:
    import sqlalchemy  # noqa: F401 - the version below

    cores = os.cpu_count() or 0
    sqlite = sqlite3.sqlite_version
    return (f"{dt.date.today().isoformat()}, {cpu_model()}, {cores} cores, Python "
            f"{platform.python_version()}, SQLite {sqlite}")


def run_table(faults: Sequence[str], backends: Sequence[str], *, pg_url: str | None = None,
              workdir: str | os.PathLike[str] | None = None,
              log: Callable[[str], None] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    say = log or (lambda m: print(m, file=sys.stderr))
    rows = []
    with tempfile.TemporaryDirectory(prefix="floor-faults-", dir=workdir) as tmp:
        for backend in backends:
            for fault in faults:
                if fault == "redis_down" and not shutil.which("redis-server"):
                    say("redis_down skipped: no redis-server")
                    continue
                say(f"{fault} on {backend} ...")
                run = faulted_shift(fault, Path(tmp), backend=backend, pg_url=pg_url, log=say,
                                    **kwargs)
                row = run.row()
                say(f"  {json.dumps({k: row[k] for k in ('sent', 'recorded', 'lost', 'duplicated', 'escaped', 'problems', 'unaccounted', 'refusals', 'seconds')})}")
                for p in run.problems[:10]:
                    say(f"  problem: {p}")
                rows.append(row)
    return rows
