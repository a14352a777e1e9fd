"""Entry points of stock: levels in (JSON, CSV), adjustments, reading, and the supervisor's
stock screen."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from floor.api import actor_of, run
from floor.auth.security import Principal, actor, requires
from floor.auth.scope import check_warehouse_code, scope_filtered, warehouse_scope
from floor.db import db_session
from floor.errors import ApiError, json_body
from floor.live import domain as live
from floor.packing import operations as packing
from floor.packing.domain import DomainError
from floor.packing.models import Warehouse
from floor.publish import publish
from floor.stock import domain, operations

bp = Blueprint("stock", __name__)
API = "/api/v1/stock"
WRITERS = ("supervisor", "integration")


def _warehouse_code(value: Any, principal: Principal | None) -> str:
    """The warehouse named, else the caller's own, else the first one."""
    if value:
        try:
            code = packing.clean_text({"warehouse": value}, "warehouse", 32)
        except DomainError as exc:
            raise ApiError(exc.code, exc.message, exc.status, **exc.extra) from None
        assert code is not None
        check_warehouse_code(db_session(), code)
        return code
    s = db_session()
    if principal is not None and principal.warehouse_id is not None:
        own = s.get(Warehouse, principal.warehouse_id)
        if own is not None:
            return own.code
    first = s.scalar(select(Warehouse.code).order_by(Warehouse.id).limit(1))
    if first is None:
        raise ApiError("unknown_warehouse", "No warehouse yet; name one with ?warehouse=.", 404)
    return first


UPLOAD_LIMIT = domain.MAX_CSV_BYTES + 64 * 1024      # the file and the form around it
JSON_LIMIT = 1024 * 1024                             # 5,000 items of PUT /api/v1/stock


@bp.before_request
def _body_limits() -> None:
    """Larger bodies than the app's default, set before the role and CSRF checks read the form."""
    if request.endpoint in ("stock.upload_stock", "stock.stock_page_upload"):
        request.max_content_length = UPLOAD_LIMIT
    elif request.endpoint == "stock.put_stock":
        request.max_content_length = JSON_LIMIT


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
    if request.endpoint == "stock.put_stock":
        return jsonify({"code": "payload_too_large",
                        "message": f"The body is over {JSON_LIMIT // 1024} KiB."}), 413
    error = ApiError("file_too_large", f"The file is over {domain.MAX_CSV_BYTES // 1024} KiB.", 413)
    if request.endpoint == "stock.stock_page_upload":
        return _page(_warehouse_code(request.args.get("warehouse"), None), 413,
                     upload_error=error.to_dict())
    return jsonify(error.to_dict()), 413


def _upload_file() -> tuple[bytes, str]:
    file = request.files.get("file")
    if file is None:
        raise ApiError("missing_field", "Send the CSV as the multipart field 'file'.", fields=["file"])
    data = file.read(domain.MAX_CSV_BYTES + 1)
    # The client's file name goes into the movements' note: printable characters only.
    name = "".join(c for c in (file.filename or "") if c.isprintable())[:100]
    return data, name


def _rows_from_csv(data: bytes) -> tuple[list[domain.StockRow], list[str]]:
    try:
        return domain.parse_csv(data)
    except domain.StockInputError as exc:
        refused = operations.input_error(exc)
        raise ApiError(refused.code, refused.message, refused.status, **refused.extra) from None


@bp.put(API)
@requires(*WRITERS)
@scope_filtered("the body's warehouse must be the caller's")
def put_stock():  # type: ignore[no-untyped-def]
    """Counted levels: each listed SKU's on_hand (and threshold) becomes what is sent."""
    principal = actor()
    data = json_body()

    def op(s):  # type: ignore[no-untyped-def]
        warehouse = packing.clean_text(data, "warehouse", 32)
        check_warehouse_code(s, warehouse)
        note = packing.clean_text(data, "note", 500, required=False) or ""
        try:
            rows = domain.parse_items(data.get("items"))
        except domain.StockInputError as exc:
            raise operations.input_error(exc) from None
        assert warehouse is not None
        return operations.set_levels(s, warehouse, rows, "set", actor_of(principal), note)

    body, events = run(op)
    publish(events)
    return jsonify(body)


@bp.get(API)
@requires(*WRITERS)
@scope_filtered("?warehouse= forced to the caller's")
def get_stock():  # type: ignore[no-untyped-def]
    principal = actor()
    code = _warehouse_code(request.args.get("warehouse"), principal)
    sku = request.args.get("sku") or None
    if sku is not None and (len(sku) > domain.MAX_SKU_LEN or any(ord(c) < 32 for c in sku)):
        raise ApiError("invalid_field", "Query parameter 'sku' is not valid.", field="sku")
    return jsonify(operations.stock_view(db_session(), code, sku))


@bp.post(API + "/upload")
@requires(*WRITERS)
@scope_filtered("the warehouse named must be the caller's")
def upload_stock():  # type: ignore[no-untyped-def]
    """A CSV of sku,on_hand[,low_threshold]: every row applied, or none (errors by line)."""
    principal = actor()
    named = request.form.get("warehouse") or request.args.get("warehouse")
    if not named:
        raise ApiError("missing_field", "Missing field: warehouse.", fields=["warehouse"])
    warehouse = _warehouse_code(named, None)
    data, filename = _upload_file()
    rows, ignored = _rows_from_csv(data)
    note = f"CSV {filename}"[:500] if filename else "CSV upload"
    body, events = run(lambda s: operations.set_levels(s, warehouse, rows, "upload",
                                                       actor_of(principal), note))
    publish(events)
    return jsonify({**body, "ignored_columns": ignored})


@bp.post(API + "/adjustments")
@requires(*WRITERS)
@scope_filtered("the body's warehouse must be the caller's")
def adjust_stock():  # type: ignore[no-untyped-def]
    """A relative correction (found, broken, lost) of one tracked SKU, with a note."""
    data = json_body()
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        device_id = packing.clean_text(data, "device_id", 64, required=False)
        if isinstance(data.get("warehouse"), str):
            check_warehouse_code(s, data["warehouse"])
        return operations.adjust(s, data, actor_of(principal, device_id))

    body, events = run(op)
    publish(events)
    return jsonify(body)


# --- the supervisor's screen ------------------------------------------------------------------

def _local(iso: str, offset: dt.timedelta) -> str:
    return (dt.datetime.fromisoformat(iso) + offset).strftime("%m-%d %H:%M")


def _page(warehouse: str, status: int = 200, **extra: Any):  # type: ignore[no-untyped-def]
    s = db_session()
    codes = select(Warehouse.code).order_by(Warehouse.code).limit(50)
    if (scope := warehouse_scope()) is not None:
        codes = codes.where(Warehouse.id == scope)
    warehouses = list(s.scalars(codes))
    view = operations.stock_view(s, warehouse)
    row = s.scalar(select(Warehouse).where(Warehouse.code == warehouse))
    # Times in the warehouse's local time, as the board shows them.
    offset = dt.timedelta(minutes=live.merged_settings(row.settings if row else None)["utc_offset_minutes"])
    for item in view["items"]:
        item["updated_local"] = _local(item["updated_at"], offset)
    for move in view["movements"]:
        move["at_local"] = _local(move["at"], offset)
    return render_template("stock.html", view=view, warehouse=warehouse, warehouses=warehouses,
                           max_kib=domain.MAX_CSV_BYTES // 1024, **extra), status


@bp.get("/stock")
@requires("supervisor")
@scope_filtered("?warehouse= forced to the caller's")
def stock_page():  # type: ignore[no-untyped-def]
    warehouse = _warehouse_code(request.args.get("warehouse"), actor())
    applied = request.args.get("applied", type=int)
    return _page(warehouse, applied=applied)


@bp.route("/stock/upload", methods=["GET", "POST"])
@requires("supervisor")
@scope_filtered("the form's warehouse must be the caller's")
def stock_page_upload():  # type: ignore[no-untyped-def]
    """The screen's upload form (CSRF checked by `requires`): applied, then back to the list;
    refused, the page again with every bad line. A GET (a reload, the language switch after a
    refusal) goes back to the list."""
    principal = actor()
    if request.method == "GET":
        named = _warehouse_code(request.args.get("warehouse"), principal)
        return redirect(url_for("stock.stock_page", warehouse=named))
    warehouse = _warehouse_code(request.form.get("warehouse"), principal)
    try:
        data, filename = _upload_file()
        rows, ignored = _rows_from_csv(data)
        body, events = run(lambda s: operations.set_levels(
            s, warehouse, rows, "upload", actor_of(principal), f"CSV {filename}"[:500]))
    except ApiError as exc:
        return _page(warehouse, 413 if exc.status == 413 else 400, upload_error=exc.to_dict())
    publish(events)
    return redirect(url_for("stock.stock_page", warehouse=warehouse,
                            applied=body["created"] + body["changed"]))
