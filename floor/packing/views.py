"""REST entry points of the packing domain: orders, waves, pack sessions, overrides."""
from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from floor.api import actor_of, run
from floor.auth.operations import audit
from floor.auth.security import actor, requires, who_of
from floor.auth.scope import (check_object, check_station_code, check_warehouse_code,
                               order_warehouse_id, scope_code, scope_filtered, scoped, uses,
                               warehouse_scope)
from floor.db import db_session
from floor.errors import ApiError, json_body
from floor.packing import operations
from floor.packing.domain import DomainError
from floor.packing.models import Order, PackSession, Wave
from floor.publish import publish
from floor.stock import operations as stock

bp = Blueprint("packing", __name__, url_prefix="/api/v1")
READERS = ("packer", "qc", "supervisor", "integration")


def _query_text(name: str, max_len: int = 64) -> str | None:
    value = request.args.get(name)
    if value is None:
        return None
    if not value or len(value) > max_len or any(ord(c) < 32 for c in value):
        raise ApiError("invalid_field", f"Query parameter '{name}' is not valid.", field=name)
    return value


@bp.post("/orders")
@requires("integration")
@scope_filtered("the body's warehouse must be the caller's")
def upsert_order():  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        if isinstance(data.get("warehouse"), str):
            check_warehouse_code(s, data["warehouse"])
        order, created, events = operations.upsert_order(s, data, actor_of(principal))
        stock_check = None
        if any(event.type == "kit_changed" for event in events):
            # A kit changed after its wave's release: the release's stock check again.
            stock_check, alert_events = stock.recheck_kit(s, order)
            events += alert_events
        snap = order.snapshot
        body = {"order_no": order.order_no, "channel": order.channel, "status": order.status,
                "waybill_no": order.waybill_no, "created": created,
                "snapshot": None if snap is None else {"version": snap.version,
                                                       "hash": snap.content_hash},
                "stock_check": stock_check}
        return body, events

    body, events = run(op)
    publish(events)
    return jsonify(body), 201 if body["created"] else 200


@bp.get("/orders/<order_no>")
@requires(*READERS)
@scoped(order_no="order")
def get_order(order_no: str):  # type: ignore[no-untyped-def]
    channel = _query_text("channel", 32)
    s = db_session()
    try:
        order = operations.find_order(s, order_no, channel, warehouse_id=order_warehouse_id(s))
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, exc.status) from None
    return jsonify(operations.order_detail(s, order))


@bp.post("/orders/<order_no>/waybill")
@requires("integration", "supervisor")
@scoped(order_no="order")
def bind_waybill(order_no: str):  # type: ignore[no-untyped-def]
    """Tracking numbers in: bind or replace an order's waybill, before or after packing."""
    data = json_body()
    principal = actor()
    channel = _query_text("channel", 32)

    def op(s):  # type: ignore[no-untyped-def]
        waybill_no = operations.clean_waybill(data)
        reason = operations.clean_text(data, "reason", 500, required=False) or ""
        device_id = operations.clean_text(data, "device_id", 64, required=False)
        order_channel = channel or operations.clean_text(data, "channel", 32, required=False)
        order = operations.find_order(s, order_no, order_channel, lock=True,
                                      warehouse_id=order_warehouse_id(s, data))
        old = order.waybill_no
        change, events = operations.change_waybill(s, order, waybill_no,
                                                   actor_of(principal, device_id), reason,
                                                   principal.via)
        return {"order_no": order.order_no, "channel": order.channel, "waybill_no": order.waybill_no,
                "old_waybill_no": old, "changed": change is not None, "status": order.status,
                "completed": any(e.type == "status" and e.payload.get("status") == "packed"
                                 for e in events),
                "label_reprint": change is not None and order.status in operations.LABEL_PRINTED,
                "seq": change.seq if change is not None else None,
                "alerts_cleared": [e.payload["id"] for e in events if e.type == "alert_cleared"]}, events

    body, events = run(op)
    publish(events)
    return jsonify(body)


@bp.post("/waves")
@requires("integration", "supervisor")
@scope_filtered("every order named must be in the caller's warehouse")
@uses(wave_no="wave")
def assign_wave():  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()
    who = who_of(principal)

    def op(s):  # type: ignore[no-untyped-def]
        if isinstance(data.get("wave_no"), str):
            check_object(s, "wave", data["wave_no"])
        for order_no in data.get("order_nos") or [] if isinstance(data.get("order_nos"), list) else []:
            if isinstance(order_no, str):
                check_object(s, "order", order_no)
        if isinstance(data.get("station"), str):
            check_station_code(s, data["station"])
        if isinstance(data.get("warehouse"), str):
            check_warehouse_code(s, data["warehouse"])
        done = operations.assign_wave(s, data, actor_of(principal), warehouse_scope())
        wave = done.wave
        if (done.stock or {}).get("decision"):
            # A release despite a shortfall, a hold or a split: the override of the stock check.
            audit(s, "stock_decision", replace(who, warehouse_id=wave.warehouse_id or who.warehouse_id),
                  f"wave:{wave.wave_no}", detail={"decision": done.stock["decision"],
                                                  "reason": done.stock.get("reason")})
        return {"wave_no": wave.wave_no, "station": wave.station.code if wave.station else None,
                "orders": done.orders, "stock": done.stock, "left_out": done.left_out,
                "held": done.held}, done.events

    body, events = run(op)
    publish(events)
    return jsonify(body), 200


@bp.get("/waves/<wave_no>")
@requires(*READERS)
@scoped(wave_no="wave")
def get_wave(wave_no: str):  # type: ignore[no-untyped-def]
    s = db_session()
    wave = s.scalar(select(Wave).where(Wave.wave_no == wave_no))
    if wave is None:
        raise ApiError("unknown_wave", f"No wave {wave_no}.", 404)
    orders = s.scalars(select(Order).where(Order.wave_id == wave.id).order_by(Order.id)).all()
    return jsonify({"wave_no": wave.wave_no, "station": wave.station.code if wave.station else None,
                    "created_at": wave.created_at.isoformat(),
                    "orders": [{"order_no": o.order_no, "channel": o.channel, "status": o.status,
                                "waybill_no": o.waybill_no} for o in orders],
                    "stock_decisions": stock.decisions_of_wave(s, wave.wave_no)})


@bp.get("/stations/<station>/session")
@requires("packer", "device", "supervisor")
@scoped(station="station")
def station_session(station: str):  # type: ignore[no-untyped-def]
    device_id = _query_text("device_id")
    if device_id is None:
        raise ApiError("missing_field", "Query parameter device_id is required.", fields=["device_id"])
    return jsonify(operations.session_view(db_session(), station, device_id))


@bp.put("/stations/<station>")
@requires("supervisor", "integration")
@scoped(station="station")
def configure_station(station: str):  # type: ignore[no-untyped-def]
    data = json_body()

    def op(s):  # type: ignore[no-untyped-def]
        body = data
        if isinstance(data.get("warehouse"), str):
            check_warehouse_code(s, data["warehouse"])
        if warehouse_scope() is not None:
            # Not left unbound (any warehouse's device could then take it): the caller's.
            body = {**data, "warehouse": scope_code(s, warehouse_scope())}
        row = operations.configure_station(s, station, body)
        return {"station": row.code, "kind": row.kind,
                "warehouse": row.warehouse.code if row.warehouse else None}

    return jsonify(run(op))


@bp.post("/scans/<scan_id>/override")
@requires("supervisor")
@scoped(scan_id="scan")
def override_scan(scan_id: str):  # type: ignore[no-untyped-def]
    from floor.scan.models import ScanEvent

    data = json_body(required=("reason_code",))
    principal = actor()
    who = who_of(principal)

    def op(s):  # type: ignore[no-untyped-def]
        scan = s.scalar(select(ScanEvent).where(ScanEvent.scan_id == scan_id))
        if scan is None:
            raise DomainError("unknown_scan", f"No scan {scan_id}.", 404)
        body, events = operations.override_refused_scan(s, scan, data, actor_of(principal))
        order = s.get(Order, scan.order_id) if scan.order_id else None
        # Audited in the override's transaction, under the order's warehouse.
        audit(s, "override", replace(who, warehouse_id=order.warehouse_id if order else who.warehouse_id),
              f"scan:{scan_id}", detail={"order_no": order.order_no if order else None,
                                         "refused": scan.verdict, "reason_code": data.get("reason_code")})
        return body, events

    body, events = run(op)
    publish(events)
    return jsonify(body)


@bp.post("/pack-sessions/<int:session_id>/release")
@requires("supervisor")
@scoped(session_id="pack_session")
def release_session(session_id: int):  # type: ignore[no-untyped-def]
    data = json_body(required=("reason",))
    principal = actor()
    reason = operations.clean_text(data, "reason", 500) if isinstance(data.get("reason"), str) else None
    if reason is None:
        raise ApiError("invalid_field", "reason must be text.", field="reason")
    who = who_of(principal)

    def op(s):  # type: ignore[no-untyped-def]
        warehouse_id = s.scalar(select(Order.warehouse_id).join(PackSession, PackSession.order_id == Order.id)
                                .where(PackSession.id == session_id))
        events = operations.release_session(s, session_id, actor_of(principal), reason)
        audit(s, "session_released", replace(who, warehouse_id=warehouse_id or who.warehouse_id),
              f"pack_session:{session_id}", detail={"reason": reason})
        return events

    events = run(op)
    publish(events)
    return jsonify({"ok": True, "session_id": session_id})


@bp.get("/pack-sessions")
@requires("supervisor")
@scope_filtered("sessions of orders of the caller's warehouse")
def open_sessions():  # type: ignore[no-untyped-def]
    query = select(PackSession).where(PackSession.state == "open").order_by(PackSession.id)
    if (scope := warehouse_scope()) is not None:
        query = query.join(Order, Order.id == PackSession.order_id).where(Order.warehouse_id == scope)
    rows = db_session().scalars(query).all()
    return jsonify({"sessions": [{"id": r.id, "order_no": r.order.order_no,
                                  "station": r.station.code, "device_id": r.device_id,
                                  "opened_at": r.opened_at.isoformat(),
                                  "opened_by": r.opened_by} for r in rows]})
