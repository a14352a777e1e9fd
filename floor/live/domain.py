"""Pure rules of the live floor: ageing against SLAs, alerts, wave projections, KPIs.

No Flask, no SQLAlchemy: the operations load plain facts, these functions decide.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

# minutes in a status before it turns yellow, then red
DEFAULT_SLAS: dict[str, tuple[int, int]] = {
    "wave_assigned": (120, 240), "picking": (60, 120), "picked": (30, 60), "packing": (20, 40),
    "packed": (30, 60), "labelling": (15, 30), "labelled": (30, 60),
    "awaiting_loading": (60, 120), "loading": (30, 60), "on_hold": (60, 240),
    "exception": (30, 60),
}
DEFAULT_SETTINGS: dict[str, Any] = {
    "slas": DEFAULT_SLAS,
    "cutoff": "17:00",                 # carrier cut-off, local time
    "utc_offset_minutes": 480,         # Asia/Shanghai
    "tracking_alert_minutes": 15,      # packed and still no tracking number
    "error_rate_threshold": 0.3,       # refused share of a station's scans...
    "error_rate_min_scans": 10,        # ...over at least this many...
    "error_rate_window_minutes": 10,   # ...in this window
    "device_silent_minutes": 5,
    "stock_low_threshold": 0,          # a tracked SKU at or below it is low (its own threshold first)
}
TERMINAL = frozenset({"handed_over", "cancelled"})


# The UTC offsets places have (UTC-12:00 .. UTC+14:00), in minutes.
UTC_OFFSET_RANGE = (-720, 840)


def valid_utc_offset(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and UTC_OFFSET_RANGE[0] <= value <= UTC_OFFSET_RANGE[1])


def merged_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {**DEFAULT_SETTINGS, **(settings or {})}
    if not valid_utc_offset(out["utc_offset_minutes"]):
        # A value stored before offsets were checked: local days and cut-offs need a real one.
        out["utc_offset_minutes"] = DEFAULT_SETTINGS["utc_offset_minutes"]
    out["slas"] = {**DEFAULT_SLAS, **{k: tuple(v) for k, v in (settings or {}).get("slas", {}).items()}}
    return out


def age_level(status: str, minutes: float, slas: Mapping[str, tuple[int, int]]) -> str:
    """green, yellow or red for an order that has been `minutes` in `status`."""
    limits = slas.get(status)
    if limits is None or status in TERMINAL:
        return "green"
    yellow, red = limits
    if minutes > red:
        return "red"
    if minutes > yellow:
        return "yellow"
    return "green"


@dataclass(frozen=True)
class OrderAge:
    order_no: str
    status: str
    since: dt.datetime
    waybill_no: str | None = None
    station: str | None = None
    # Every line packed in an open session, the waybill still missing: packed in all but name
    # (the pack rules make it `packed` only with a waybill). Since the kit was complete.
    kit_complete_at: dt.datetime | None = None


@dataclass(frozen=True)
class StationWindow:
    station: str
    scans: int
    refused: int


@dataclass(frozen=True)
class DeviceSeen:
    device_id: str
    station: str | None
    last_seen: dt.datetime
    busy: bool            # holds an open pack session, or is a fixed scanner


@dataclass(frozen=True)
class AlertSpec:
    """An alert that should be open now. `key` identifies it across evaluations."""
    kind: str
    key: str
    level: str
    params: dict[str, Any] = field(default_factory=dict)
    order_no: str | None = None
    station: str | None = None
    device_id: str | None = None


def evaluate_alerts(now: dt.datetime, settings: Mapping[str, Any], orders: Iterable[OrderAge],
                    stations: Iterable[StationWindow], devices: Iterable[DeviceSeen]) -> list[AlertSpec]:
    cfg = merged_settings(settings)
    out: list[AlertSpec] = []
    for order in orders:
        minutes = (now - order.since).total_seconds() / 60
        level = age_level(order.status, minutes, cfg["slas"])
        if level != "green":
            out.append(AlertSpec("status_sla", f"status_sla:{order.order_no}:{order.status}", level,
                                 {"order_no": order.order_no, "status": order.status,
                                  "minutes": int(minutes)}, order_no=order.order_no,
                                 station=order.station))
        waiting_since = order.since if order.status == "packed" else order.kit_complete_at
        waited = (now - waiting_since).total_seconds() / 60 if waiting_since else 0.0
        if (waiting_since is not None and not order.waybill_no
                and waited > cfg["tracking_alert_minutes"]):
            out.append(AlertSpec("no_tracking_number", f"no_tracking_number:{order.order_no}", "red",
                                 {"order_no": order.order_no, "minutes": int(waited),
                                  "status": order.status}, order_no=order.order_no,
                                 station=order.station))
    for window in stations:
        if window.scans >= cfg["error_rate_min_scans"]:
            rate = window.refused / window.scans
            if rate >= cfg["error_rate_threshold"]:
                out.append(AlertSpec("station_error_rate", f"station_error_rate:{window.station}",
                                     "red" if rate >= 2 * cfg["error_rate_threshold"] else "yellow",
                                     {"station": window.station, "rate": round(rate, 3),
                                      "scans": window.scans, "refused": window.refused,
                                      "window_minutes": cfg["error_rate_window_minutes"]},
                                     station=window.station))
    for device in devices:
        silent = (now - device.last_seen).total_seconds() / 60
        if device.busy and silent > cfg["device_silent_minutes"]:
            out.append(AlertSpec("device_silent", f"device_silent:{device.device_id}", "yellow",
                                 {"device_id": device.device_id, "station": device.station,
                                  "minutes": int(silent)}, station=device.station,
                                 device_id=device.device_id))
    return out


@dataclass(frozen=True)
class AlertChange:
    action: str            # raise | update | clear
    key: str
    spec: AlertSpec | None


def diff_alerts(open_alerts: Mapping[str, str], wanted: Iterable[AlertSpec]) -> list[AlertChange]:
    """`open_alerts` maps key -> level of the alerts open now; returns what to raise, re-level,
    and clear (an alert clears when its cause goes away)."""
    wanted_by_key = {spec.key: spec for spec in wanted}
    changes = []
    for key, spec in wanted_by_key.items():
        if key not in open_alerts:
            changes.append(AlertChange("raise", key, spec))
        elif open_alerts[key] != spec.level:
            changes.append(AlertChange("update", key, spec))
    for key in open_alerts:
        if key not in wanted_by_key:
            changes.append(AlertChange("clear", key, None))
    return changes


def local_cutoff(now: dt.datetime, cutoff: str, utc_offset_minutes: int) -> dt.datetime:
    """Today's carrier cut-off (local HH:MM) as an aware UTC datetime."""
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    local = now.astimezone(tz)
    hour, minute = (int(x) for x in cutoff.split(":", 1))
    return local.replace(hour=hour, minute=minute, second=0, microsecond=0).astimezone(dt.timezone.utc)


def project_finish(now: dt.datetime, total: int, done: int, started: dt.datetime | None,
                   first_done: dt.datetime | None) -> dt.datetime | None:
    """Linear projection from the packing rate since the wave's first packed order."""
    if total <= 0 or done >= total:
        return now
    if done <= 0 or first_done is None:
        return None
    elapsed = (now - (started or first_done)).total_seconds()
    if elapsed <= 0:
        return None
    rate = done / elapsed
    return now + dt.timedelta(seconds=(total - done) / rate)


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0
