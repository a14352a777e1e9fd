"""What SQLite's synchronous level costs: FLOOR_SQLITE_SYNCHRONOUS=NORMAL against FULL (and EXTRA).

    .venv/bin/python bench/durability.py [--commits 2000] [--seconds 15] [--skip-scans]

1. Bare commits: one small INSERT per transaction, WAL mode, in a folder on the same disk as
   the working directory (not the system temporary folder, which may be in memory), one
   thread; ms per commit.
2. Scans: a real `floor serve` on that level, 10 handhelds (rest-lean) offering 60 scans/s
   (open loop, Poisson) for `--seconds`; verdict latency p50 / p99 and the service's CPU.

Prints a Markdown table (docs/durability.md carries one run's figures).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "device-sim"))

LEVELS = ("NORMAL", "FULL", "EXTRA")


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)] if values else float("nan")


def bare_commits(folder: Path, level: str, commits: int) -> tuple[float, float]:
    path = folder / f"bare-{level}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={level}")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, scan_id TEXT UNIQUE, v TEXT)")
    times = []
    for i in range(commits):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (scan_id, v) VALUES (?, ?)", (f"s{i}", "x" * 200))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    conn.close()
    return percentile(times, 50) * 1000, percentile(times, 99) * 1000


def scans(folder: Path, level: str, seconds: float) -> dict[str, float]:
    from floor_sim.load import run_shift
    from floor_sim.orders import OrderFactory
    from floor_sim.server import LiveServer

    with LiveServer(instance_path=folder / f"serve-{level}",
                    env={"FLOOR_SQLITE_SYNCHRONOUS": level, "FLOOR_ALERT_INTERVAL_S": "0"}) as srv:
        device = srv.token("device", "bench")
        integration = srv.token("integration", "bench-oms")
        cpu0 = srv.cpu_seconds()
        result = run_shift(srv.url, device, integration, handhelds=10, transport="rest-lean",
                           orders=200, rate=60, duration=seconds, seed=7, audit=False,
                           factory=OrderFactory(seed=7, tag="77001"), station_prefix="D",
                           device_prefix="DUR")
        cpu = srv.cpu_seconds() - cpu0
    s = result.summary()
    return {"scans": s["answered"], "p50": s["service_ms"]["p50"], "p99": s["service_ms"]["p99"],
            "cpu_ms": cpu / max(s["answered"], 1) * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--skip-scans", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="floor-durability-", dir=os.getcwd()) as tmp:
        folder = Path(tmp)
        for level in LEVELS:
            bare = bare_commits(folder, level, args.commits)
            scan = None if args.skip_scans else scans(folder, level, args.seconds)
            rows.append((level, bare, scan))
            print(f"{level}: {bare}, {scan}", file=sys.stderr)
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}\n")
    print("| synchronous | bare commit ms p50 / p99 | scans answered | scan ms p50 / p99 "
          "| server CPU ms/scan |")
    print("|---|---:|---:|---:|---:|")
    for level, (b50, b99), scan in rows:
        if scan is None:
            print(f"| {level} | {b50:.3f} / {b99:.3f} | | | |")
        else:
            print(f"| {level} | {b50:.3f} / {b99:.3f} | {scan['scans']:,} | {scan['p50']:.1f} / "
                  f"{scan['p99']:.1f} | {scan['cpu_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
