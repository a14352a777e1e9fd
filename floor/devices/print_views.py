"""REST entry points for label printers, print jobs and barcode/label images."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from floor import labels
from floor.api import actor_of, run
from floor.auth.security import actor, requires
from floor.auth.scope import (allows, bind_station_to_scope, check_station_code,
                               order_warehouse_id, scope_filtered, scope_free, scoped, upserts,
                               uses, warehouse_scope, warehouses_of)
from floor.db import db_session
from floor.devices import print_operations as operations
from floor.errors import ApiError, json_body
from floor.packing import operations as packing
from floor.packing.domain import DomainError
from floor.publish import publish

bp = Blueprint("printing", __name__, url_prefix="/api/v1")
ALL_ROLES = ("packer", "qc", "supervisor", "integration", "device")


def _query_text(name: str, max_len: int, required: bool = True) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise ApiError("missing_field", f"Query parameter '{name}' is required.", fields=[name])
        return None
    if len(value) > max_len or any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF
                                   for c in value):
        raise ApiError("invalid_field", f"Query parameter '{name}' must be 1–{max_len} printable "
                                        "characters.", field=name)
    return value


def _read(fn: Any) -> Any:
    try:
        return fn(db_session())
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, exc.status, **exc.extra) from None


@bp.post("/printers")
@requires("supervisor", "integration")
@scope_filtered("the station and the printer's current station must be the caller's warehouse's")
@upserts(printer_id="printer")
def register_printer():  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()
    roots = current_app.config["PRINT_FILE_ROOTS"]
    blocked = current_app.config["PRINTER_BLOCKED_NETWORKS"]

    def op(s):  # type: ignore[no-untyped-def]
        check_station_code(s, data.get("station"))
        printer, created, events = operations.register_printer(s, data, actor_of(principal), roots,
                                                               blocked)
        bind_station_to_scope(s, printer.station)
        return operations.printer_view(printer), created, events

    body, created, events = run(op)
    publish(events)
    return jsonify(body), 201 if created else 200


@bp.get("/printers")
@requires("supervisor", "integration")
@scope_filtered("printers of stations of the caller's warehouse")
def list_printers():  # type: ignore[no-untyped-def]
    s = db_session()
    scope = warehouse_scope()
    printers = [p for p in operations.list_printers(s)
                if allows(scope, warehouses_of(s, "printer", p["printer_id"]))]
    return jsonify({"printers": printers})


@bp.post("/printers/<printer_id>/labels")
@requires("supervisor")
@scoped(printer_id="printer")
@upserts(job_id="print_job")
def print_place_label(printer_id: str):  # type: ignore[no-untyped-def]
    data = json_body(required=("kind", "code"))
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        printer = operations.find_printer(s, printer_id)
        job, events = operations.print_place_label(s, printer, data, actor_of(principal))
        return operations.job_view(job), events

    body, events = run(op)
    publish(events)
    return jsonify(body), 202


@bp.post("/orders/<order_no>/label")
@requires("packer", "supervisor", "device")
@scoped(order_no="order")
@uses(printer_id="printer")
@upserts(job_id="print_job")
def print_waybill(order_no: str):  # type: ignore[no-untyped-def]
    data = json_body(required=("station",))
    principal = actor()
    channel = _query_text("channel", 32, required=False)

    def op(s):  # type: ignore[no-untyped-def]
        # The label goes to the station's printer: another warehouse's station is refused.
        check_station_code(s, data.get("station"))
        station = operations.clean_text(data, "station", 32)
        job_id = operations.clean_identifier(data, "job_id", required=False)
        printer_id = operations.clean_identifier(data, "printer_id", required=False)
        device_id = operations.clean_text(data, "device_id", 64, required=False)
        assert station is not None
        order = packing.find_order(s, order_no, channel, lock=True,
                                   warehouse_id=order_warehouse_id(s, data))
        job, events = operations.print_waybill(s, order, station, actor_of(principal, device_id, station),
                                               job_id, printer_id)
        return {**operations.job_view(job), "order_status": order.status}, events

    body, events = run(op)
    publish(events)
    return jsonify(body), 202


@bp.get("/print-jobs/<job_id>")
@requires("packer", "supervisor", "device", "integration")
@scoped(job_id="print_job")
def get_print_job(job_id: str):  # type: ignore[no-untyped-def]
    return jsonify(_read(lambda s: operations.job_view(operations.find_job(s, job_id))))


@bp.put("/warehouses/<code>/printing")
@requires("supervisor", "integration")
@scoped(code="warehouse")
def warehouse_printing(code: str):  # type: ignore[no-untyped-def]
    data = json_body(required=(operations.AUTO_PRINT,))
    return jsonify(run(lambda s: operations.set_auto_print(s, code, data)))


@bp.get("/labels/<kind>.zpl")
@requires("supervisor")
@scope_free("a blank place label of a kind, no warehouse data")
def place_label_zpl(kind: str):  # type: ignore[no-untyped-def]
    if kind not in operations.PLACE_KINDS:
        raise ApiError("unknown_label", f"Labels here are {', '.join(operations.PLACE_KINDS)}.", 404)
    code = _query_text("code", 32 if kind == "station" else 64)
    assert code is not None
    builder = labels.station_zpl if kind == "station" else labels.location_zpl
    try:
        zpl = builder(code, cjk_font=current_app.config["LABEL_CJK_FONT"])
    except labels.LabelError as exc:
        raise ApiError(exc.code, exc.message, 400, field="code") from None
    response = Response(zpl, mimetype="text/plain")
    response.headers["Content-Disposition"] = f'attachment; filename="{kind}.zpl"'
    return response


def _barcode(fmt: str) -> Response:
    text = _query_text("text", labels.MAX_BARCODE_TEXT)
    symbology = _query_text("symbology", 16, required=False)
    if symbology is not None and symbology not in labels.SYMBOLOGIES:
        raise ApiError("unknown_symbology", f"symbology is one of {', '.join(labels.SYMBOLOGIES)}.",
                       field="symbology")
    assert text is not None
    try:
        if fmt == "svg":
            response = Response(labels.barcode_svg(text, symbology), mimetype="image/svg+xml")
        else:
            response = Response(labels.barcode_png(text, symbology), mimetype="image/png")
    except labels.LabelError as exc:
        raise ApiError(exc.code, exc.message, 400, field="text") from None
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/labels/barcode.svg")
@requires(*ALL_ROLES)
@scope_free("renders the code it is given")
def barcode_svg():  # type: ignore[no-untyped-def]
    return _barcode("svg")


@bp.get("/labels/barcode.png")
@requires(*ALL_ROLES)
@scope_free("renders the code it is given")
def barcode_png():  # type: ignore[no-untyped-def]
    return _barcode("png")
