"""The floor benchmark: scan verdict latency and throughput against a bare baseline.

Run by `make bench` (``.venv/bin/python bench/run.py``). One run:

1. starts its own server exactly as production serves (`floor serve`: gunicorn, gthread, one
   process) on a free port, with a temporary instance folder (fresh SQLite database, WAL),
   ``FLOOR_BENCH_ENDPOINTS=1`` and ``FLOOR_SCAN_DEBOUNCE_MS=0``;
2. for each path (scan REST, scan Socket.IO, bare REST, bare Socket.IO) measures
   - latency at an offered 200 scans/s: 50 devices, open loop, Poisson arrivals, latency
     counted from each scan's *scheduled* time (no coordinated omission), ~20 s;
   - saturated throughput: the 50 devices in closed loop, each sending as soon as its
     previous answer is in, ~10 s;
3. prints a Markdown table and writes it to bench/results/latest.md (and the raw numbers to
   bench/results/latest.json);
4. then runs the push benchmark (`bench/push.py`: scan commit -> supervisor board latency
   with 50 and 500 boards, one process, two processes with and without Redis, a bare
   python-socketio baseline, gthread against gevent), writes bench/results/push.md and
   appends its tables to latest.md;
5. then runs the decode benchmark (`bench/decode.py`: pyzbar, zxing-cpp and floor's pipeline
   on ../shared/testdata and on generated degraded labels, detection rate and ms/image per
   format), writes bench/results/decode.md and appends its tables to latest.md;
6. then runs the evidence benchmark (`bench/evidence.py`: exact frame lookups in a one-hour
   H.264 recording against naive OpenCV seeking and sequential reading, clip export speed),
   writes bench/results/evidence.md and appends its tables to latest.md;
7. then runs the anonymous-sockets benchmark (`bench/socket_flood.py`: credential-less
   websockets held against `/healthz`, then authenticated ones up to the cap, gthread and
   gevent), writes bench/results/sockets.md and appends its table to latest.md.

``--only scan``, ``--only push``, ``--only decode``, ``--only evidence`` or ``--only sockets``
runs one of the five (all but ``scan`` leave latest.md as it is and write their own file only).

Every scan device packs its own orders (pushed and waved before the phase), so verdicts are
``order_opened`` / ``accepted``; any other verdict is counted and reported. The bare path
(`floor/benchmark.py`) does one insert and commit per request through the same engine.

The load generator runs in this process on the same machine as the server and competes with
it for the CPU; it uses the lean handheld transports (the same frames on the wire as the
python-socketio client and an HTTP/1.1 keep-alive client, less client CPU) unless
``--client library``. Its CPU per request is measured and printed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
try:
    import floor_sim  # noqa: F401
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, str(ROOT / "device-sim"))

from floor_sim.load import (LoadResult, bare_devices, close_all, connect_all, make_fleet,  # noqa: E402
                            pack_devices, run_closed_loop, run_open_loop, run_shift)
from floor_sim.orders import KitProfile, OrderFactory, prepare_orders  # noqa: E402
from floor_sim.server import LiveServer, cpu_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decode  # noqa: E402
import evidence  # noqa: E402
import push  # noqa: E402
import socket_flood  # noqa: E402

# A little bigger than the simulator's default kits (about nine scans an order), so that
# fewer orders need pushing before each phase.
BENCH_PROFILE = KitProfile(main_lines=(1, 3), main_qty=(1, 3), sample_lines=(1, 2),
                           sample_qty=(1, 3), gift_probability=0.3, giftbox_probability=0.6)
P99_TARGET_MS = 25.0
THROUGHPUT_TARGET = 0.5


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Phase:
    path: str                 # "scan REST", ...
    mode: str                 # "open" | "closed"
    summary: dict[str, Any]
    server_cpu_s: float
    orders_pushed: int = 0
    attempts: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def server_cpu_ms_per_request(self) -> float:
        answered = self.summary["answered"]
        return self.server_cpu_s / answered * 1000 if answered else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace, server: LiveServer) -> None:
        self.args = args
        self.server = server
        self.device_token = server.token("device", "bench-handhelds")
        self.integration_token = server.token("integration", "bench-oms")
        self.factory = OrderFactory(args.seed, profile=BENCH_PROFILE)
        probe = OrderFactory(seed=7, tag="00000", profile=BENCH_PROFILE).make_orders(400)
        self.scans_per_order = sum(o.scans_needed() for o in probe) / len(probe)
        self.phases: list[Phase] = []
        self._fleet_no = 0

    # -- helpers --
    def transport(self, kind: str) -> str:
        lean = self.args.client == "lean"
        return {"rest": "rest-lean" if lean else "rest",
                "socketio": "socketio-lean" if lean else "socketio"}[kind]

    def fleet(self, kind: str, endpoint: str) -> list[Any]:
        self._fleet_no += 1
        tag = f"B{self._fleet_no:02d}"
        return make_fleet(self.transport(kind), self.server.url, self.device_token,
                          self.args.devices, endpoint=endpoint, station_prefix=f"{tag}S",
                          device_prefix=f"{tag}-PDA", connect=False, timeout=self.args.timeout)

    def orders_per_device(self, scans: float) -> int:
        """Orders for `scans` scans in total over the devices: Poisson spread, then margin."""
        per_device = scans / self.args.devices
        per_device += 3 * math.sqrt(max(per_device, 1.0))
        return max(2, math.ceil(per_device * 1.25 / self.scans_per_order) + 1)

    def provision(self, fleet: list[Any], per_device: int) -> int:
        count = per_device * len(fleet)
        t0 = time.perf_counter()
        prepared = prepare_orders(self.server.url, self.integration_token, count,
                                  [h.station for h in fleet], factory=self.factory,
                                  concurrency=4)
        self._last_by_station = prepared.by_station
        log(f"  pushed {count} orders in {len(prepared.waves)} waves "
            f"({count / (time.perf_counter() - t0):.0f} orders/s)")
        return count

    def measure(self, path: str, fleet: list[Any], mode: str,
                make_devices: Callable[[], list[Any]]) -> tuple[LoadResult, float]:
        devices = make_devices()
        connect_all(fleet)
        time.sleep(0.3)
        cpu0 = self.server.cpu_seconds()
        try:
            if mode == "open":
                result = run_open_loop(devices, self.args.rate, self.args.duration,
                                       seed=self.args.seed, grace=self.args.grace)
            else:
                result = run_closed_loop(devices, self.args.sat_duration)
        finally:
            cpu = self.server.cpu_seconds() - cpu0
            close_all(fleet)
            time.sleep(0.5)  # let the server release the websocket threads
        s = result.summary()
        log(f"  {path} {mode}: {s['throughput']:.0f}/s over {s['window_s']:.1f} s, "
            f"p50 {s['latency_ms']['p50']:.1f} ms, p99 {s['latency_ms']['p99']:.1f} ms, "
            f"answered {s['answered']}/{s['sent']}, unexpected {s['unexpected']}, "
            f"unsent {s['unsent']}, starved {s['starved_devices']}")
        return result, cpu

    # -- phases --
    def warm_up(self) -> None:
        log("warm-up: a short shift over each transport, bare requests")
        for kind in ("rest", "socketio"):
            res = run_shift(self.server.url, self.device_token, self.integration_token,
                            handhelds=5, transport=self.transport(kind), orders=15, rate=60,
                            duration=15, error_rate=0.1, seed=self.args.seed,
                            station_prefix=f"WU{kind[:1].upper()}", device_prefix=f"WU-{kind}",
                            factory=self.factory, timeout=self.args.timeout, repeat_gap=0.0)
            s = res.summary()
            if s["orders_not_packed"] or s["no_answer"]:
                log(f"  warm-up over {kind}: {s['orders_not_packed']} orders not packed, "
                    f"{s['no_answer']} scans without answer")
            fleet = self.fleet(kind, "bare")
            connect_all(fleet)
            for h in fleet[:5]:
                for _ in range(10):
                    h.scan("WARMUP")
            close_all(fleet)

    def bare(self, kind: str) -> None:
        path = f"bare {'REST' if kind == 'rest' else 'Socket.IO'}"
        for mode in ("closed", "open"):
            fleet = self.fleet(kind, "bare")
            result, cpu = self.measure(path, fleet, mode, lambda: bare_devices(fleet, self.args.seed))
            self.phases.append(Phase(path, mode, result.summary(), cpu))

    def scan(self, kind: str) -> None:
        path = f"scan {'REST' if kind == 'rest' else 'Socket.IO'}"
        # Saturation first: its rate bounds how many scans the open-loop phase can get through.
        guess = self.args.sat_guess
        sat: Phase | None = None
        for attempt in range(1, 4):
            fleet = self.fleet(kind, "scan")
            pushed = self.provision(fleet, self.orders_per_device(guess * self.args.sat_duration))
            by_station = self._last_by_station
            result, cpu = self.measure(path, fleet, "closed",
                                       lambda: pack_devices(fleet, by_station, seed=self.args.seed))
            s = result.summary()
            sat = Phase(path, "closed", s, cpu, orders_pushed=pushed, attempts=attempt)
            if result.window >= 0.7 * self.args.sat_duration or attempt == 3:
                break
            guess = max(s["throughput"] * 1.6, guess * 2)
            log(f"  devices ran out of orders after {result.window:.1f} s; again for {guess:.0f}/s")
        assert sat is not None
        if sat.summary["starved_devices"]:
            sat.notes.append(f"window cut to {sat.summary['window_s']:.1f} s when devices ran out of orders")
        self.phases.append(sat)

        # Open loop: enough orders for what can be sent, the offered rate or what the server
        # got through when saturated, whichever is less (plus margins).
        sendable = min(self.args.rate * self.args.duration,
                       max(sat.summary["throughput"], 1.0) * (self.args.duration + self.args.grace) * 1.3)
        fleet = self.fleet(kind, "scan")
        pushed = self.provision(fleet, self.orders_per_device(sendable))
        by_station = self._last_by_station
        result, cpu = self.measure(path, fleet, "open",
                                   lambda: pack_devices(fleet, by_station, seed=self.args.seed))
        self.phases.append(Phase(path, "open", result.summary(), cpu, orders_pushed=pushed))


# --- report ----------------------------------------------------------------------------------

def _fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def report(bench: Bench, args: argparse.Namespace, started: dt.datetime, elapsed: float) -> tuple[str, dict[str, Any]]:
    by = {(p.path, p.mode): p for p in bench.phases}
    paths = ["scan REST", "scan Socket.IO", "bare REST", "bare Socket.IO"]
    rows = []
    data: dict[str, Any] = {"paths": {}}
    for path in paths:
        op, cl = by.get((path, "open")), by.get((path, "closed"))
        bare = by.get(("bare " + path.split(" ", 1)[1], "closed"))
        sat = cl.summary["throughput"] if cl else float("nan")
        ratio = sat / bare.summary["throughput"] if cl and bare and bare.summary["throughput"] else float("nan")
        if op:
            lat = op.summary["latency_ms"]
            due = op.summary["sent"] + op.summary["unsent"]
            served = f"{op.summary['answered']:,}/{due:,}"
            if op.summary["starved_devices"]:
                served += f" ({op.summary['starved_devices']} devices ran out of orders)"
        else:
            lat, served = {"p50": float("nan"), "p99": float("nan")}, "n/a"
        rows.append(f"| {path} | {_fmt(lat['p50'])} | {_fmt(lat['p99'])} | {served} | "
                    f"{_fmt(sat, 0)} | {_fmt(ratio, 2)} |")
        data["paths"][path] = {"p50_ms": lat["p50"], "p99_ms": lat["p99"], "saturated_rps": sat,
                               "ratio_vs_bare": ratio,
                               "open": op.summary if op else None, "closed": cl.summary if cl else None,
                               "server_cpu_ms_per_request": {
                                   "open": op.server_cpu_ms_per_request if op else None,
                                   "closed": cl.server_cpu_ms_per_request if cl else None}}

    cores = os.cpu_count() or 0
    lines = [
        f"## floor benchmark, {started.strftime('%Y-%m-%d %H:%M')} UTC",
        "",
        f"- CPU: {cpu_model()}, {cores} cores; Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version} (WAL); server: `floor serve` (gunicorn gthread, one process)",
        f"- The load generator runs on the same {cores}-core machine as the server and competes with it "
        f"for the CPU; its own CPU use is in the details below.",
        f"- Load: {args.devices} devices; latency at an offered {args.rate:g} scans/s "
        f"(open loop, Poisson, {args.duration:g} s, latency from each scan's scheduled time); "
        f"saturation: closed loop, {args.sat_duration:g} s. Client transports: "
        f"{bench.transport('rest')} and {bench.transport('socketio')}.",
        "",
        f"| path | p50 ms at {args.rate:g}/s | p99 ms at {args.rate:g}/s | answered/due at {args.rate:g}/s "
        f"| saturated req/s | ratio vs bare (same transport) |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Targets (reported, not asserted): p99 < {P99_TARGET_MS:g} ms at {args.rate:g} scans/s; "
        f"scan throughput >= {THROUGHPUT_TARGET:g} x bare.",
    ]
    for path in ("scan REST", "scan Socket.IO"):
        d = data["paths"][path]
        p99_ok = d["p99_ms"] < P99_TARGET_MS and not (d["open"] or {}).get("unsent")
        thr_ok = d["ratio_vs_bare"] >= THROUGHPUT_TARGET
        lines.append(f"- {path}: p99 {_fmt(d['p99_ms'])} ms ({'met' if p99_ok else 'missed'}); "
                     f"throughput {_fmt(d['ratio_vs_bare'], 2)} x bare ({'met' if thr_ok else 'missed'})")
    for path in paths:
        op = data["paths"][path]["open"]
        if op and op["unsent"]:
            due = op["sent"] + op["unsent"]
            lines.append(f"- {path} is overloaded at {args.rate:g}/s: {op['unsent']:,} of {due:,} due "
                         f"scans were still queued {args.grace:g} s after the end and never sent; "
                         "the percentiles cover answered scans only and understate the latency")
    lines += [
        "",
        "<details><summary>Per phase</summary>",
        "",
        "| path | mode | window s | sent | answered | unexpected verdicts | no answer | never sent "
        "| orders pushed | server CPU ms/req | client CPU ms/req | service p50 / p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in bench.phases:
        s = p.summary
        lines.append(
            f"| {p.path} | {p.mode} | {s['window_s']:.1f} | {s['sent']:,} | {s['answered']:,} | "
            f"{s['unexpected']} | {s['no_answer']} | {s['unsent']} | {p.orders_pushed or ''} | "
            f"{_fmt(p.server_cpu_ms_per_request, 2)} | {_fmt(s['client_cpu_ms_per_scan'], 2)} | "
            f"{_fmt(s['service_ms']['p50'])} / {_fmt(s['service_ms']['p99'])} |")
    notes = []
    for p in bench.phases:
        s = p.summary
        if s["unexpected_verdicts"]:
            notes.append(f"- {p.path} {p.mode}: unexpected verdicts "
                         + ", ".join(f"{k} x{v}" for k, v in s["unexpected_verdicts"].items()))
        if s["errors"]:
            notes.append(f"- {p.path} {p.mode}: no answer: "
                         + "; ".join(f"{k} x{v}" for k, v in s["errors"].items()))
        for n in p.notes:
            notes.append(f"- {p.path} {p.mode}: {n}")
        if p.mode == "open" and s["send_lag_ms"]["p99"] > 5:
            notes.append(f"- {p.path} open: scans left up to {_fmt(s['send_lag_ms']['p99'])} ms (p99) "
                         "after their scheduled time (device still waiting for the previous "
                         "answer, or the load generator short of CPU); counted in the latency")
    if notes:
        lines += ["", *notes]
    lines += ["", "</details>", "", f"Whole run: {elapsed:.0f} s.", ""]
    data.update({"date": started.isoformat(), "cpu": cpu_model(), "cores": cores,
                 "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                 "devices": args.devices, "rate": args.rate, "duration": args.duration,
                 "sat_duration": args.sat_duration, "client": args.client,
                 "phases": [{"path": p.path, "mode": p.mode, "summary": p.summary,
                             "server_cpu_s": p.server_cpu_s, "orders_pushed": p.orders_pushed,
                             "attempts": p.attempts, "notes": p.notes} for p in bench.phases]})
    return "\n".join(lines), data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rate", type=float, default=200.0, help="offered scans/s in the latency phases")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each latency phase")
    parser.add_argument("--sat-duration", type=float, default=10.0, help="seconds of each saturation phase")
    parser.add_argument("--grace", type=float, default=5.0,
                        help="open loop: seconds after the end to finish scans already due")
    parser.add_argument("--sat-guess", type=float, default=150.0,
                        help="scans/s to provision orders for in the first saturation attempt")
    parser.add_argument("--client", choices=("lean", "library"), default="lean",
                        help="lean: socketio-lean / rest-lean handhelds; library: python-socketio "
                             "Client and requests")
    parser.add_argument("--paths", default="bare-rest,bare-socketio,scan-rest,scan-socketio",
                        help="which paths to run, comma-separated")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one answer")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.md")
    parser.add_argument("--only", choices=("scan", "push", "decode", "evidence", "sockets"),
                        default=None, help="run only one of the benchmarks")
    push.add_arguments(parser, prefix="push-")
    decode.add_arguments(parser, prefix="decode-")
    evidence.add_arguments(parser, prefix="evidence-")
    socket_flood.add_arguments(parser, prefix="sockets-")
    args = parser.parse_args(argv)
    push_args = argparse.Namespace(seed=args.seed, **{k[len("push_"):]: v for k, v in vars(args).items()
                                                      if k.startswith("push_")})
    push_out = args.out.with_name("push.md")
    decode_args = argparse.Namespace(seed=args.seed, **{k[len("decode_"):]: v for k, v in vars(args).items()
                                                        if k.startswith("decode_")})
    decode_out = args.out.with_name("decode.md")
    evidence_args = argparse.Namespace(seed=args.seed, **{k[len("evidence_"):]: v for k, v in vars(args).items()
                                                          if k.startswith("evidence_")})
    evidence_out = args.out.with_name("evidence.md")
    sockets_args = argparse.Namespace(**{k[len("sockets_"):]: v for k, v in vars(args).items()
                                         if k.startswith("sockets_")})
    sockets_out = args.out.with_name("sockets.md")
    if args.only == "sockets":
        print(socket_flood.run_all(sockets_args, sockets_out))
        return 0
    if args.only == "push":
        print(push.run(push_args, push_out))
        return 0
    if args.only == "decode":
        print(decode.run(decode_args, decode_out))
        return 0
    if args.only == "evidence":
        print(evidence.run(evidence_args, evidence_out))
        return 0

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    log("starting floor serve (temporary instance, bench endpoints on, debounce 0)")
    with LiveServer(bench_endpoints=True, debounce_ms=0) as server:
        log(f"server at {server.url}")
        bench = Bench(args, server)
        bench.warm_up()
        wanted = [p.strip() for p in args.paths.split(",") if p.strip()]
        for name in wanted:
            log(f"{name}")
            what, kind = name.split("-", 1)
            getattr(bench, what)(kind)
    elapsed = time.perf_counter() - t0
    text, data = report(bench, args, started, elapsed)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    if args.only != "scan":
        log("push benchmark")
        push_text = push.run(push_args, push_out)
        print(push_text)
        text += "\n" + push_text
        args.out.write_text(text + "\n", encoding="utf-8")
        log("decode benchmark")
        decode_text = decode.run(decode_args, decode_out)
        print(decode_text)
        text += "\n" + decode_text
        args.out.write_text(text + "\n", encoding="utf-8")
        log("evidence benchmark")
        evidence_text = evidence.run(evidence_args, evidence_out)
        print(evidence_text)
        text += "\n" + evidence_text
        args.out.write_text(text + "\n", encoding="utf-8")
        log("anonymous-sockets benchmark")
        sockets_text = socket_flood.run_all(sockets_args, sockets_out)
        print(sockets_text)
        text += "\n" + sockets_text
        args.out.write_text(text + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str) + "\n",
                                             encoding="utf-8")
    log(f"wrote {args.out} and {args.out.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
