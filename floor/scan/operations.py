"""The scan use case: one scan, one transaction, idempotent on scan_id.

Load the facts (station, device, active session, what the code names), let the domain decide,
apply the decision, record the ScanEvent and the events to push. Never commits, never emits.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from floor.db import utcnow
from floor.devices.models import Device
from floor.eventlog import PendingEvent, record_event
from floor.packing import domain
from floor.packing import operations as packing
from floor.packing.domain import Actor, Decision, DomainError
from floor.packing.models import (Order, PackCursor, PackSession, SkuBarcode, SnapshotSku, Wave)
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


def _device(s: Session, device_id: str, station: str, now: dt.datetime) -> Device:
    row = s.scalar(select(Device).where(Device.device_id == device_id).with_for_update())
    if row is None:
        row = Device(device_id=device_id, station=station, last_seen_at=now)
        s.add(row)
        s.flush()
    row.station, row.last_seen_at, row.state = station, now, "online"
    return row


def _order_named_by(s: Session, code: str, station_session: PackSession | None,
                    station_id: int, device_id: str) -> tuple[Order | None, domain.OrderRef | None]:
    order = s.scalar(select(Order).where(Order.waybill_no == code).with_for_update())
    if order is None:
        rows = s.scalars(select(Order).where(Order.order_no == code).limit(2)).all()
        if len(rows) != 1:
            return None, None
        order = s.scalar(select(Order).where(Order.id == rows[0].id).with_for_update())
        assert order is not None
    holder = s.scalar(select(PackSession).where(PackSession.order_id == order.id,
                                                PackSession.state == "open"))
    held_by = None
    if holder is not None and (holder.station_id != station_id or holder.device_id != device_id):
        held_by = (holder.station.code, holder.device_id)
    ref = domain.OrderRef(order.order_no, order.status, order.wave.wave_no if order.wave else None,
                          order.snapshot_id is not None, held_by)
    return order, ref


def _other_orders(s: Session, sku: str, current: PackSession) -> tuple[tuple[str, str | None], ...]:
    """Unpacked orders of the same wave whose frozen kit holds this SKU."""
    wave_id = current.order.wave_id
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
    existing = s.scalar(select(ScanEvent).where(ScanEvent.scan_id == req.scan_id))
    if existing is not None:
        return ScanResult(existing.response, replayed=True)

    now = utcnow()
    at = scan_domain.effective_time(req.client_at, now)
    norm = scan_domain.normalise(req.code)
    station = packing.station_by_code(s, req.station)
    device = _device(s, req.device_id, req.station, now)
    cursor, session_row = packing.active_session(s, station, req.device_id, lock=True)
    state = packing.pack_state(session_row) if session_row is not None else None
    actor = Actor(actor.name, actor.role, req.device_id, req.station)
    events: list[PendingEvent] = []
    target: Order | None = None
    line: domain.KitLine | None = None
    catalog_sku: str | None = None
    catalog_name: str | None = None

    if not norm.readable:
        decision = Decision(False, "unreadable", {"reason": norm.error})
    elif scan_domain.is_duplicate_read(device.last_code, device.last_code_at, norm.text, now,
                                       debounce_ms):
        decision = Decision(False, "duplicate_read", {"code": norm.text})
    elif station.kind == "dock":
        target, ref = _order_named_by(s, norm.text, None, station.id, req.device_id)
        can_load = target is not None and packing.machine_for(target).can_transition(
            target.status, domain.LOADED)
        decision = domain.decide_dock_scan(ref, norm.text, can_load)
    else:
        target, ref = _order_named_by(s, norm.text, session_row, station.id, req.device_id)
        other: tuple[tuple[str, str | None], ...] = ()
        if ref is None and state is not None:
            line = state.kit.line_for_code(norm.text)
        if ref is None and line is None:
            mapping = s.get(SkuBarcode, norm.text)
            if mapping is not None:
                catalog_sku, catalog_name = mapping.sku.code, mapping.sku.name
            if catalog_sku is not None and session_row is not None:
                other = _other_orders(s, catalog_sku, session_row)
        facts = domain.ScanFacts(
            code=norm.text, state=state, order=ref, catalog_sku=catalog_sku, other_orders=other,
            waybill_candidate=(ref is None and catalog_sku is None
                               and scan_domain.looks_like_waybill(norm.text)),
            open_order_status=session_row.order.status if session_row is not None else None)
        decision = domain.decide_scan(facts)
    if norm.readable:
        device.last_code, device.last_code_at = norm.text, now

    if decision.action == "load":
        assert target is not None
        events.append(packing.set_status(s, target, domain.LOADED, actor,
                                         f"dock scan at {station.code}", at))
    elif decision.action == "open":
        assert target is not None
        cursor, session_row = _open(s, target, station, req.device_id, cursor, actor, at, events)
        state = packing.pack_state(session_row)
    elif decision.action in ("credit", "bind_waybill"):
        assert session_row is not None and state is not None
        domain.apply_decision(state, decision, norm.text)
        packing.save_state(session_row, state)
        if decision.action == "bind_waybill":
            packing._bind_waybill(s, session_row.order, norm.text)
        if decision.completes:
            assert state.is_complete()
            events.append(packing.complete_session(s, session_row, cursor, actor, at,
                                                   f"kit complete, scan {req.scan_id}"))

    # The scan belongs to the order it names, else to the order open at the device.
    order = target if target is not None else (session_row.order if session_row is not None else None)
    if line is None and decision.line_no is not None and state is not None:
        line = state.kit.line(decision.line_no)
    sku = line.sku if line is not None else catalog_sku
    params = {**decision.params, "completes": decision.completes}
    if catalog_name is not None:
        params.setdefault("name", catalog_name)
    message = render(decision.code, params)
    response: dict[str, Any] = {
        "ok": decision.ok, "code": decision.code, "message": message, "scan_id": req.scan_id,
        "order_no": order.order_no if order is not None else None,
        "status": order.status if order is not None else None,
        "progress": state.progress() if state is not None else None,
        "line_no": decision.line_no, "sku": sku, "params": params,
    }
    s.add(ScanEvent(
        scan_id=req.scan_id, station=req.station, device_id=req.device_id, by=actor.name,
        role=actor.role, raw=_as_received(req.code, norm.readable),
        code=norm.text, symbology_id=norm.symbology_id, at=at, received_at=now, ok=decision.ok,
        verdict=decision.code, message=message, order_id=order.id if order is not None else None,
        session_id=session_row.id if session_row is not None else None, line_no=decision.line_no,
        sku=sku, lot=None, serial=None, response=response))
    if not decision.ok and decision.code != "duplicate_read":
        rooms = [f"station:{req.station}"]
        if order is not None:
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


def _open(s: Session, order: Order, station: Any, device_id: str, cursor: PackCursor | None,
          actor: Actor, at: dt.datetime, events: list[PendingEvent]) -> tuple[PackCursor, PackSession]:
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
    if cursor is None:
        cursor = PackCursor(station_id=station.id, device_id=device_id)
        s.add(cursor)
    cursor.session_id, cursor.session, cursor.updated_at = row.id, row, utcnow()
    if order.status != domain.PACKING:
        events.append(packing.set_status(s, order, domain.PACKING, actor,
                                         f"opened at {station.code}", at))
    s.flush()
    return cursor, row
