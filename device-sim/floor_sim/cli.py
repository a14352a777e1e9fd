"""The `floor-sim` command.

    floor-sim shift  --url URL --token T --integration-token T2 [--handhelds 20] [--transport socketio]
                     [--serial 2] [--orders 100] [--rate 50 | --cadence 1.5] [--duration 30]
                     [--error-rate 0.05 | --faults all --fault-rate 0.2] [--strict]
    floor-sim load   --url URL --token T [--integration-token T2] --mode open|closed ...
    floor-sim orders --url URL --integration-token T2 --count 100 --stations P01,P02
    floor-sim faults-table [--backend sqlite,postgresql] [--orders 100] [--kills 3]

Each subcommand is a `Command`: a name, a help line, `add_arguments(parser)` and
`run(args) -> exit status`. Serial scanners on pty pairs are devices of `shift` (`--serial`);
new commands go in `COMMANDS` without touching the others.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Callable, Sequence

from floor_sim import __version__
from floor_sim.faults import FAULTS, parse_faults
from floor_sim.handheld import TRANSPORTS
from floor_sim.load import (bare_devices, close_all, connect_all, format_summary, make_fleet,
                            pack_devices, run_closed_loop, run_open_loop, run_shift)
from floor_sim.orders import OrderFactory, OrderPusher, allocate, prepare_orders


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be in [0, 1)")
    return value


def _common(parser: argparse.ArgumentParser, *, token: bool = True, integration: str = "required") -> None:
    parser.add_argument("--url", default=os.environ.get("FLOOR_URL", "http://127.0.0.1:5000"),
                        help="the service (default $FLOOR_URL or http://127.0.0.1:5000)")
    if token:
        parser.add_argument("--token", default=os.environ.get("FLOOR_SIM_TOKEN"),
                            required="FLOOR_SIM_TOKEN" not in os.environ,
                            help="bearer token of the handhelds: role packer or device "
                                 "(default $FLOOR_SIM_TOKEN)")
    if integration != "none":
        env = os.environ.get("FLOOR_SIM_INTEGRATION_TOKEN")
        parser.add_argument("--integration-token", default=env,
                            required=integration == "required" and env is None,
                            help="token with role integration, to push orders and waves "
                                 "(default $FLOOR_SIM_INTEGRATION_TOKEN)")
    parser.add_argument("--seed", type=int, default=None, help="make orders and timing repeatable")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _fault_list(text: str) -> tuple[str, ...]:
    try:
        return parse_faults(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fleet_args(parser: argparse.ArgumentParser, handhelds: int, minimum: int = 1) -> None:
    parser.add_argument("--handhelds", type=_positive_int if minimum else _count,
                        default=handhelds)
    parser.add_argument("--transport", choices=sorted(TRANSPORTS), default="socketio",
                        help="socketio / rest: the python-socketio client and requests; "
                             "socketio-lean / rest-lean: the same wire traffic with less "
                             "client CPU, for load generation")
    parser.add_argument("--station-prefix", default="P", help="stations P01, P02, ...")
    parser.add_argument("--device-prefix", default="PDA", help="devices PDA-01, PDA-02, ...")
    parser.add_argument("--timeout", type=_positive_float, default=10.0,
                        help="seconds to wait for one verdict")


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(format_summary(summary))


class Command:
    name = ""
    help = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


class ShiftCommand(Command):
    name = "shift"
    help = ("push orders, then pack them all with simulated handhelds and serial scanners, "
            "with injected faults; check what the service recorded")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _common(parser)
        _fleet_args(parser, 20, minimum=0)
        parser.add_argument("--serial", type=_count, default=0, metavar="M",
                            help="M serial scanners on pty pairs, at the stations after the "
                                 "handhelds' (devices SCN-01..); the service must run on this host")
        parser.add_argument("--serial-prefix", default="SCN", help="scanners SCN-01, SCN-02, ...")
        parser.add_argument("--serial-dir", default=None,
                            help="folder for the scanners' pty links (default: a temporary one)")
        parser.add_argument("--terminator", choices=("CR", "LF", "CRLF"), default="CR",
                            help="the serial scanners' line suffix")
        parser.add_argument("--orders", type=_positive_int, default=100)
        parser.add_argument("--rate", type=_positive_float, default=50.0,
                            help="scans per second over all devices (Poisson, open loop); "
                                 "ignored with --cadence")
        parser.add_argument("--cadence", type=_positive_float, default=None, metavar="SECONDS",
                            help="packers at a human pace instead of --rate: each scans, reads "
                                 "the verdict, and scans again after SECONDS on average "
                                 "(e.g. 1.5)")
        parser.add_argument("--cadence-jitter", type=float, default=0.5,
                            help="coefficient of variation of the think time (gamma "
                                 "distributed; 0: always exactly --cadence)")
        parser.add_argument("--duration", type=_positive_float, default=30.0,
                            help="longest shift in seconds; it ends earlier once all orders are packed")
        parser.add_argument("--error-rate", type=_rate, default=0.0,
                            help="share of scans that are simple mistakes: wrong item, gift box "
                                 "too early, double read (loosely checked; see --faults)")
        parser.add_argument("--faults", type=_fault_list, default=(), metavar="LIST",
                            help=f"faults to inject, comma-separated, or all: {', '.join(FAULTS)}")
        parser.add_argument("--fault-rate", type=_rate, default=None,
                            help="probability that an item scan comes with an injected fault "
                                 "(default 0.2 with --faults)")
        parser.add_argument("--repeat-gap", type=float, default=0.6,
                            help="seconds before a device scans the same code again (a second "
                                 "unit); keep above the service's debounce window (0 if off)")
        parser.add_argument("--debounce-ms", type=int, default=500,
                            help="the service's FLOOR_SCAN_DEBOUNCE_MS: a handheld's injected "
                                 "double read sent later than this (less 100 ms) after the first "
                                 "may be accepted, and counts as void")
        parser.add_argument("--no-audit", action="store_true",
                            help="skip fetching every order afterwards (no escaped-mistake, "
                                 "lost or duplicated-scan check)")
        parser.add_argument("--strict", action="store_true",
                            help="exit 1 unless every scan was answered as expected, every order "
                                 "was packed, no mistake escaped, no scan was lost or duplicated "
                                 "and every injected fault was detected")

    def run(self, args: argparse.Namespace) -> int:
        if args.faults and args.error_rate:
            print("floor-sim shift: give --error-rate or --faults, not both", file=sys.stderr)
            return 2
        if args.handhelds + args.serial < 1:
            print("floor-sim shift: no devices (--handhelds 0 and no --serial)", file=sys.stderr)
            return 2
        fault_rate = args.fault_rate if args.fault_rate is not None else (0.2 if args.faults else 0.0)
        result = run_shift(args.url, args.token, args.integration_token,
                           handhelds=args.handhelds, transport=args.transport, orders=args.orders,
                           rate=args.rate, duration=args.duration, error_rate=args.error_rate,
                           seed=args.seed, station_prefix=args.station_prefix,
                           device_prefix=args.device_prefix, timeout=args.timeout,
                           repeat_gap=args.repeat_gap, serial=args.serial,
                           serial_prefix=args.serial_prefix, serial_dir=args.serial_dir, terminator=args.terminator,
                           faults=args.faults, fault_rate=fault_rate, cadence=args.cadence,
                           cadence_jitter=args.cadence_jitter, audit=not args.no_audit,
                           debounce_ms=args.debounce_ms)
        summary = result.summary()
        _print(summary, args.json)
        if args.strict and result.failures():
            if not args.json:
                print("strict: " + "; ".join(result.failures()), file=sys.stderr)
            return 1
        return 0


class LoadCommand(Command):
    name = "load"
    help = "measure latency (open loop) or throughput (closed loop) of scans or the bare endpoints"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _common(parser, integration="optional")
        _fleet_args(parser, 50)
        parser.add_argument("--mode", choices=("open", "closed"), default="open")
        parser.add_argument("--endpoint", choices=("scan", "bare"), default="scan",
                            help="bare: the service's /bench/bare and bench_bare (needs "
                                 "FLOOR_BENCH_ENDPOINTS=1 on the service)")
        parser.add_argument("--rate", type=_positive_float, default=200.0,
                            help="open loop: offered scans per second (Poisson)")
        parser.add_argument("--duration", type=_positive_float, default=20.0)
        parser.add_argument("--orders", type=int, default=None,
                            help="orders to push for scan load (default: enough for the "
                                 "open-loop rate, or for --expect-rate in closed loop)")
        parser.add_argument("--expect-rate", type=_positive_float, default=800.0,
                            help="closed loop: the most scans/s to provision orders for")
        parser.add_argument("--repeat-gap", type=float, default=0.6,
                            help="open loop: seconds before a device scans the same code again; "
                                 "0 when the service runs with FLOOR_SCAN_DEBOUNCE_MS=0")

    def run(self, args: argparse.Namespace) -> int:
        fleet = make_fleet(args.transport, args.url, args.token, args.handhelds,
                           endpoint=args.endpoint, station_prefix=args.station_prefix,
                           device_prefix=args.device_prefix, connect=False, timeout=args.timeout)
        if args.endpoint == "scan":
            if not args.integration_token:
                print("floor-sim load: scan load needs --integration-token to push orders",
                      file=sys.stderr)
                return 2
            factory = OrderFactory(args.seed)
            count = args.orders or orders_for(args.rate if args.mode == "open" else args.expect_rate,
                                              args.duration, args.handhelds, factory)
            prepared = prepare_orders(args.url, args.integration_token, count,
                                      [h.station for h in fleet], factory=factory)
            devices = pack_devices(fleet, prepared.by_station, seed=args.seed)
        else:
            devices = bare_devices(fleet, seed=args.seed)
        try:
            connect_all(fleet)
            if args.endpoint == "bare" and not _bare_available(fleet[0]):
                print("floor-sim load: the service has no bare endpoints; start it with "
                      "FLOOR_BENCH_ENDPOINTS=1", file=sys.stderr)
                return 2
            if args.mode == "open":
                result = run_open_loop(devices, args.rate, args.duration, seed=args.seed,
                                       repeat_gap=args.repeat_gap)
            else:
                result = run_closed_loop(devices, args.duration)
        finally:
            close_all(fleet)
        _print(result.summary(), args.json)
        return 0


def _bare_available(handheld: Any) -> bool:
    try:
        verdict, _ = handheld.scan("PROBE")
    except Exception:
        return False
    return verdict.get("ok") is True


def orders_for(rate: float, duration: float, devices: int, factory: OrderFactory,
               margin: float = 1.5) -> int:
    """Orders enough for `rate` scans/s during `duration` s over `devices`, with a margin."""
    probe = OrderFactory(seed=1, tag=factory.tag, profile=factory.profile)
    per_order = sum(o.scans_needed() for o in probe.make_orders(200)) / 200
    per_device = rate * duration / devices
    # Poisson counts per device: add three standard deviations, then the margin.
    per_device += 3 * math.sqrt(max(per_device, 1.0))
    return devices * max(2, math.ceil(per_device * margin / per_order))


class OrdersCommand(Command):
    name = "orders"
    help = "push synthetic orders and one wave per station"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _common(parser, token=False)
        parser.add_argument("--count", type=_positive_int, default=100)
        parser.add_argument("--stations", default="P01",
                            help="comma-separated stations; orders are dealt round-robin, one wave each")
        parser.add_argument("--no-waves", action="store_true", help="push the orders only")

    def run(self, args: argparse.Namespace) -> int:
        stations = [s.strip() for s in args.stations.split(",") if s.strip()]
        factory = OrderFactory(args.seed)
        if args.no_waves:
            orders = factory.make_orders(args.count)
            allocate(orders, stations)
            OrderPusher(args.url, args.integration_token).push_orders(orders)
            waves: list[str] = []
        else:
            prepared = prepare_orders(args.url, args.integration_token, args.count, stations,
                                      factory=factory)
            orders, waves = prepared.orders, prepared.waves
        out = {"tag": factory.tag, "orders": len(orders), "waves": waves,
               "order_nos": [o.order_no for o in orders],
               "waybills": {o.order_no: o.waybill_no for o in orders}}
        if args.json:
            print(json.dumps(out, indent=2))
        else:
            print(f"pushed {len(orders)} orders (tag {factory.tag}) in {len(waves)} waves: "
                  f"{', '.join(waves) or '-'}")
            for o in orders[:10]:
                print(f"  {o.order_no}  waybill {o.waybill_no}  station {o.station}  "
                      f"{o.units()} units")
            if len(orders) > 10:
                print(f"  ... and {len(orders) - 10} more")
        return 0


class FaultsTableCommand(Command):
    name = "faults-table"
    help = ("run short shifts against fresh `floor serve` processes under each fault (none, "
            "Wi-Fi drops, kill -9, database outage, Redis down, serial unplug) and print the "
            "Markdown table: scans sent, recorded, lost, duplicated, escaped mistakes")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from floor_sim.fault_table import FAULT_ROWS

        parser.add_argument("--faults", default=",".join(FAULT_ROWS),
                            help=f"rows to run, comma-separated (default all: {','.join(FAULT_ROWS)})")
        parser.add_argument("--backend", default="sqlite",
                            help="sqlite, postgresql, or both comma-separated (PostgreSQL: "
                                 "--postgres-url or $FLOOR_TEST_POSTGRES_URL; a schema per row)")
        parser.add_argument("--postgres-url", default=os.environ.get("FLOOR_TEST_POSTGRES_URL"))
        parser.add_argument("--handhelds", type=_positive_int, default=20)
        parser.add_argument("--orders", type=_positive_int, default=100)
        parser.add_argument("--kills", type=_positive_int, default=3,
                            help="kill -9 this many times in the kill_9 row")
        parser.add_argument("--outage", type=_positive_float, default=4.0,
                            help="seconds the database (or Redis) is out")
        parser.add_argument("--cadence", type=_positive_float, default=0.1,
                            help="mean seconds a packer takes between scans")
        parser.add_argument("--mistake-rate", type=_rate, default=0.1,
                            help="share of item scans that carry a packer's mistake")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--json", action="store_true", help="print the rows as JSON")

    def run(self, args: argparse.Namespace) -> int:
        from floor_sim.fault_table import FAULT_ROWS, format_table, machine_line, run_table

        faults = [f.strip() for f in args.faults.split(",") if f.strip()]
        backends = [b.strip() for b in args.backend.split(",") if b.strip()]
        unknown = [f for f in faults if f not in FAULT_ROWS]
        if unknown or not set(backends) <= {"sqlite", "postgresql"}:
            print(f"floor-sim faults-table: unknown fault or backend: {unknown or backends}",
                  file=sys.stderr)
            return 2
        if "postgresql" in backends and not args.postgres_url:
            print("floor-sim faults-table: postgresql needs --postgres-url", file=sys.stderr)
            return 2
        rows = run_table(faults, backends, pg_url=args.postgres_url, handhelds=args.handhelds,
                         orders=args.orders, kills=args.kills, outage_s=args.outage,
                         cadence=args.cadence, mistake_rate=args.mistake_rate, seed=args.seed)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        else:
            print(f"{machine_line()}; {args.handhelds} handhelds, {args.orders} orders a row\n")
            print(format_table(rows))
        bad = [r for r in rows if r["lost"] or r["duplicated"] or r["escaped"] or r["problems"]
               or r["unaccounted"] or r["unanswered"]]
        return 1 if bad else 0


COMMANDS: list[Command] = [ShiftCommand(), LoadCommand(), OrdersCommand(), FaultsTableCommand()]


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floor-sim",
                                     description="Simulated pack-station devices for floor.")
    parser.add_argument("--version", action="version", version=f"floor-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args._run
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a refused token, an unreachable service: one line, not a trace
        if os.environ.get("FLOOR_SIM_DEBUG"):
            raise
        print(f"floor-sim {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
