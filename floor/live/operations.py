"""Live-floor use cases: status events from outside and from screens, alerts, the board.

Load, decide, change, flush; never commit, never emit.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from floor.db import utcnow
from floor.devices.domain import effective_state
from floor.devices.models import Device
from floor.eventlog import EventCounter, PendingEvent, record_event
from floor.live import domain as live
from floor.live.models import Alert, Lease
from floor.packing import domain
from floor.packing import operations as packing
from floor.packing.domain import Actor, DomainError
from floor.packing.models import (Order, Override, PackSession, Station, StatusEvent,
                                  Warehouse, Wave)
from floor.scan import domain as scan_domain
from floor.scan.models import ScanEvent

# External and screen events, and the status each one moves the order to.
EVENT_TARGETS = {
    "picking_started": domain.PICKING, "picked": domain.PICKED,
    "labelling_started": domain.LABELLING, "label_printed": domain.LABELLED,
    "staged_for_loading": domain.AWAITING_LOADING, "loading_started": domain.LOADING,
    "loaded": domain.LOADED, "carrier_pickup": domain.HANDED_OVER,
    "hold": domain.ON_HOLD, "exception": domain.EXCEPTION, "cancel": domain.CANCELLED,
}
SUPERVISOR_ONLY = frozenset({"hold", "exception", "cancel", "release"})


def _resume_target(s: Session, order: Order) -> str:
    """Where an order on hold (or in exception) goes back to: the status it left for it."""
    row = s.scalar(select(StatusEvent).where(StatusEvent.order_id == order.id,
                                             StatusEvent.status == order.status)
                   .order_by(StatusEvent.seq.desc()).limit(1))
    if row is None or row.from_status is None or row.from_status in domain.SIDE_STATES:
        return domain.RECEIVED if order.wave_id is None else domain.WAVE_ASSIGNED
    if row.from_status in domain.PACKED_OR_LATER:
        return row.from_status
    return row.from_status


def apply_order_event(s: Session, order_no: str, channel: str | None, data: dict[str, Any],
                      actor: Actor, warehouse_id: int | None = None) -> tuple[Order, list[PendingEvent]]:
    """An event from the OMS, a carrier, or a role on a screen moves one order on."""
    name = data.get("event")
    target = data.get("status")
    if name is not None:
        if not isinstance(name, str) or (name not in EVENT_TARGETS and name != "release"):
            raise DomainError("unknown_event", f"event must be one of {', '.join(sorted([*EVENT_TARGETS, 'release']))}.")
    elif not isinstance(target, str) or target not in domain.STATUSES:
        raise DomainError("missing_field", "Give an `event` or a target `status`.", fields=["event"])
    reason = packing.clean_text(data, "reason", 500, required=False) or ""
    if (name in SUPERVISOR_ONLY or target in domain.SIDE_STATES) and actor.role not in ("supervisor", "integration"):
        raise DomainError("forbidden", "Only a supervisor may hold, release or cancel orders.", 403)
    if (name in SUPERVISOR_ONLY or target in domain.SIDE_STATES) and not reason:
        raise DomainError("reason_required", "Holding, releasing or cancelling needs a reason.")
    at = scan_domain.effective_time(scan_domain.parse_client_time(data.get("at")), utcnow())
    order = packing.find_order(s, order_no, channel, lock=True, warehouse_id=warehouse_id)
    if name == "release":
        if order.status not in (domain.ON_HOLD, domain.EXCEPTION):
            raise DomainError("not_on_hold", f"Order {order.order_no} is {order.status}, not on hold.", 409)
        target = _resume_target(s, order)
    elif name is not None:
        target = EVENT_TARGETS[name]
    assert target is not None
    if target == domain.PACKED or (target in domain.PACKED_OR_LATER
                                   and order.status not in domain.PACKED_OR_LATER
                                   and order.status not in domain.SIDE_STATES):
        raise DomainError("packed_by_scan_only",
                          "Only a complete pack session makes an order packed.", 409)
    events = [packing.set_status(s, order, target, actor, reason or (name or f"set {target}"), at,
                                 packing.machine_for(order))]
    if target == domain.CANCELLED:
        events += _close_open_sessions(s, order, actor, reason)
    return order, events


def _close_open_sessions(s: Session, order: Order, actor: Actor, reason: str) -> list[PendingEvent]:
    events = []
    for row in s.scalars(select(PackSession).where(PackSession.order_id == order.id,
                                                   PackSession.state == "open")):
        events += packing.release_session(s, row.id, actor, f"order cancelled: {reason}")
    return events


# --- alerts -----------------------------------------------------------------------------------

def acquire_lease(s: Session, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime) -> bool:
    row = s.get(Lease, name, with_for_update=True)
    if row is None:
        s.add(Lease(name=name, holder=holder, expires_at=now + ttl))
        s.flush()
        return True
    if row.holder == holder or row.expires_at < now:
        row.holder, row.expires_at = holder, now + ttl
        return True
    return False


def _alert_payload(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "kind": alert.kind, "key": alert.key, "level": alert.level,
            "warehouse": alert.warehouse, "order_no": alert.order_no, "station": alert.station,
            "device_id": alert.device_id, "params": alert.params,
            "raised_at": alert.raised_at.isoformat(),
            "acked_by": alert.acked_by, "acked_at": alert.acked_at.isoformat() if alert.acked_at else None,
            "ack_note": alert.ack_note,
            "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None}


def _alert_rooms(alert: Alert) -> list[str]:
    rooms = [f"warehouse:{alert.warehouse}"] if alert.warehouse else []
    if alert.station:
        rooms.append(f"station:{alert.station}")
    if alert.order_no:
        rooms.append(f"order:{alert.order_no}")
    return rooms or ["warehouse:*"]


def evaluate_alerts(s: Session, now: dt.datetime) -> list[PendingEvent]:
    """Raise what is wrong now, re-level what changed, clear what went away."""
    from floor.stock import operations as stock  # stock raises its alerts through this module

    events: list[PendingEvent] = []
    for warehouse in s.scalars(select(Warehouse)).all():
        cfg = live.merged_settings(warehouse.settings)
        wanted = live.evaluate_alerts(now, cfg, _order_ages(s, warehouse),
                                      _station_windows(s, warehouse, now, cfg),
                                      _devices_seen(s, warehouse))
        wanted += stock.low_stock_alerts(s, warehouse)
        wanted += stock.kit_short_alerts(s, warehouse)
        events += reconcile_alerts(s, warehouse.code, wanted, now)
        _mark_silent_devices(s, warehouse, cfg, now)
    s.flush()
    return events


def reconcile_alerts(s: Session, warehouse_code: str, wanted: list[live.AlertSpec],
                     now: dt.datetime, scope: set[str] | None = None) -> list[PendingEvent]:
    """Raise, re-level and clear the warehouse's open alerts against `wanted`. With `scope`,
    only the alerts of those keys: a use case that has just removed (or caused) one alert's
    cause settles it in its own transaction instead of waiting for the next evaluation."""
    query = select(Alert).where(Alert.warehouse == warehouse_code, Alert.cleared_at.is_(None))
    if scope is not None:
        if not scope:
            return []
        query = query.where(Alert.key.in_(sorted(scope)))
        wanted = [spec for spec in wanted if spec.key in scope]
    events: list[PendingEvent] = []
    open_rows = {a.key: a for a in s.scalars(query)}
    for change in live.diff_alerts({k: a.level for k, a in open_rows.items()}, wanted):
        if change.action == "raise":
            spec = change.spec
            assert spec is not None
            alert = Alert(kind=spec.kind, key=spec.key, level=spec.level,
                          warehouse=warehouse_code, order_no=spec.order_no,
                          station=spec.station, device_id=spec.device_id,
                          params=spec.params, raised_at=now)
            s.add(alert)
            s.flush()
            events.append(record_event(s, "alert", _alert_rooms(alert), _alert_payload(alert), now))
        elif change.action == "update":
            assert change.spec is not None
            alert = open_rows[change.key]
            alert.level, alert.params = change.spec.level, change.spec.params
            events.append(record_event(s, "alert", _alert_rooms(alert), _alert_payload(alert), now))
        else:
            alert = open_rows[change.key]
            alert.cleared_at = now
            events.append(record_event(s, "alert_cleared", _alert_rooms(alert),
                                       _alert_payload(alert), now))
    return events


def _order_ages(s: Session, warehouse: Warehouse) -> list[live.OrderAge]:
    since = (select(StatusEvent.order_id, func.max(StatusEvent.at).label("since"))
             .group_by(StatusEvent.order_id).subquery())
    rows = s.execute(select(Order.order_no, Order.status, Order.waybill_no, since.c.since)
                     .join(since, since.c.order_id == Order.id)
                     .where(Order.warehouse_id == warehouse.id,
                            Order.status.not_in(live.TERMINAL | {domain.RECEIVED}))).all()
    complete = _kits_waiting_for_waybill(s, warehouse)
    return [live.OrderAge(r[0], r[1], r[3], r[2], kit_complete_at=complete.get(r[0])) for r in rows]


def _kits_waiting_for_waybill(s: Session, warehouse: Warehouse) -> dict[str, dt.datetime]:
    """Orders whose open pack session has every line and no waybill: since when (their last
    accepted scan or override)."""
    out: dict[str, dt.datetime] = {}
    for row in s.scalars(select(PackSession).join(Order, Order.id == PackSession.order_id)
                         .where(Order.warehouse_id == warehouse.id, PackSession.state == "open",
                                Order.status == domain.PACKING, Order.waybill_no.is_(None))):
        if packing.pack_state(row).short_lines():
            continue
        scanned = s.scalar(select(func.max(ScanEvent.at)).where(ScanEvent.session_id == row.id,
                                                                ScanEvent.ok.is_(True)))
        overridden = s.scalar(select(func.max(Override.at)).where(Override.session_id == row.id))
        out[row.order.order_no] = max((t for t in (scanned, overridden, row.opened_at) if t))
    return out


def _station_codes(s: Session, warehouse: Warehouse) -> list[str]:
    return list(s.scalars(select(Station.code).where(Station.warehouse_id == warehouse.id)))


def _station_windows(s: Session, warehouse: Warehouse, now: dt.datetime,
                     cfg: dict[str, Any]) -> list[live.StationWindow]:
    window_start = now - dt.timedelta(minutes=cfg["error_rate_window_minutes"])
    codes = _station_codes(s, warehouse)
    if not codes:
        return []
    rows = s.execute(select(ScanEvent.station, ScanEvent.ok, ScanEvent.verdict, func.count())
                     .where(ScanEvent.station.in_(codes), ScanEvent.received_at >= window_start)
                     .group_by(ScanEvent.station, ScanEvent.ok, ScanEvent.verdict)).all()
    scans: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for station, ok, verdict, count in rows:
        if verdict == "duplicate_read":
            continue
        scans[station] += count
        if not ok:
            refused[station] += count
    return [live.StationWindow(st, scans[st], refused[st]) for st in scans]


def _devices_seen(s: Session, warehouse: Warehouse) -> list[live.DeviceSeen]:
    codes = _station_codes(s, warehouse)
    if not codes:
        return []
    busy = set(s.scalars(select(PackSession.device_id).where(PackSession.state == "open")))
    return [live.DeviceSeen(d.device_id, d.station, d.last_seen_at,
                            d.device_id in busy or d.kind == "serial")
            for d in s.scalars(select(Device).where(Device.station.in_(codes)))]


def _mark_silent_devices(s: Session, warehouse: Warehouse, cfg: dict[str, Any], now: dt.datetime) -> None:
    limit = now - dt.timedelta(minutes=cfg["device_silent_minutes"])
    codes = _station_codes(s, warehouse)
    # Handhelds only: a serial scanner's state is its reader's to set.
    for device in s.scalars(select(Device).where(Device.station.in_(codes), Device.state == "online",
                                                 Device.kind == "handheld",
                                                 Device.last_seen_at < limit)):
        device.state, device.state_reason, device.state_changed_at = "offline", "silent", now


def list_alerts(s: Session, warehouse: str | None, include_cleared: bool) -> list[dict[str, Any]]:
    query = select(Alert).order_by(Alert.id.desc()).limit(500)
    if warehouse:
        query = query.where(Alert.warehouse == warehouse)
    if not include_cleared:
        query = query.where(Alert.cleared_at.is_(None))
    return [_alert_payload(a) for a in s.scalars(query)]


def ack_alert(s: Session, alert_id: int, actor: Actor, note: str) -> tuple[dict[str, Any], list[PendingEvent]]:
    alert = s.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise DomainError("unknown_alert", f"No alert {alert_id}.", 404)
    if alert.acked_at is not None:
        raise DomainError("already_acked", f"Alert {alert_id} was acknowledged by {alert.acked_by}.", 409)
    alert.acked_by, alert.acked_at, alert.ack_note = actor.name, utcnow(), note
    payload = _alert_payload(alert)
    return payload, [record_event(s, "alert_acked", _alert_rooms(alert), payload)]


# --- the board ----------------------------------------------------------------------------------

def board_snapshot(s: Session, warehouse_code: str, now: dt.datetime) -> dict[str, Any]:
    """Everything the supervisor board shows, consistent with `last_seq`: the board applies
    live events with a greater seq on top of it."""
    last_seq = s.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1)) or 0
    warehouse = s.scalar(select(Warehouse).where(Warehouse.code == warehouse_code))
    if warehouse is None:
        raise DomainError("unknown_warehouse", f"No warehouse {warehouse_code}.", 404)
    cfg = live.merged_settings(warehouse.settings)
    day_start = _local_midnight(now, cfg["utc_offset_minutes"])
    counts = dict(s.execute(select(Order.status, func.count()).where(Order.warehouse_id == warehouse.id)
                            .group_by(Order.status)).all())
    ages = _order_ages(s, warehouse)
    ageing = sorted(({"order_no": a.order_no, "status": a.status, "since": a.since.isoformat(),
                      "minutes": int((now - a.since).total_seconds() // 60),
                      "level": live.age_level(a.status, (now - a.since).total_seconds() / 60, cfg["slas"])}
                     for a in ages), key=lambda a: -a["minutes"])
    over_sla = [a for a in ageing if a["level"] != "green"]

    packed_events = s.execute(
        select(StatusEvent.order_id, StatusEvent.at, StatusEvent.station)
        .join(Order, Order.id == StatusEvent.order_id)
        .where(Order.warehouse_id == warehouse.id, StatusEvent.status == domain.PACKED,
               StatusEvent.at >= day_start)).all()
    opened = dict(s.execute(
        select(PackSession.order_id, func.min(PackSession.opened_at))
        .join(Order, Order.id == PackSession.order_id)
        .where(Order.warehouse_id == warehouse.id, PackSession.state == "completed",
               PackSession.opened_at >= day_start - dt.timedelta(hours=12))
        .group_by(PackSession.order_id)).all())
    pack_seconds = [(at - opened[oid]).total_seconds() for oid, at, _ in packed_events if oid in opened]
    exceptions = counts.get(domain.EXCEPTION, 0) + counts.get(domain.ON_HOLD, 0)
    active = sum(v for k, v in counts.items() if k not in live.TERMINAL)

    waves = _wave_progress(s, warehouse, now, cfg)
    stations = _station_throughput(s, warehouse, now)
    tiles = [{"order_no": a["order_no"], "status": a["status"], "level": a["level"], "since": a["since"],
              "minutes": a["minutes"]} for a in ageing[:300]]
    rejections = s.execute(
        select(ScanEvent.scan_id, ScanEvent.station, ScanEvent.device_id, ScanEvent.verdict,
               ScanEvent.message, ScanEvent.received_at, Order.order_no)
        .outerjoin(Order, Order.id == ScanEvent.order_id)
        .where(ScanEvent.ok.is_(False), ScanEvent.verdict != "duplicate_read",
               ScanEvent.station.in_(_station_codes(s, warehouse)))
        .order_by(ScanEvent.id.desc()).limit(30)).all()
    return {
        "warehouse": warehouse.code, "generated_at": now.isoformat(), "last_seq": last_seq,
        "settings": {"slas": cfg["slas"], "cutoff": cfg["cutoff"],
                     "error_rate_threshold": cfg["error_rate_threshold"],
                     "utc_offset_minutes": cfg["utc_offset_minutes"]},
        "status_counts": {status: counts.get(status, 0) for status in domain.STATUSES},
        "kpis": {"packed_today": len(packed_events),
                 "exception_ratio": live.ratio(exceptions, active),
                 "avg_pack_seconds": round(sum(pack_seconds) / len(pack_seconds), 1) if pack_seconds else None,
                 "open_alerts": len(list_alerts(s, warehouse.code, False))},
        "waves": waves, "stations": stations, "over_sla": over_sla[:200], "orders": tiles,
        "alerts": list_alerts(s, warehouse.code, False),
        "rejections": [{"scan_id": r[0], "station": r[1], "device_id": r[2], "code": r[3],
                        "message": r[4], "at": r[5].isoformat(), "order_no": r[6]} for r in rejections],
    }


def _local_midnight(now: dt.datetime, offset_minutes: int) -> dt.datetime:
    tz = dt.timezone(dt.timedelta(minutes=offset_minutes))
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.timezone.utc)


def _wave_progress(s: Session, warehouse: Warehouse, now: dt.datetime, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    cutoff = live.local_cutoff(now, cfg["cutoff"], cfg["utc_offset_minutes"])
    out = []
    for wave in s.scalars(select(Wave).where(Wave.warehouse_id == warehouse.id)
                          .order_by(Wave.id.desc()).limit(50)):
        statuses = list(s.scalars(select(Order.status).where(Order.wave_id == wave.id)))
        total = len(statuses)
        done = sum(1 for st in statuses if st in domain.PACKED_OR_LATER)
        first_done = s.scalar(select(func.min(StatusEvent.at)).join(Order, Order.id == StatusEvent.order_id)
                              .where(Order.wave_id == wave.id, StatusEvent.status == domain.PACKED))
        started = s.scalar(select(func.min(PackSession.opened_at)).join(Order, Order.id == PackSession.order_id)
                           .where(Order.wave_id == wave.id))
        finish = live.project_finish(now, total, done, started, first_done)
        out.append({"wave_no": wave.wave_no, "station": wave.station.code if wave.station else None,
                    "total": total, "packed": done, "progress": live.ratio(done, total),
                    "started_at": started.isoformat() if started else None,
                    "projected_finish": finish.isoformat() if finish else None,
                    "cutoff": cutoff.isoformat(),
                    "late": bool(finish and finish > cutoff and done < total)})
    return out


def _station_throughput(s: Session, warehouse: Warehouse, now: dt.datetime) -> list[dict[str, Any]]:
    hour_ago = now - dt.timedelta(hours=1)
    codes = _station_codes(s, warehouse)
    if not codes:
        return []
    scans: dict[str, Counter[str]] = defaultdict(Counter)
    for station, ok, verdict, received_at in s.execute(
            select(ScanEvent.station, ScanEvent.ok, ScanEvent.verdict, ScanEvent.received_at)
            .where(ScanEvent.station.in_(codes), ScanEvent.received_at >= hour_ago)):
        if verdict == "duplicate_read":
            continue
        scans[station]["total"] += 1
        scans[station]["refused"] += 0 if ok else 1
        if received_at >= now - dt.timedelta(minutes=5):
            scans[station]["last5"] += 1
    packed = Counter(s.scalars(select(StatusEvent.station).where(
        StatusEvent.status == domain.PACKED, StatusEvent.at >= hour_ago, StatusEvent.station.in_(codes))))
    devices = defaultdict(list)
    for d in s.scalars(select(Device).where(Device.station.in_(codes))):
        devices[d.station].append({"device_id": d.device_id, "kind": d.kind,
                                   "state": effective_state(d.kind, d.state, d.last_seen_at, now,
                                                            d.state_changed_at),
                                   "reason": d.state_reason, "last_seen": d.last_seen_at.isoformat()})
    return [{"station": code, "orders_per_hour": packed.get(code, 0),
             "scans_per_minute": round(scans[code]["last5"] / 5, 2),
             "error_rate": live.ratio(scans[code]["refused"], scans[code]["total"]),
             "scans_last_hour": scans[code]["total"], "devices": devices.get(code, [])}
            for code in sorted(codes)]
