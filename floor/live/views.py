"""Entry points of the live floor: order events, alerts, the board and the timeline page."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy import select

from floor.api import actor_of, run
from floor.auth.operations import audit
from floor.auth.security import actor, requires, who_of
from floor.auth.scope import (order_warehouse_id, scope_filtered, scoped, warehouse_arg,
                              warehouse_scope)
from floor.db import db_session, get_db, utcnow
from floor.errors import ApiError, json_body
from floor.live import domain as live
from floor.live import operations
from floor.packing import operations as packing
from floor.packing.domain import GIFTBOX_REQUIRES, DomainError
from floor.packing.models import Warehouse
from floor.publish import publish
from floor.scan.domain import parse_gs_substitute

bp = Blueprint("live", __name__)


@bp.before_app_request
def _start_background_work() -> None:
    current_app.extensions["floor.alerts"].ensure_started()


def _warehouse_arg() -> str:
    code = warehouse_arg(request.args.get("warehouse"))
    if code:
        if len(code) > 32:
            raise ApiError("invalid_field", "warehouse is at most 32 characters.", field="warehouse")
        return code
    first = db_session().scalar(select(Warehouse.code).order_by(Warehouse.id).limit(1))
    if first is None:
        raise ApiError("unknown_warehouse", "No warehouse yet.", 404)
    return first


@bp.post("/api/v1/orders/<order_no>/events")
@requires("integration", "supervisor")
@scoped(order_no="order")
def order_event(order_no: str):  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()
    channel = request.args.get("channel")

    device_id = packing.clean_text(data, "device_id", 64, required=False)
    station = packing.clean_text(data, "station", 32, required=False)

    def op(s):  # type: ignore[no-untyped-def]
        order, events = operations.apply_order_event(
            s, order_no, channel, data, actor_of(principal, device_id, station),
            order_warehouse_id(s, data))
        return {"order_no": order.order_no, "status": order.status,
                "seq": events[0].payload["seq"]}, events

    body, events = run(op)
    publish(events)
    return jsonify(body)


@bp.get("/api/v1/alerts")
@requires("supervisor", "integration")
@scope_filtered("?warehouse= forced to the caller's")
def alerts():  # type: ignore[no-untyped-def]
    include_cleared = request.args.get("all") in ("1", "true")
    return jsonify({"alerts": operations.list_alerts(db_session(), warehouse_arg(request.args.get("warehouse")),
                                                     include_cleared)})


@bp.post("/api/v1/alerts/<int:alert_id>/ack")
@requires("supervisor")
@scoped(alert_id="alert")
def ack_alert(alert_id: int):  # type: ignore[no-untyped-def]
    data = json_body() if request.data else {}
    principal = actor()
    note = packing.clean_text(data, "note", 500, required=False) if data.get("note") else ""
    body, events = run(lambda s: operations.ack_alert(s, alert_id, actor_of(principal), note or ""))
    publish(events)
    return jsonify(body)


@bp.get("/api/v1/board")
@requires("supervisor")
@scope_filtered("?warehouse= forced to the caller's")
def board_data():  # type: ignore[no-untyped-def]
    warehouse = _warehouse_arg()
    db = get_db()
    # One snapshot for last_seq and every aggregate: REPEATABLE READ on PostgreSQL (a SQLite
    # read transaction is a snapshot already).
    options = {} if db.url.startswith("sqlite") else {"isolation_level": "REPEATABLE READ"}
    with db.sessionmaker() as s:
        s.connection(execution_options=options)
        try:
            return jsonify(operations.board_snapshot(s, warehouse, utcnow()))
        except DomainError as exc:
            raise ApiError(exc.code, exc.message, exc.status) from None


@bp.put("/api/v1/warehouses/<code>/settings")
@requires("supervisor", "integration")
@scoped(code="warehouse")
def warehouse_settings(code: str):  # type: ignore[no-untyped-def]
    data = json_body()
    settings = _validated_settings(data)
    who = who_of(actor())

    def op(s):  # type: ignore[no-untyped-def]
        warehouse = packing.warehouse_by_code(s, packing.clean_text({"code": code}, "code", 32) or code)
        before = dict(warehouse.settings or {})
        warehouse.settings = {**before, **settings}
        changed = {k: {"from": before.get(k), "to": v} for k, v in settings.items() if before.get(k) != v}
        if changed:
            # Settings change what the floor accepts (the gift-box rule, the flow): who and when.
            audit(s, "settings_changed", replace(who, warehouse_id=warehouse.id),
                  f"warehouse:{warehouse.code}", detail={"changed": changed})
        return dict(warehouse.settings)

    return jsonify({"warehouse": code, "settings": run(op)})


def _validated_settings(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    slas = data.get("slas")
    if slas is not None:
        if not isinstance(slas, dict) or not all(
                k in live.DEFAULT_SLAS and isinstance(v, list) and len(v) == 2
                and all(isinstance(x, int) and 0 < x < 100_000 for x in v) and v[0] < v[1]
                for k, v in slas.items()):
            raise ApiError("invalid_field", "slas maps a status to [yellow_minutes, red_minutes].", field="slas")
        out["slas"] = slas
    cutoff = data.get("cutoff")
    if cutoff is not None:
        # ASCII digits: str.isdigit() also takes '²', which int() refuses.
        if not (isinstance(cutoff, str) and len(cutoff) == 5 and cutoff[2] == ":" and cutoff.isascii()
                and cutoff[:2].isdigit() and cutoff[3:].isdigit()
                and int(cutoff[:2]) < 24 and int(cutoff[3:]) < 60):
            raise ApiError("invalid_field", "cutoff is HH:MM.", field="cutoff")
        out["cutoff"] = cutoff
    for name in ("tracking_alert_minutes", "device_silent_minutes", "error_rate_min_scans",
                 "error_rate_window_minutes", "utc_offset_minutes", "stock_low_threshold"):
        value = data.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or not -1440 <= value <= 100_000:
                raise ApiError("invalid_field", f"{name} is a whole number.", field=name)
            if name == "utc_offset_minutes" and not live.valid_utc_offset(value):
                # Only offsets places have: local days and cut-offs are computed with it.
                raise ApiError("invalid_field", "utc_offset_minutes is between %d and %d."
                               % live.UTC_OFFSET_RANGE, field=name)
            out[name] = value
    rate = data.get("error_rate_threshold")
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ApiError("invalid_field", "error_rate_threshold is between 0 and 1.",
                           field="error_rate_threshold")
        out["error_rate_threshold"] = rate
    giftbox = data.get("giftbox_requires")
    if giftbox is not None:
        if not isinstance(giftbox, str) or giftbox not in GIFTBOX_REQUIRES:
            raise ApiError("invalid_field", "giftbox_requires is one of "
                           f"{', '.join(GIFTBOX_REQUIRES)}.", field="giftbox_requires")
        out["giftbox_requires"] = giftbox
    if "gs_substitute" in data:
        # What the warehouse's keyboard-wedge scanners type for the GS1 separator (a device's
        # scanner profile comes first); "" for none.
        try:
            out["gs_substitute"] = parse_gs_substitute(data["gs_substitute"])
        except ValueError as exc:
            raise ApiError("invalid_field", str(exc), field="gs_substitute") from None
    for name in ("flow", "optional_steps"):
        value = data.get(name)
        if value is not None:
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise ApiError("invalid_field", f"{name} is a list of statuses.", field=name)
            out[name] = value
    if not out:
        raise ApiError("missing_field", "No known setting given.")
    return out


@bp.get("/board")
@requires("supervisor")
@scope_filtered("?warehouse= forced to the caller's")
def board_page():  # type: ignore[no-untyped-def]
    # Site-wide pages (webhooks) are linked only for a supervisor of every warehouse.
    return render_template("board.html", warehouse=_warehouse_arg(),
                           site_wide=warehouse_scope() is None)


@bp.get("/orders/<order_no>")
@requires("supervisor", "qc")
@scoped(order_no="order")
def timeline_page(order_no: str):  # type: ignore[no-untyped-def]
    s = db_session()
    try:
        order = packing.find_order(s, order_no, request.args.get("channel"),
                                   warehouse_id=order_warehouse_id(s))
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, exc.status) from None
    settings = live.merged_settings(order.warehouse.settings)
    return render_template("timeline.html", order=packing.order_detail(s, order),
                           utc_offset_minutes=settings["utc_offset_minutes"])
