"""Load over many handhelds: open loop (Poisson arrivals) and closed loop (saturation).

Open loop. Each of the N devices draws its own Poisson arrival times at rate R/N (together a
Poisson process at rate R spread uniformly over the devices). The times are fixed in advance
of and independently of the answers. A device still waiting for a verdict when its next
arrival is due sends that scan as soon as the verdict is in (a handheld does one scan at a
time, so the service sees each device's scans in order), and the scan's latency is counted
from its *scheduled* time, not from when it could be sent. A slow answer therefore shows up
in the latency of every scan queued behind it, instead of silently lowering the offered rate
("coordinated omission"). `send_lag` reports how late scans left compared with schedule,
which also exposes a load generator that cannot keep up.

Closed loop. N devices each send their next scan as soon as the previous verdict is in, for
T seconds; throughput is verdicts per second over that window, latency is send to verdict.
If a device runs out of orders, the window ends there for everyone (the rate is only
meaningful while all N devices are busy).

Every verdict is checked against what the step expects (`Step.expect`): opening an order
expects ``order_opened``, an item ``accepted``, an injected mistake its refusal. Verdicts
outside that set are counted as unexpected and reported.
"""
from __future__ import annotations

import math
import random
import resource
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from floor_sim.handheld import (BareScript, Device, Handheld, PackScript, Step, make_handheld)
from floor_sim.orders import OrderFactory, SimOrder, prepare_orders


@dataclass(slots=True)
class ScanRecord:
    device_id: str
    station: str
    scan_id: str
    code: str
    kind: str
    order_no: str | None
    scheduled: float            # perf_counter seconds: when the scan was due
    sent: float                 # when it left
    done: float | None          # when its verdict arrived (None: no verdict)
    verdict: str | None         # the verdict's code ("ok" for a bare {"ok": true})
    ok: bool | None
    expected: bool
    complete: bool
    error: str | None = None

    @property
    def latency(self) -> float | None:
        return None if self.done is None else self.done - self.scheduled

    @property
    def service_time(self) -> float | None:
        return None if self.done is None else self.done - self.sent


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _stats_ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"),
                "max": float("nan"), "mean": float("nan"), "n": 0}
    return {"p50": percentile(values, 50) * 1000, "p90": percentile(values, 90) * 1000,
            "p99": percentile(values, 99) * 1000, "max": values[-1] * 1000,
            "mean": sum(values) / len(values) * 1000, "n": len(values)}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class LoadResult:
    mode: str                   # "open" or "closed"
    transport: str
    endpoint: str
    devices: int
    offered_rate: float | None  # scans/s, open loop only
    duration: float             # planned seconds
    window: float               # measured seconds
    start: float
    records: list[ScanRecord]
    unsent: int = 0             # open loop: due scans never sent (backlog at the cut-off)
    starved: int = 0            # devices that ran out of work
    client_cpu: float = 0.0     # CPU seconds the load generator process used
    packed: list[str] = field(default_factory=list)
    abandoned: dict[str, str] = field(default_factory=dict)

    def in_window(self) -> list[ScanRecord]:
        end = self.start + self.window
        return [r for r in self.records if r.done is not None and r.done <= end]

    def summary(self) -> dict[str, Any]:
        answered = [r for r in self.records if r.done is not None]
        unexpected = [r for r in answered if not r.expected]
        window_done = self.in_window()
        lat = [r.latency for r in answered if r.latency is not None]
        svc = [r.service_time for r in answered if r.service_time is not None]
        lag = [r.sent - r.scheduled for r in self.records if not _immediate(r)]
        return {
            "mode": self.mode, "transport": self.transport, "endpoint": self.endpoint,
            "devices": self.devices, "offered_rate": self.offered_rate,
            "duration_s": self.duration, "window_s": round(self.window, 3),
            "sent": len(self.records), "answered": len(answered),
            "no_answer": len(self.records) - len(answered), "unsent": self.unsent,
            "starved_devices": self.starved,
            "throughput": len(window_done) / self.window if self.window > 0 else 0.0,
            "verdicts": dict(Counter(r.verdict for r in answered).most_common()),
            "unexpected": len(unexpected),
            "unexpected_verdicts": dict(Counter(f"{r.kind}->{r.verdict}" for r in unexpected)),
            "errors": dict(Counter((r.error or "")[:120] for r in self.records if r.done is None)),
            "orders_packed": len(self.packed), "orders_abandoned": len(self.abandoned),
            "latency_ms": _stats_ms(lat), "service_ms": _stats_ms(svc),
            "send_lag_ms": _stats_ms(lag),
            "client_cpu_s": round(self.client_cpu, 3),
            "client_cpu_ms_per_scan": (self.client_cpu / len(self.records) * 1000
                                       if self.records else float("nan")),
        }


def _immediate(r: ScanRecord) -> bool:
    return r.kind == "double_read"


def _verdict_code(verdict: dict[str, Any] | None) -> str | None:
    if verdict is None:
        return None
    code = verdict.get("code")
    if isinstance(code, str):
        return code
    return "ok" if verdict.get("ok") is True else "not_ok"


class _Worker:
    """One device's thread state."""

    def __init__(self, device: Device, seed: int = 0) -> None:
        self.device = device
        self.rng = random.Random(seed)
        self.records: list[ScanRecord] = []
        self.unsent = 0
        self.starved_at: float | None = None
        self.last_code: str | None = None
        self.last_at = float("-inf")   # when the previous scan was answered (or given up)

    def do(self, step: Step, scheduled: float) -> ScanRecord:
        hh, script = self.device.handheld, self.device.script
        scan_id = str(uuid.uuid4())
        body = hh.payload(step.code, scan_id)
        sent = time.perf_counter()
        verdict: dict[str, Any] | None = None
        error = None
        try:
            verdict = hh.send(body)
            done: float | None = time.perf_counter()
        except Exception as exc:  # no verdict: counted, the device goes on
            done = None
            error = f"{type(exc).__name__}: {exc}"
        self.last_code, self.last_at = step.code, time.perf_counter()
        code = _verdict_code(verdict)
        script.observe(step, verdict)
        progress = (verdict or {}).get("progress")
        rec = ScanRecord(hh.device_id, hh.station, scan_id, step.code, step.kind, step.order_no,
                         scheduled, sent, done, code,
                         None if verdict is None else bool(verdict.get("ok")),
                         code in step.expect,
                         isinstance(progress, dict) and bool(progress.get("complete")), error)
        self.records.append(rec)
        return rec


def _run(workers: list[_Worker], body: Callable[[_Worker, float], None]) -> tuple[float, float]:
    """Start one thread per worker, release them together; answers (start, client CPU s)."""
    go = threading.Event()
    start_box: list[float] = []

    def target(w: _Worker) -> None:
        go.wait()
        body(w, start_box[0])

    threads = [threading.Thread(target=target, args=(w,), daemon=True,
                                name=f"dev-{w.device.handheld.device_id}") for w in workers]
    for t in threads:
        t.start()
    cpu0 = _cpu_seconds()
    start_box.append(time.perf_counter() + 0.05)
    go.set()
    for t in threads:
        t.join()
    return start_box[0], _cpu_seconds() - cpu0


def _result(mode: str, workers: list[_Worker], start: float, window: float, duration: float,
            rate: float | None, cpu: float) -> LoadResult:
    first = workers[0].device.handheld
    records = sorted((r for w in workers for r in w.records), key=lambda r: r.sent)
    packed: list[str] = []
    abandoned: dict[str, str] = {}
    for w in workers:
        packed += w.device.script.packed
        abandoned.update(w.device.script.abandoned)
    return LoadResult(mode, first.transport, first.endpoint, len(workers), rate, duration,
                      window, start, records,
                      unsent=sum(w.unsent for w in workers),
                      starved=sum(1 for w in workers if w.starved_at is not None),
                      client_cpu=cpu, packed=packed, abandoned=abandoned)


def run_open_loop(devices: Sequence[Device], rate: float, duration: float, *,
                  seed: int | None = None, grace: float = 5.0,
                  stop_when_done: bool = False, repeat_gap: float = 0.0) -> LoadResult:
    """Offer `rate` scans/s, Poisson, over `devices` for `duration` seconds.

    Scans due before `duration` are sent; a device still behind `grace` seconds after the end
    stops, and its scans never sent are counted as `unsent`. With `stop_when_done` a device
    whose script has no more work just stops (a shift); otherwise that counts as starved.

    `repeat_gap`: a person scanning the same code again (the second unit of a line) takes at
    least this long, so such a scan is due no sooner than `repeat_gap` after the previous one
    was answered (its latency counts from that later time). Keep it above the service's
    debounce window when that is on; 0 for pure Poisson arrivals.
    """
    if rate <= 0 or not devices:
        raise ValueError("need a positive rate and at least one device")
    per_device = rate / len(devices)
    master = random.Random(seed)
    workers = [_Worker(d, master.randrange(2**63)) for d in devices]

    def body(w: _Worker, start: float) -> None:
        rng, script = w.rng, w.device.script
        end, cutoff = start + duration, start + duration + grace
        t = start + rng.expovariate(per_device)
        while t < end:
            step = script.next_step()
            if step is None:
                if not stop_when_done:
                    w.starved_at = time.perf_counter()
                return
            if step.immediate:
                scheduled = time.perf_counter()
            else:
                now = time.perf_counter()
                if t > now:
                    time.sleep(t - now)
                scheduled = t
                t += rng.expovariate(per_device)
                if repeat_gap and step.code == w.last_code and scheduled < w.last_at + repeat_gap:
                    scheduled = w.last_at + repeat_gap
                    now = time.perf_counter()
                    if scheduled > now:
                        time.sleep(scheduled - now)
            if time.perf_counter() > cutoff:
                w.unsent += 1
                while t < end:
                    w.unsent += 1
                    t += rng.expovariate(per_device)
                return
            w.do(step, scheduled)

    start, cpu = _run(workers, body)
    window = duration
    if stop_when_done:
        last = max((r.done for w in workers for r in w.records if r.done is not None),
                   default=start + duration)
        window = max(min(last - start, duration + grace), 1e-9)
    return _result("open", workers, start, window, duration, rate, cpu)


def run_closed_loop(devices: Sequence[Device], duration: float) -> LoadResult:
    """Each device sends as soon as its previous verdict is in, for `duration` seconds."""
    if not devices:
        raise ValueError("need at least one device")
    workers = [_Worker(d) for d in devices]
    stop = threading.Event()

    def body(w: _Worker, start: float) -> None:
        end = start + duration
        now = time.perf_counter()
        if now < start:
            time.sleep(start - now)
        script = w.device.script
        while not stop.is_set():
            now = time.perf_counter()
            if now >= end:
                return
            step = script.next_step()
            if step is None:
                w.starved_at = now
                stop.set()
                return
            w.do(step, now)

    start, cpu = _run(workers, body)
    starved = [w.starved_at for w in workers if w.starved_at is not None]
    window = (min(starved) if starved else start + duration) - start
    return _result("closed", workers, start, max(window, 1e-9), duration, None, cpu)


# --- building fleets -------------------------------------------------------------------------

def make_fleet(transport: str, url: str, token: str, count: int, *, endpoint: str = "scan",
               station_prefix: str = "P", device_prefix: str = "PDA", connect: bool = True,
               **kwargs: Any) -> list[Handheld]:
    """`count` handhelds, one per station: stations P01.., devices PDA-01.. (by default)."""
    width = max(2, len(str(count)))
    fleet = [make_handheld(transport, url, token, station=f"{station_prefix}{i:0{width}d}",
                           device_id=f"{device_prefix}-{i:0{width}d}", endpoint=endpoint, **kwargs)
             for i in range(1, count + 1)]
    if connect:
        connect_all(fleet)
    return fleet


def connect_all(fleet: Sequence[Handheld], parallel: int = 8) -> None:
    with ThreadPoolExecutor(parallel, thread_name_prefix="connect") as pool:
        for _ in pool.map(lambda h: h.warm_up(), fleet):
            pass


def close_all(fleet: Sequence[Handheld]) -> None:
    with ThreadPoolExecutor(8, thread_name_prefix="close") as pool:
        for _ in pool.map(lambda h: h.close(), fleet):
            pass


def pack_devices(fleet: Sequence[Handheld], by_station: dict[str, list[SimOrder]], *,
                 error_rate: float = 0.0, wrong_codes: Sequence[str] = (),
                 seed: int | None = None) -> list[Device]:
    """Pair each handheld with a packer working through its station's orders."""
    master = random.Random(seed)
    return [Device(h, PackScript(by_station.get(h.station, []), error_rate=error_rate,
                                 rng=random.Random(master.randrange(2**63)),
                                 wrong_codes=wrong_codes)) for h in fleet]


def bare_devices(fleet: Sequence[Handheld], seed: int | None = None) -> list[Device]:
    master = random.Random(seed)
    return [Device(h, BareScript(random.Random(master.randrange(2**63)))) for h in fleet]


# --- a shift ---------------------------------------------------------------------------------

@dataclass
class ShiftResult:
    load: LoadResult
    orders: list[SimOrder]

    def summary(self) -> dict[str, Any]:
        s = self.load.summary()
        s["orders"] = len(self.orders)
        s["orders_not_packed"] = len(self.orders) - len(set(self.load.packed))
        return s

    def scans_by_order(self) -> dict[str, list[ScanRecord]]:
        out: dict[str, list[ScanRecord]] = {o.order_no: [] for o in self.orders}
        for r in self.load.records:
            if r.order_no is not None:
                out.setdefault(r.order_no, []).append(r)
        return out


def run_shift(url: str, token: str, integration_token: str, *, handhelds: int = 20,
              transport: str = "socketio", orders: int = 100, rate: float = 50.0,
              duration: float = 30.0, error_rate: float = 0.0, seed: int | None = None,
              station_prefix: str = "P", device_prefix: str = "PDA",
              factory: OrderFactory | None = None, grace: float = 5.0,
              timeout: float = 10.0, repeat_gap: float = 0.6) -> ShiftResult:
    """Push `orders` orders in one wave per station, then pack them with `handhelds` devices.

    Scans arrive open loop at `rate` per second over all devices; the shift ends when every
    order is done or `duration` seconds have passed. The same code is not scanned twice by a
    device within `repeat_gap` seconds unless it is a simulated double read (the service's
    default debounce window is 0.5 s).
    """
    factory = factory or OrderFactory(seed)
    fleet = make_fleet(transport, url, token, handhelds, station_prefix=station_prefix,
                       device_prefix=device_prefix, connect=False, timeout=timeout)
    stations = [h.station for h in fleet]
    prepared = prepare_orders(url, integration_token, orders, stations, factory=factory)
    wrong = [p.barcode for p in factory.used_products()]
    try:
        connect_all(fleet)
        devices = pack_devices(fleet, prepared.by_station, error_rate=error_rate,
                               wrong_codes=wrong, seed=seed)
        load = run_open_loop(devices, rate, duration, seed=seed, grace=grace, stop_when_done=True,
                             repeat_gap=repeat_gap)
    finally:
        close_all(fleet)
    return ShiftResult(load, prepared.orders)


def format_summary(s: dict[str, Any]) -> str:
    lat, svc, lag = s["latency_ms"], s["service_ms"], s["send_lag_ms"]
    lines = [
        f"mode: {s['mode']} loop, transport {s['transport']}, endpoint {s['endpoint']}, "
        f"{s['devices']} devices"
        + (f", offered {s['offered_rate']:g} scans/s" if s.get("offered_rate") else ""),
        f"window: {s['window_s']:.2f} s   throughput: {s['throughput']:.1f} verdicts/s",
        f"scans sent: {s['sent']}   answered: {s['answered']}   no answer: {s['no_answer']}"
        f"   never sent (backlog): {s['unsent']}   starved devices: {s['starved_devices']}",
        "verdicts: " + (", ".join(f"{k}={v}" for k, v in s["verdicts"].items()) or "-"),
        f"unexpected verdicts: {s['unexpected']}"
        + (" (" + ", ".join(f"{k}={v}" for k, v in s["unexpected_verdicts"].items()) + ")"
           if s["unexpected_verdicts"] else ""),
    ]
    if "orders" in s:
        lines.append(f"orders: {s['orders']}   packed: {s['orders_packed']}   "
                     f"abandoned: {s['orders_abandoned']}   not packed: {s['orders_not_packed']}")
    elif s["orders_packed"] or s["orders_abandoned"]:
        lines.append(f"orders packed: {s['orders_packed']}   abandoned: {s['orders_abandoned']}")
    if s["errors"]:
        lines.append("errors: " + "; ".join(f"{k} x{v}" for k, v in s["errors"].items()))
    basis = "scheduled send" if s["mode"] == "open" else "send"
    lines += [
        f"latency from {basis} (ms): p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  "
        f"p99 {lat['p99']:.2f}  max {lat['max']:.2f}",
        f"service time, send to verdict (ms): p50 {svc['p50']:.2f}  p99 {svc['p99']:.2f}  "
        f"max {svc['max']:.2f}",
    ]
    if s["mode"] == "open":
        lines.append(f"send lag behind schedule (ms): p50 {lag['p50']:.2f}  p99 {lag['p99']:.2f}  "
                     f"max {lag['max']:.2f}")
    lines.append(f"load generator CPU: {s['client_cpu_s']:.2f} s "
                 f"({s['client_cpu_ms_per_scan']:.3f} ms per scan)")
    return "\n".join(lines)
