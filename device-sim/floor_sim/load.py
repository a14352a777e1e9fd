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

import dataclasses
import math
import os
import random
import resource
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from floor_sim.audit import Audit, audit_shift
from floor_sim.handheld import (BareScript, Device, Handheld, PackScript, Step, make_handheld)
from floor_sim.orders import OrderFactory, PreparedOrders, SimOrder, prepare_orders


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
    transport: str = ""         # the device's transport: socketio, rest, ..., serial
    fault: str | None = None    # the injected fault this scan carries (floor_sim.faults)
    fault_ok: bool | None = None  # the fault was answered / handled as it must be
    verdict_order: str | None = None  # the order the verdict names (the scan is recorded there)
    reason: str | None = None   # an unreadable verdict's params.reason
    note: str | None = None     # why an answer was not the expected one, and fault details
    attempts: int = 1           # times the payload went out (replays after crashes, outages)
    refusals: tuple[str, ...] = ()  # retryable answers before the verdict (database_unavailable)

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
    cadence: float | None = None  # paced loop: mean seconds between a device's scans
    faults_injected: Counter[str] = field(default_factory=Counter)
    device_stats: Counter[str] = field(default_factory=Counter)  # wifi drops, reconnects, ...

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
        by_transport: dict[str, list[float]] = {}
        for r in answered:
            if r.latency is not None:
                by_transport.setdefault(_transport_group(r.transport), []).append(r.service_time or 0.0)
        out = {
            "mode": self.mode, "transport": self.transport, "endpoint": self.endpoint,
            "devices": self.devices, "offered_rate": self.offered_rate,
            "duration_s": self.duration, "window_s": round(self.window, 3),
            "sent": len(self.records), "answered": len(answered),
            "no_answer": len(self.records) - len(answered), "unsent": self.unsent,
            "starved_devices": self.starved,
            "throughput": len(window_done) / self.window if self.window > 0 else 0.0,
            "verdicts": dict(Counter(r.verdict for r in answered).most_common()),
            "unexpected": len(unexpected),
            "unexpected_verdicts": dict(Counter(_label(r) for r in unexpected)),
            "errors": dict(Counter((r.error or "")[:120] for r in self.records if r.done is None)),
            "orders_packed": len(self.packed), "orders_abandoned": len(self.abandoned),
            "latency_ms": _stats_ms(lat), "service_ms": _stats_ms(svc),
            "send_lag_ms": _stats_ms(lag),
            "client_cpu_s": round(self.client_cpu, 3),
            "client_cpu_ms_per_scan": (self.client_cpu / len(self.records) * 1000
                                       if self.records else float("nan")),
        }
        if self.cadence is not None:
            out["cadence_s"] = self.cadence
        if len(by_transport) > 1 or "serial" in by_transport:
            out["latency_by_transport_ms"] = {k: _stats_ms(v) for k, v in sorted(by_transport.items())}
        if self.faults_injected or any(r.fault for r in self.records):
            out["faults"] = self.fault_summary()
            out["faults_missed"] = [_fault_line(r) for r in self.records
                                    if r.fault and not r.fault_ok
                                    and not (r.expected and r.note and r.note.startswith(VOID_NOTE))]
        if self.device_stats:
            out["device_stats"] = dict(sorted(self.device_stats.items()))
        return out

    def fault_summary(self) -> dict[str, dict[str, int]]:
        """Per fault: injected (by the scripts), answered (a verdict came back for the scan that
        carries it) and detected (answered and handled as it must be)."""
        from floor_sim.faults import FAULTS

        answered = Counter(r.fault for r in self.records if r.fault and r.done is not None)
        detected = Counter(r.fault for r in self.records if r.fault and r.fault_ok)
        void = Counter(r.fault for r in self.records
                       if r.fault and not r.fault_ok and r.expected and r.note
                       and r.note.startswith(VOID_NOTE))
        names = [f for f in FAULTS if self.faults_injected[f] or answered[f]]
        out = {f: {"injected": self.faults_injected[f], "answered": answered[f],
                   "detected": detected[f]} for f in names}
        for f, n in void.items():
            out[f]["void"] = n
        return out


# A double read sent later than (debounce window - margin) after the first may fairly miss it.
DEBOUNCE_MARGIN_S = 0.1
VOID_NOTE = "outside the debounce window"


def _immediate(r: ScanRecord) -> bool:
    return r.kind in ("double_read", "partial_line")


def _transport_group(transport: str) -> str:
    return "serial" if transport == "serial" else "handheld"


def _label(r: ScanRecord) -> str:
    """How an unexpected answer is listed: the step's kind, the verdict, and what else was off."""
    return f"{r.kind}->{r.verdict}" + (f" ({r.note})" if r.note else "")


def _fault_line(r: ScanRecord) -> str:
    return (f"{r.fault} at {r.device_id} order {r.order_no}: {r.kind}->{r.verdict}"
            + (f" ({r.note})" if r.note else "") + (f" [{r.error}]" if r.error else ""))


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
        self.stats: Counter[str] = Counter()

    def do(self, step: Step, scheduled: float) -> ScanRecord:
        """Make one step: usually one scan; with an injected fault's action, what it takes."""
        hh = self.device.handheld
        if step.action == "burst":
            return self._burst(step, scheduled)
        action_ok, notes = True, []
        if step.action == "unplug":
            action_ok, notes = self._unplug(step)
            scheduled = time.perf_counter()      # the rescan, once the scanner is back
        scan_id = str(uuid.uuid4())
        body = hh.payload(step.code, scan_id)
        sent = time.perf_counter()
        if step.fault == "double_read" and step.kind == "double_read":
            step, note = self._double_read_window(step, sent)
            if note:
                notes.append(note)
        verdict: dict[str, Any] | None = None
        done: float | None = None
        error = None
        try:
            if step.raw is not None and step.action is None:
                # Bytes on a serial line (garbage), then the terminator: whatever comes back.
                (verdict, done), = hh.write([], raw=step.raw + hh.terminator, expect_raw=[None])
            elif step.action == "drop":
                # Cut at once, while the service is likely still at it, or after its answer.
                linger = self.rng.choice((0.0, self.rng.uniform(0.0, 0.01),
                                          self.rng.uniform(0.02, 0.08)))
                first = hh.send_dropping(body, linger)
                self.stats["wifi_drops"] += 1
                self.stats["wifi_first_ack_before_drop"] += first is not None
                sent_again = time.perf_counter()
                verdict = hh.send(body)          # reconnects; the same scan_id again
                done = time.perf_counter()
                sent = sent_again
                if first is not None and first.get("code") != verdict.get("code"):
                    action_ok = False
                    notes.append(f"first answer {first.get('code')}, after the reconnect "
                                 f"{verdict.get('code')}")
                try:
                    beat = hh.heartbeat()
                except Exception as exc:  # noqa: BLE001 - the scan itself was answered
                    beat = {"ok": False, "code": f"{type(exc).__name__}"}
                if beat.get("ok") is not True:
                    action_ok = False
                    notes.append(f"heartbeat after the reconnect: {beat.get('code')}")
            else:
                verdict = hh.send(body)
                done = time.perf_counter()
            if getattr(hh, "assigns_scan_ids", False) and verdict is not None:
                done = getattr(hh, "last_received", None) or done
        except Exception as exc:  # no verdict: counted, the device goes on
            done, verdict = None, None
            error = f"{type(exc).__name__}: {exc}"
        if getattr(hh, "assigns_scan_ids", False):
            scan_id = str((verdict or {}).get("scan_id") or "")
        if (step.kind == "double_read" and getattr(hh, "last_attempts", 1) > 1
                and not getattr(hh, "send_at", False)
                and not any(n.startswith(VOID_NOTE) for n in notes)):
            # The double read had to be replayed (a crash, an outage) by a device that sends no
            # time of its own: the service can judge the debounce window only by arrival, so it
            # may fairly see a second read now. (With `at`, it judges by the scan's time.)
            step = dataclasses.replace(step, expected=frozenset({"duplicate_read", "accepted",
                                                                 "over_scan"}))
            notes.append(f"{VOID_NOTE}: replayed {hh.last_attempts} times")
        rec = self._record(step, scan_id, scheduled, sent, done, verdict, error,
                           action_ok=action_ok, notes=notes)
        rec.attempts = max(1, getattr(hh, "last_attempts", 1)) + (step.action == "drop")
        rec.refusals = tuple(getattr(hh, "last_refusals", ()))
        if rec.attempts > 1:
            self.stats["replays"] += rec.attempts - 1
        if rec.refusals:
            self.stats["retryable_answers"] += len(rec.refusals)
        return rec

    def _record(self, step: Step, scan_id: str, scheduled: float, sent: float,
                done: float | None, verdict: dict[str, Any] | None, error: str | None, *,
                observe: bool = True, action_ok: bool = True,
                notes: list[str] | None = None) -> ScanRecord:
        hh, script = self.device.handheld, self.device.script
        self.last_code, self.last_at = step.code, time.perf_counter()
        code = _verdict_code(verdict)
        if observe:
            script.observe(step, verdict)
        progress = (verdict or {}).get("progress")
        complete = isinstance(progress, dict) and bool(progress.get("complete"))
        params = (verdict or {}).get("params")
        reason = params.get("reason") if isinstance(params, dict) else None
        expected = code in step.expect
        notes = list(notes or [])
        if expected and step.complete is not None and complete != step.complete:
            expected = False
            notes.insert(0, "completed the order" if complete else "did not complete the order")
        if expected and step.reasons is not None and reason not in step.reasons:
            expected = False
            notes.insert(0, f"reason {reason}, not {'/'.join(sorted(step.reasons))}")
        void = any(n.startswith(VOID_NOTE) for n in notes)
        rec = ScanRecord(hh.device_id, hh.station, scan_id, step.code, step.kind, step.order_no,
                         scheduled, sent, done, code,
                         None if verdict is None else bool(verdict.get("ok")),
                         expected, complete, error, transport=hh.transport, fault=step.fault,
                         fault_ok=(expected and action_ok and not (void and code != "duplicate_read"))
                         if step.fault else None,
                         verdict_order=(verdict or {}).get("order_no"), reason=reason,
                         note="; ".join(notes) or None)
        self.records.append(rec)
        return rec

    def _double_read_window(self, step: Step, sent: float) -> tuple[Step, str | None]:
        """A handheld's double read goes out right after the first read's verdict. If that took
        so long that the two reads may be further apart than the service's debounce window,
        `accepted` (or `over_scan`) is a right answer too: the step says so, and the fault
        counts as void rather than detected."""
        window = float(self.device.extra.get("debounce_s", 0.5))
        prev = next((r for r in reversed(self.records) if r.code == step.code), None)
        if prev is None or window <= 0:
            return step, None
        gap = sent - prev.sent
        if gap < window - DEBOUNCE_MARGIN_S:
            return step, None
        return (dataclasses.replace(step, expected=frozenset({"duplicate_read", "accepted",
                                                              "over_scan"})),
                f"{VOID_NOTE}: sent {gap * 1000:.0f} ms after the first read")

    def _burst(self, step: Step, scheduled: float) -> ScanRecord:
        """A serial scanner that triggers twice: the code twice in one write. The first read is
        an item, the second must be a duplicate_read."""
        hh = self.device.handheld
        first = dataclasses.replace(step, fault=None, action=None)
        second = Step(step.code, "double_read", step.order_no, immediate=True,
                      fault="double_read", expected=frozenset({"duplicate_read"}))
        sent = time.perf_counter()
        try:
            answers = hh.write([step.code, step.code])
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._record(first, "", scheduled, sent, None, None, error)
            return self._record(second, "", sent, sent, None, None, error)
        (v1, t1), (v2, t2) = answers
        self._record(first, str(v1.get("scan_id") or ""), scheduled, sent, t1, v1, None)
        return self._record(second, str(v2.get("scan_id") or ""), sent, sent, t2, v2, None)

    def _unplug(self, step: Step) -> tuple[bool, list[str]]:
        """Pull the scanner's cable (mid-line when the step carries half a code), lose a read
        while it is out, plug it back in. The cut-off line's verdict, if the service read it,
        is recorded as a `partial_line` scan."""
        hh = self.device.handheld
        self.stats["unplugs"] += 1
        try:
            info = hh.unplug_cycle(step.raw, step.code)
        except Exception as exc:
            return False, [f"unplug failed: {type(exc).__name__}: {exc}"]
        notes = []
        if not info["offline"]:
            notes.append("never reported offline")
        if not info["online"]:
            notes.append("never back online")
        if info["lost_reads"] != 1:
            notes.append("a read while unplugged reached the service")
        if step.raw:
            self.stats["unplugs_mid_line"] += 1
            partial = info["partial"]
            if partial is None:
                self.stats["partial_lines_lost"] += 1
            else:
                self.stats["partial_lines"] += 1
                cut = Step(step.raw.decode("utf-8", "replace"), "partial_line", step.order_no,
                           immediate=True, expected=frozenset({"unreadable"}),
                           reasons=frozenset({"partial_line"}))
                # Its verdict comes of the unplug: timed from there.
                rec = self._record(cut, str(partial.get("scan_id") or ""), info["unplugged_at"],
                                   info["unplugged_at"], info["partial_received"], partial, None,
                                   observe=False)
                if not rec.expected:
                    notes.append(f"cut-off line answered {rec.verdict} ({rec.reason})")
        self.stats["reads_lost_unplugged"] += info["lost_reads"]
        return not notes, notes


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
    injected: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    for w in workers:
        packed += w.device.script.packed
        abandoned.update(w.device.script.abandoned)
        injected.update(getattr(w.device.script, "injected", {}))
        stats.update(w.stats)
        stats["reconnects"] += w.device.handheld.reconnects
    if not stats["reconnects"]:
        del stats["reconnects"]
    transports = sorted({w.device.handheld.transport for w in workers})
    return LoadResult(mode, "+".join(transports) if len(transports) > 1 else first.transport,
                      first.endpoint, len(workers), rate, duration,
                      window, start, records,
                      unsent=sum(w.unsent for w in workers),
                      starved=sum(1 for w in workers if w.starved_at is not None),
                      client_cpu=cpu, packed=packed, abandoned=abandoned,
                      faults_injected=injected, device_stats=stats)


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


def run_paced_loop(devices: Sequence[Device], cadence: float, duration: float, *,
                   seed: int | None = None, jitter: float = 0.5, repeat_gap: float = 0.6,
                   stop_when_done: bool = True) -> LoadResult:
    """Packers at a human pace: each device scans, waits for the verdict, then takes a think
    time before its next scan, for at most `duration` seconds.

    Think times are gamma-distributed with mean `cadence` seconds and coefficient of variation
    `jitter` (0: exactly `cadence`); devices start at random points of their first interval.
    The offered load follows the answers (a closed loop with think time), so latency counts
    from the send. A double read goes out right after the verdict it repeats; the same code
    is not scanned again within `repeat_gap` seconds otherwise. A step due after the end is
    counted as never sent and the device stops.
    """
    if cadence <= 0 or not devices:
        raise ValueError("need a positive cadence and at least one device")
    if jitter < 0:
        raise ValueError("jitter is at least 0")
    master = random.Random(seed)
    workers = [_Worker(d, master.randrange(2**63)) for d in devices]
    shape = 1.0 / (jitter * jitter) if jitter > 0 else 0.0

    def think(rng: random.Random) -> float:
        return rng.gammavariate(shape, cadence / shape) if shape else cadence

    def body(w: _Worker, start: float) -> None:
        script = w.device.script
        end = start + duration
        due = start + w.rng.uniform(0.0, cadence)
        while True:
            step = script.next_step()
            if step is None:
                if not stop_when_done:
                    w.starved_at = time.perf_counter()
                return
            now = time.perf_counter()
            if step.immediate:
                due = now
            elif repeat_gap and step.code == w.last_code:
                due = max(due, w.last_at + repeat_gap)
            if due > end:
                w.unsent += 1
                return
            if due > now:
                time.sleep(due - now)
            w.do(step, due)
            due = time.perf_counter() + think(w.rng)

    start, cpu = _run(workers, body)
    last = max((r.done for w in workers for r in w.records if r.done is not None),
               default=start + duration)
    window = max(min(last - start, duration), 1e-9)
    result = _result("paced", workers, start, window, duration, None, cpu)
    result.cadence = cadence
    return result


# --- building fleets -------------------------------------------------------------------------

def make_fleet(transport: str, url: str, token: str, count: int, *, endpoint: str = "scan",
               station_prefix: str = "P", device_prefix: str = "PDA", connect: bool = True,
               width: int | None = None, **kwargs: Any) -> list[Handheld]:
    """`count` handhelds, one per station: stations P01.., devices PDA-01.. (by default);
    `width` digits in the numbers (default: enough for `count`, at least 2). A mixed fleet
    is given as ``"socketio+rest"``: the transports take turns."""
    width = width or max(2, len(str(count)))
    kinds = transport.split("+")
    fleet = [make_handheld(kinds[(i - 1) % len(kinds)], url, token,
                           station=f"{station_prefix}{i:0{width}d}",
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
    audit: Audit | None = None                 # the service's record, checked (floor_sim.audit)
    serial: list[dict[str, Any]] = field(default_factory=list)   # per serial scanner
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        s = self.load.summary()
        s["orders"] = len(self.orders)
        s["orders_not_packed"] = len(self.orders) - len(set(self.load.packed))
        s.update(self.settings)
        if self.serial:
            s["serial"] = self.serial
        if self.audit is not None:
            s.update(self.audit.summary())
        return s

    def scans_by_order(self) -> dict[str, list[ScanRecord]]:
        out: dict[str, list[ScanRecord]] = {o.order_no: [] for o in self.orders}
        for r in self.load.records:
            if r.order_no is not None:
                out.setdefault(r.order_no, []).append(r)
        return out

    def failures(self) -> list[str]:
        """What `floor-sim shift --strict` fails on; empty when the shift went as it must."""
        s = self.summary()
        out = []
        for key, what in (("unexpected", "unexpected verdicts"), ("no_answer", "scans without answer"),
                          ("unsent", "scans never sent"), ("orders_not_packed", "orders not packed"),
                          ("escaped_mistakes", "escaped mistakes"), ("lost_scans", "lost scans"),
                          ("duplicated_scans", "duplicated scans"),
                          ("verdict_mismatches", "verdicts recorded differently"),
                          ("orders_not_packed_by_service", "orders the service has not packed")):
            if s.get(key):
                out.append(f"{s[key]} {what}")
        if s.get("faults_missed"):
            out.append(f"{len(s['faults_missed'])} faults not detected")
        return out


def shift_stations(handhelds: int, serial: int, station_prefix: str = "P",
                   device_prefix: str = "PDA", serial_prefix: str = "SCN") -> dict[str, Any]:
    """Stations and device ids: handhelds at P01..PN (PDA-01..), serial scanners after them at
    P(N+1).. (SCN-01..)."""
    width = max(2, len(str(handhelds + serial)))
    swidth = max(2, len(str(serial)))
    return {"handheld_stations": [f"{station_prefix}{i:0{width}d}" for i in range(1, handhelds + 1)],
            "serial_stations": [f"{station_prefix}{i:0{width}d}"
                                for i in range(handhelds + 1, handhelds + serial + 1)],
            "serial_ids": [f"{serial_prefix}-{i:0{swidth}d}" for i in range(1, serial + 1)],
            "width": width}


def fault_devices(fleet: Sequence[Handheld], prepared: PreparedOrders, faults: Sequence[str],
                  fault_rate: float, *, seed: int | None = None,
                  debounce_ms: int = 500) -> list[Device]:
    """Pair each device with a packer who makes the `faults` its device supports.
    `debounce_ms`: the service's FLOOR_SCAN_DEBOUNCE_MS (a double read must fall inside it)."""
    from floor_sim.faults import FaultScript, foreign_codes_by_wave

    foreign = foreign_codes_by_wave(prepared.orders)
    used = {p.sku for p in prepared.factory.used_products()}
    unknown = [p.barcode for role in prepared.factory.catalog.values() for p in role
               if p.sku not in used]
    master = random.Random(seed)
    return [Device(h, FaultScript(prepared.by_station.get(h.station, []), faults=faults,
                                  fault_rate=fault_rate,
                                  device_kind="serial" if h.transport == "serial" else "handheld",
                                  rng=random.Random(master.randrange(2**63)),
                                  foreign_codes=foreign, unknown_codes=unknown),
                   extra={"debounce_s": debounce_ms / 1000.0})
            for h in fleet]


def run_shift(url: str, token: str, integration_token: str, *, handhelds: int = 20,
              transport: str = "socketio", orders: int = 100, rate: float = 50.0,
              duration: float = 30.0, error_rate: float = 0.0, seed: int | None = None,
              station_prefix: str = "P", device_prefix: str = "PDA",
              factory: OrderFactory | None = None, grace: float = 5.0,
              timeout: float = 10.0, repeat_gap: float = 0.6, serial: int = 0,
              serial_prefix: str = "SCN", serial_dir: str | os.PathLike[str] | None = None,
              terminator: str = "CR", faults: Sequence[str] = (), fault_rate: float = 0.0,
              cadence: float | None = None, cadence_jitter: float = 0.5,
              audit: bool = True, debounce_ms: int = 500,
              replay_for: float = 120.0) -> ShiftResult:
    """Push `orders` orders in one wave per station, then pack them with `handhelds` handhelds
    and `serial` serial scanners, one device per station.

    Pace: open loop at `rate` scans per second over all devices (Poisson), or, with `cadence`,
    each packer scans, reads the verdict and takes a think time of `cadence` seconds on average
    (`run_paced_loop`). The shift ends when every order is done or `duration` seconds have
    passed. The same code is not scanned twice by a device within `repeat_gap` seconds unless it
    is a simulated double read (the service's default debounce window is 0.5 s).

    Mistakes: `error_rate`, the simple mix (wrong item, early gift box, double read), or
    `faults` (floor_sim.faults) injected at `fault_rate` per item scan, each with its expected
    verdict.

    Serial scanners (stations after the handhelds', devices SCN-01..) are pty pairs under
    `serial_dir` (a temporary folder by default), registered with the integration token: the
    service must run on this host to open them.

    With `audit` (the default) every order is fetched afterwards and checked (floor_sim.audit).
    `debounce_ms` is the service's FLOOR_SCAN_DEBOUNCE_MS (injected double reads need it on).
    `replay_for`: how long a handheld keeps replaying an unanswered scan (same scan_id) through
    a server crash or a database outage before giving up on it.
    """
    from floor_sim.serial_scanner import DeviceRegistry, make_scanners

    if faults and error_rate:
        raise ValueError("give either error_rate (the simple mistakes) or faults, not both")
    if handhelds + serial < 1:
        raise ValueError("a shift needs at least one device")
    factory = factory or OrderFactory(seed)
    names = shift_stations(handhelds, serial, station_prefix, device_prefix, serial_prefix)
    fleet = make_fleet(transport, url, token, handhelds, station_prefix=station_prefix,
                       device_prefix=device_prefix, connect=False, timeout=timeout,
                       width=names["width"], replay_for=replay_for) if handhelds else []
    stations = [h.station for h in fleet] + names["serial_stations"]
    prepared = prepare_orders(url, integration_token, orders, stations, factory=factory)
    wrong = [p.barcode for p in factory.used_products()]
    tmp = None
    registry = None
    scanners: list[Any] = []
    if serial:
        if serial_dir is None:
            tmp = tempfile.mkdtemp(prefix="floor-sim-serial-")
        registry = DeviceRegistry(url, integration_token, timeout)
        scanners = make_scanners(url, token, registry, serial_dir or tmp or ".",
                                 names["serial_stations"], names["serial_ids"],
                                 terminator=terminator, timeout=timeout)
    everything: list[Handheld] = [*fleet, *scanners]
    serial_stats: list[dict[str, Any]] = []
    try:
        connect_all(everything)
        if faults:
            devices = fault_devices(everything, prepared, faults, fault_rate, seed=seed,
                                    debounce_ms=debounce_ms)
        else:
            devices = pack_devices(everything, prepared.by_station, error_rate=error_rate,
                                   wrong_codes=wrong, seed=seed)
        if cadence:
            load = run_paced_loop(devices, cadence, duration, seed=seed, jitter=cadence_jitter,
                                  repeat_gap=repeat_gap)
        else:
            load = run_open_loop(devices, rate, duration, seed=seed, grace=grace,
                                 stop_when_done=True, repeat_gap=repeat_gap)
        serial_stats = [sc.stats() for sc in scanners]
    finally:
        close_all(everything)
        if registry is not None:
            registry.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    for st, sc in zip(serial_stats, scanners):
        st["out_of_order_events"] = sc.out_of_order
    settings: dict[str, Any] = {"handhelds": handhelds, "serial_scanners": serial}
    if faults:
        settings.update(faults_enabled=list(faults), fault_rate=fault_rate)
    elif error_rate:
        settings["error_rate"] = error_rate
    checked = None
    if audit:
        checked = audit_shift(url, integration_token, prepared.orders, load.records,
                              packed_by_sim=load.packed, abandoned=load.abandoned,
                              timeout=timeout)
        # A re-sent scan (Wi-Fi drop) must be on record exactly once.
        for r in load.records:
            if r.fault == "wifi_drop" and r.done is not None and checked.recorded[r.scan_id] != 1:
                r.fault_ok = False
                r.note = ((r.note + "; ") if r.note else "") + \
                    f"recorded {checked.recorded[r.scan_id]} times"
    return ShiftResult(load, prepared.orders, audit=checked, serial=serial_stats,
                       settings=settings)


def format_summary(s: dict[str, Any]) -> str:
    lat, svc, lag = s["latency_ms"], s["service_ms"], s["send_lag_ms"]
    lines = [
        f"mode: {s['mode']} loop, transport {s['transport']}, endpoint {s['endpoint']}, "
        f"{s['devices']} devices"
        + (f", offered {s['offered_rate']:g} scans/s" if s.get("offered_rate") else "")
        + (f", one scan per {s['cadence_s']:g} s per device" if s.get("cadence_s") else ""),
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
    for name, st in (s.get("latency_by_transport_ms") or {}).items():
        lines.append(f"  {name}, send to verdict (ms): p50 {st['p50']:.2f}  p90 {st['p90']:.2f}  "
                     f"p99 {st['p99']:.2f}  max {st['max']:.2f}  ({st['n']} scans)")
    lines.append(f"load generator CPU: {s['client_cpu_s']:.2f} s "
                 f"({s['client_cpu_ms_per_scan']:.3f} ms per scan)")
    lines += _format_shift_extras(s)
    return "\n".join(lines)


def _format_shift_extras(s: dict[str, Any]) -> list[str]:
    """Faults, serial scanners and the audit, when the summary has them."""
    lines = []
    if "faults" in s:
        rate = s.get("fault_rate")
        lines.append("faults" + (f" (rate {rate:g} per item scan)" if rate is not None else "")
                     + ", injected/answered/detected: "
                     + (", ".join(f"{k} {v['injected']}/{v['answered']}/{v['detected']}"
                                  + (f" ({v['void']} void)" if v.get("void") else "")
                                  for k, v in s["faults"].items()) or "-"))
        for line in s.get("faults_missed") or []:
            lines.append(f"  not detected: {line}")
    stats = s.get("device_stats") or {}
    if stats.get("wifi_drops"):
        lines.append(f"wifi drops: {stats['wifi_drops']} (answer in before the drop: "
                     f"{stats.get('wifi_first_ack_before_drop', 0)}), reconnects: "
                     f"{stats.get('reconnects', 0)}")
    for sc in s.get("serial") or []:
        lines.append(f"serial {sc['device_id']} at {sc['station']}: unplugged {sc['unplugs']}x "
                     f"(seen offline {sc['offline_seen']}, back online {sc['online_seen']}), "
                     f"reads lost while unplugged {sc['reads_lost_unplugged']}, cut-off lines "
                     f"{sc['partial_lines']} reported / {sc['partial_lines_lost']} never read, "
                     f"stray verdicts {sc['stray_verdicts']}")
    if "escaped_mistakes" in s:
        lines.append(f"service record: packed {s['orders_packed_by_service']} of {s['orders']}   "
                     f"escaped mistakes: {s['escaped_mistakes']}   lost scans: {s['lost_scans']}   "
                     f"duplicated scans: {s['duplicated_scans']}   verdict mismatches: "
                     f"{s['verdict_mismatches']}   unaccounted scans: {s['unaccounted_scans']}")
        for order_no, problems in s["escaped"].items():
            lines.append(f"  escaped: {order_no}: {'; '.join(problems)}")
        for order_no, reason in s["not_packed"].items():
            lines.append(f"  not packed: {order_no}: {reason}")
        for what in ("lost", "duplicated", "verdict_mismatch_list", "unaccounted"):
            items = s.get(what) or []
            for item in list(items)[:10]:
                lines.append(f"  {what.split('_')[0]}: {item}"
                             + (f" x{items[item]}" if isinstance(items, dict) else ""))
    return lines
