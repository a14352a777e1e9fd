"""The scan use case: one scan, one transaction, idempotent on scan_id.

Load the facts (station, device, active session, what the code names), let the domain decide,
apply the decision, record the ScanEvent and the events to push. Never commits, never emits.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload

from floor.db import utcnow
from floor.devices import print_operations
from floor.devices.models import Device
from floor.eventlog import PendingEvent, record_event
from floor.live import domain as live_domain
from floor.packing import domain
from floor.packing import operations as packing
from floor.packing.domain import Actor, Decision, DomainError
from floor.packing.models import Order, PackCursor, PackSession, SnapshotSku, Warehouse, Wave
from floor.scan import domain as scan_domain
from floor.scan.models import ScanEvent

Render = Callable[[str, dict[str, Any]], str]
MAX_ID = 64
MAX_STATION = 32


@dataclass(frozen=True)
class ScanRequest:
    scan_id: str
    station: str
    device_id: str
    code: Any                      # as received; the normaliser judges it
    client_at: dt.datetime | None = None
    # Set by a reader that already knows the line is no barcode (over-long, not UTF-8, cut off).
    reader_error: str | None = None


@dataclass
class ScanResult:
    response: dict[str, Any]
    events: list[PendingEvent] = field(default_factory=list)
    replayed: bool = False


def parse_scan_request(data: Any) -> ScanRequest:
    """Validate the envelope; the code itself is judged by the normaliser, not refused here."""
    if not isinstance(data, dict):
        raise DomainError("invalid_payload", "A scan is a JSON object.")
    for name, max_len in (("scan_id", MAX_ID), ("station", MAX_STATION), ("device_id", MAX_ID)):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise DomainError("missing_field", f"Missing field: {name}.", fields=[name])
        if len(value) > max_len or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise DomainError("invalid_field", f"Field '{name}' must be 1–{max_len} printable characters.",
                              field=name)
    if "code" not in data or data["code"] is None:
        raise DomainError("missing_field", "Missing field: code.", fields=["code"])
    return ScanRequest(data["scan_id"].strip(), data["station"].strip(), data["device_id"].strip(),
                       data["code"], scan_domain.parse_client_time(data.get("at")))


@dataclass
class _DeviceRead:
    id: int | None
    last_code: str | None
    last_code_at: dt.datetime | None
    scanner_profile: dict[str, Any] | None = None


_devices = Device.__table__
_scan_events = ScanEvent.__table__
_sessions = PackSession.__table__
# Statements of the hot path, built once: building SQL expressions costs more than running them.
_SCAN_REPLAY = select(_scan_events.c.response).where(_scan_events.c.scan_id == bindparam("scan_id"))
_DEVICE_READ = (select(_devices.c.id, _devices.c.last_code, _devices.c.last_code_at,
                       _devices.c.scanner_profile)
                .where(_devices.c.device_id == bindparam("device_id")).with_for_update())
_DEVICE_SEEN = _devices.update().where(_devices.c.id == bindparam("b_id")).values(
    station=bindparam("station"), last_seen_at=bindparam("last_seen_at"), state="online")
_DEVICE_READ_CODE = _devices.update().where(_devices.c.id == bindparam("b_id")).values(
    station=bindparam("station"), last_seen_at=bindparam("last_seen_at"), state="online",
    last_code=bindparam("last_code"), last_code_at=bindparam("last_code_at"))
_SESSION_COUNTS = _sessions.update().where(_sessions.c.id == bindparam("b_id")).values(
    counts=bindparam("counts"))
_SCAN_INSERT = _scan_events.insert()
# The device's previous read of a code, for a double read (on the (device_id, id) index).
_PREVIOUS_READ = (select(_scan_events.c.response)
                  .where(_scan_events.c.device_id == bindparam("device_id"),
                         _scan_events.c.code == bindparam("code"))
                  .order_by(_scan_events.c.id.desc()).limit(1))


def _device_before(s: Session, device_id: str) -> _DeviceRead:
    """The device's previous read (the debounce rule needs it), row locked on PostgreSQL."""
    row = s.connection().execute(_DEVICE_READ, {"device_id": device_id}).first()
    if row is None:
        return _DeviceRead(None, None, None)
    return _DeviceRead(row.id, row.last_code, row.last_code_at, row.scanner_profile)


def _device_after(s: Session, device: _DeviceRead, device_id: str, station: str,
                  now: dt.datetime, code: str | None, read_at: dt.datetime | None = None) -> None:
    read_at = read_at or now
    if device.id is None:
        s.connection().execute(_devices.insert(), {"device_id": device_id, "kind": "handheld", "station": station,
                                      "last_seen_at": now, "state": "online", "last_code": code,
                                      "last_code_at": read_at if code is not None else None})
    elif code is None:
        s.connection().execute(_DEVICE_SEEN, {"b_id": device.id, "station": station, "last_seen_at": now})
    else:
        s.connection().execute(_DEVICE_READ_CODE, {"b_id": device.id, "station": station, "last_seen_at": now,
                                      "last_code": code, "last_code_at": read_at})


def _order_named_by(s: Session, code: str, station_id: int, device_id: str,
                    warehouse_code: str | None = None) -> tuple[Order | None, domain.OrderRef | None]:
    """The order whose waybill (first) or order number this code is; locked for the change.
    At a station of a warehouse, another warehouse's orders are as if unknown."""
    query = select(Order).where(or_(Order.waybill_no == code, Order.order_no == code))
    if warehouse_code:
        query = query.where(Order.warehouse_id == select(Warehouse.id)
                            .where(Warehouse.code == warehouse_code).scalar_subquery())
    rows = s.scalars(query.options(joinedload(Order.wave)).limit(3).with_for_update(of=Order)).all()
    by_waybill = [o for o in rows if o.waybill_no == code]
    if by_waybill:
        order = by_waybill[0]
    elif len(rows) == 1:
        order = rows[0]
    else:
        return None, None       # unknown, or an order number shared by several channels
    holder = s.scalar(select(PackSession).where(PackSession.order_id == order.id,
                                                PackSession.state == "open"))
    held_by = None
    if holder is not None and (holder.station_id != station_id or holder.device_id != device_id):
        held_by = (holder.station.code, holder.device_id)
    ref = domain.OrderRef(order.order_no, order.status, order.wave.wave_no if order.wave else None,
                          order.snapshot_id is not None, held_by)
    return order, ref


def _other_orders(s: Session, sku: str, current: packing.OpenSession) -> tuple[tuple[str, str | None], ...]:
    """Unpacked orders of the same wave whose frozen kit holds this SKU."""
    wave_id = current.wave_id
    if wave_id is None:
        return ()
    rows = s.execute(
        select(Order.order_no, Wave.wave_no)
        .join(SnapshotSku, SnapshotSku.snapshot_id == Order.snapshot_id)
        .join(Wave, Wave.id == Order.wave_id)
        .where(SnapshotSku.sku == sku, Order.wave_id == wave_id, Order.id != current.order_id,
               Order.status.not_in(domain.PACKED_OR_LATER))
        .order_by(Order.id).limit(3)).all()
    return tuple((r[0], r[1]) for r in rows)


def record_scan(s: Session, req: ScanRequest, actor: Actor, debounce_ms: int,
                render: Render) -> ScanResult:
    # Plain Core on the session's connection: the ORM adds nothing to these statements.
    existing = s.connection().execute(_SCAN_REPLAY, {"scan_id": req.scan_id}).scalar()
    if existing is not None:
        return ScanResult(existing, replayed=True)
    with s.no_autoflush:
        return _record_new_scan(s, req, actor, debounce_ms, render)


@dataclass
class _Read:
    """What the scan was found to be: the decision and the things it named."""
    decision: Decision
    target: Order | None = None          # the order a waybill / order number named
    line: domain.KitLine | None = None   # the kit line an item code matched
    catalog_sku: str | None = None       # the SKU a code outside the kit means
    catalog_name: str | None = None


def _decide(s: Session, req: ScanRequest, norm: scan_domain.NormalisedCode, station: Any,
            device: _DeviceRead, open_session: packing.OpenSession | None, now: dt.datetime,
            debounce_ms: int, read_at: dt.datetime | None = None) -> _Read:
    """Load just the facts this scan needs, and let the domain decide."""
    if not norm.readable:
        return _Read(Decision(False, "unreadable", {"reason": norm.error}))
    if scan_domain.is_duplicate_read(device.last_code, device.last_code_at, norm.text,
                                     read_at or now, debounce_ms):
        # Say what the first read got: a double read of a refused item must stay a refusal.
        previous = s.connection().execute(_PREVIOUS_READ, {"device_id": req.device_id,
                                                           "code": norm.text}).scalar()
        repeats = scan_domain.repeats_of(previous)
        return _Read(Decision(False, "duplicate_read",
                              {"code": norm.text, **({"repeats": repeats} if repeats else {})}))
    if station.kind == "dock":
        target, ref = _order_named_by(s, norm.text, station.id, req.device_id, station.warehouse_code)
        can_load = target is not None and packing.machine_for(target).can_transition(
            target.status, domain.LOADED)
        return _Read(domain.decide_dock_scan(ref, norm.text, can_load), target)
    state = open_session.state if open_session is not None else None
    keys = norm.item_keys()
    # Most scans are items of the open kit: look there before asking the database.
    line = state.kit.line_for_keys(keys) if state is not None else None
    target = ref = None
    catalog_sku = catalog_name = None
    other: tuple[tuple[str, str | None], ...] = ()
    if line is None:
        target, ref = _order_named_by(s, norm.text, station.id, req.device_id, station.warehouse_code)
    if ref is None and line is None and norm.gs1 is not None and norm.gs1.logistic_unit:
        # An SSCC the OMS gave as an order's waybill opens that order like the waybill does.
        target, ref = _order_named_by(s, norm.gs1.sscc or "", station.id, req.device_id,
                                      station.warehouse_code)
    if ref is None and line is None:
        # The station's warehouse's catalogue (else the open order's): a refusal never names
        # another warehouse's item.
        entry = packing.catalog_entry(s, station.warehouse_id or (
            open_session.warehouse_id if open_session is not None else None), keys)
        if entry is not None:
            catalog_sku, catalog_name = entry.code, entry.name
        if catalog_sku is not None and open_session is not None:
            other = _other_orders(s, catalog_sku, open_session)
    facts = domain.ScanFacts(
        code=norm.text, state=state, order=ref, catalog_sku=catalog_sku, other_orders=other,
        waybill_candidate=(ref is None and catalog_sku is None
                           and scan_domain.looks_like_waybill(norm.text)),
        open_order_status=open_session.order_status if open_session is not None else None,
        keys=keys, lot=norm.gs1.lot if norm.gs1 else None,
        expiry=norm.gs1.expiry if norm.gs1 else None,
        today=scan_domain.local_day(now, live_domain.merged_settings(
            station.warehouse_settings)["utc_offset_minutes"]),
        gs1_error=norm.gs1_error.params() if norm.gs1_error is not None else None,
        sscc=norm.gs1.sscc if norm.gs1 is not None and norm.gs1.logistic_unit else None,
        units=norm.gs1.count if norm.gs1 is not None and norm.gs1.count and norm.gs1.gtin else 1)
    return _Read(domain.decide_scan(facts), target, line, catalog_sku, catalog_name)


@dataclass
class _Applied:
    session_id: int | None
    state: domain.PackState | None
    order_ref: tuple[int, str, str] | None     # (id, order_no, status) the scan belongs to


def _apply(s: Session, req: ScanRequest, read: _Read, code: str, station: Any,
           open_session: packing.OpenSession | None, actor: Actor, at: dt.datetime,
           events: list[PendingEvent]) -> _Applied:
    """Change what the decision says; the common item scan is one UPDATE, no ORM."""
    decision = read.decision
    applied = _Applied(open_session.id if open_session else None,
                       open_session.state if open_session else None,
                       (open_session.order_id, open_session.order_no, open_session.order_status)
                       if open_session else None)
    if decision.action == "load":
        assert read.target is not None
        events.append(packing.set_status(s, read.target, domain.LOADED, actor,
                                         f"dock scan at {station.code}", at))
    elif decision.action == "open":
        assert read.target is not None
        session_row = _open(s, read.target, station, req.device_id, actor, at, events)
        applied.session_id, applied.state = session_row.id, packing.pack_state(session_row)
    elif decision.action in ("credit", "bind_waybill"):
        state = applied.state
        assert open_session is not None and state is not None
        domain.apply_decision(state, decision, code)
        if decision.action == "credit" and not decision.completes:
            s.connection().execute(_SESSION_COUNTS, {
                "b_id": open_session.id,
                "counts": {str(k): v for k, v in sorted(state.counts.items())}})
        else:
            session_row = s.get(PackSession, open_session.id)
            assert session_row is not None
            packing.save_state(session_row, state)
            if decision.action == "bind_waybill":
                packing.bind_waybill(s, session_row.order, code)
            if decision.completes:
                assert state.is_complete()
                events += packing.complete_and_take_stock(s, session_row, None, actor, at,
                                                          f"kit complete, scan {req.scan_id}")
                events += print_operations.after_pack_complete(s, session_row.order, station.code, actor)
            applied.order_ref = (session_row.order_id, session_row.order.order_no,
                                 session_row.order.status)
    # The scan belongs to the order it names, else to the order open at the device.
    if read.target is not None:
        applied.order_ref = (read.target.id, read.target.order_no, read.target.status)
    return applied


def _record_new_scan(s: Session, req: ScanRequest, actor: Actor, debounce_ms: int,
                     render: Render) -> ScanResult:
    now = utcnow()
    at = scan_domain.effective_time(req.client_at, now)
    station = packing.station_ref(s, req.station)
    device = _device_before(s, req.device_id)
    # What stands for the GS1 separator is the scanner's profile, else the warehouse's setting.
    substitutes = scan_domain.gs_substitutes_for(device.scanner_profile, station.warehouse_settings)
    norm = (scan_domain.normalise(req.code, substitutes, today=at.date()) if req.reader_error is None
            else scan_domain.NormalisedCode("", error=req.reader_error))
    open_session = packing.open_session_of(s, station.id, req.device_id, lock=True)
    actor = Actor(actor.name, actor.role, req.device_id, req.station)
    events: list[PendingEvent] = []

    # The double-read guard runs on the scan's own time (the device's clock, when sane): a
    # double read delayed by an outage or a replay is still seen as one read.
    read = _decide(s, req, norm, station, device, open_session, now, debounce_ms, at)
    _device_after(s, device, req.device_id, req.station, now, norm.text if norm.readable else None,
                  read_at=at)
    applied = _apply(s, req, read, norm.text, station, open_session, actor, at, events)

    decision, state, order_ref = read.decision, applied.state, applied.order_ref
    line = read.line
    if line is None and decision.line_no is not None and state is not None:
        line = state.kit.line(decision.line_no)
    sku = line.sku if line is not None else read.catalog_sku
    params = {**decision.params, "completes": decision.completes}
    if read.catalog_name is not None:
        params.setdefault("name", read.catalog_name)
    message = render(decision.code, params)
    response: dict[str, Any] = {
        "ok": decision.ok, "code": decision.code, "message": message, "scan_id": req.scan_id,
        "order_no": order_ref[1] if order_ref is not None else None,
        "status": order_ref[2] if order_ref is not None else None,
        "progress": state.progress() if state is not None else None,
        "line_no": decision.line_no, "sku": sku, "params": params,
        "gs1": norm.gs1.as_dict() if norm.gs1 is not None else None,
    }
    if isinstance(params.get("repeats"), dict):
        response["repeats"] = {"code": params["repeats"]["code"], "ok": params["repeats"]["ok"]}
    s.flush()   # the ORM changes of the rarer paths, before the scan row that refers to them
    s.connection().execute(_SCAN_INSERT, dict(
        scan_id=req.scan_id, station=req.station, device_id=req.device_id, by=actor.name,
        role=actor.role, raw=_as_received(req.code, norm.readable),
        code=norm.text, symbology_id=norm.symbology_id, at=at, received_at=now, ok=decision.ok,
        verdict=decision.code, message=message,
        order_id=order_ref[0] if order_ref is not None else None,
        session_id=applied.session_id, line_no=decision.line_no,
        sku=sku, lot=norm.gs1.lot if norm.gs1 else None,
        serial=norm.gs1.serial if norm.gs1 else None, response=response))
    if not decision.ok and decision.code != "duplicate_read":
        # The station's warehouse hears it too (boards follow warehouse rooms).
        rooms = [f"station:{req.station}"] + (
            [f"warehouse:{station.warehouse_code}"] if station.warehouse_code else [])
        if order_ref is not None:
            order = read.target or s.get(Order, order_ref[0])
            assert order is not None
            rooms = packing.rooms_for(order, req.station)
        events.append(record_event(s, "scan_rejected", rooms, {
            "scan_id": req.scan_id, "code": decision.code, "message": message,
            "order_no": response["order_no"], "station": req.station, "device_id": req.device_id,
            "by": actor.name, "at": at.isoformat(), "raw": scan_domain.storable(req.code)}))
    s.flush()
    return ScanResult(response, events)


def _as_received(raw: Any, readable: bool) -> str:
    """The code as the scanner sent it; escaped where a database could not store it (NUL)."""
    if readable and isinstance(raw, str) and "\x00" not in raw:
        return raw
    return scan_domain.storable(raw)


def _open(s: Session, order: Order, station: Any, device_id: str, actor: Actor,
          at: dt.datetime, events: list[PendingEvent]) -> PackSession:
    """Open (or resume) the order at this station and device; the previous one stays open."""
    row = s.scalar(select(PackSession).where(PackSession.order_id == order.id,
                                             PackSession.state == "open"))
    if row is None:
        assert order.snapshot_id is not None
        row = PackSession(order_id=order.id, order=order, snapshot_id=order.snapshot_id,
                          station_id=station.id, device_id=device_id, opened_by=actor.name,
                          opened_at=utcnow())
        s.add(row)
        s.flush()
    cursor = s.get(PackCursor, (station.id, device_id))
    if cursor is None:
        cursor = PackCursor(station_id=station.id, device_id=device_id)
        s.add(cursor)
    cursor.session_id, cursor.session, cursor.updated_at = row.id, row, utcnow()
    if order.status != domain.PACKING:
        events.append(packing.set_status(s, order, domain.PACKING, actor,
                                         f"opened at {station.code}", at))
    s.flush()
    return row
