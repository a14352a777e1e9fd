"""REST entry points of returns inspection, and the QC screen."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_file
from flask_babel import gettext as _

from floor import labels
from floor.api import actor_of, run
from floor.auth.security import actor, current_principal, requires
from floor.auth.scope import (WITHIN, check_object, order_warehouse_id, scope_filtered, scoped,
                              warehouse_arg, warehouse_scope)
from floor.db import db_session
from floor.errors import ApiError, json_body
from floor.packing.domain import DomainError
from floor.publish import publish
from floor.returns import operations
from floor.scan import imaging
from floor.scan.views import image_refusal

bp = Blueprint("returns", __name__)
API = "/api/v1/returns"
READERS = ("qc", "supervisor", "integration")


def _verdict_message(verdict: str, params: dict[str, Any]) -> str:
    lots = ", ".join(params.get("packed_lots") or []) or "-"
    texts = {
        "matched": _("Matches the packed kit."),
        "lot_mismatch": _("Lot %(lot)s was not packed (packed: %(packed)s).",
                          lot=params.get("lot") or "-", packed=lots),
        "serial_mismatch": _("Serial %(serial)s was not packed in this order.",
                             serial=params.get("serial") or "-"),
        "foreign_item": _("Never in this order: swapped goods?"),
        "over_returned": _("More came back than was packed."),
        "unreadable": _("Unreadable code: scan again."),
        "invalid_gs1": _("GS1 label refused: AI (%(ai)s) is malformed. Not counted.",
                         ai=params.get("ai") or "-"),
        "logistic_unit": _("A case or pallet label, not one unit: scan each unit. Not counted."),
    }
    return texts.get(verdict, verdict)


def _domain(fn: Any) -> Any:
    try:
        return fn()
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, exc.status, **exc.extra) from None


@bp.get("/returns")
@requires("qc", "supervisor")
@scope_filtered("?warehouse= forced to the caller's")
def returns_page():  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from floor.packing.models import Warehouse

    principal = current_principal()
    s = db_session()
    warehouse = warehouse_arg(request.args.get("warehouse", "")[:32])
    if warehouse:
        warehouses = [warehouse]
    elif principal is not None and principal.warehouse_id is not None:
        row = s.get(Warehouse, principal.warehouse_id)
        warehouses = [row.code] if row is not None else []
    else:
        warehouses = list(s.scalars(select(Warehouse.code).order_by(Warehouse.code).limit(19)))
    station = request.args.get("station", "")[:32] or operations.DEFAULT_STATION
    return render_template("returns.html", warehouses=warehouses, station=station,
                           can_confirm=principal is not None and principal.role == "supervisor")


@bp.post(API)
@requires("qc", "integration")
@scope_filtered("the order must be in the caller's warehouse")
def create_return():  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        if isinstance(data.get("order_no"), str):
            check_object(s, "order", data["order_no"])
        ret, events = operations.create_return(s, data, actor_of(principal),
                                               order_warehouse_id(s, data))
        return operations.detail(s, ret), events

    body, events = run(op)
    publish(events)
    return jsonify(body), 201


@bp.get(API)
@requires("qc", "supervisor")
@scope_filtered("?warehouse= forced to the caller's")
def list_returns():  # type: ignore[no-untyped-def]
    state = request.args.get("state", "open")
    warehouse = request.args.get("warehouse") or None
    if warehouse is not None and (len(warehouse) > 32 or any(ord(c) < 32 for c in warehouse)):
        raise ApiError("invalid_field", "Query parameter 'warehouse' is not valid.", field="warehouse")
    warehouse = warehouse_arg(warehouse)
    from sqlalchemy import select

    from floor.eventlog import EventCounter

    s = db_session()
    # The newest seq before the queue was read: a screen subscribes after it.
    last_seq = s.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1)) or 0
    rows = _domain(lambda: operations.queue(s, state, warehouse))
    return jsonify({"returns": rows, "state": state, "warehouse": warehouse, "last_seq": last_seq})


@bp.get(API + "/by-code/<path:code>")
@requires("qc")
@scoped(code="return_code")
def by_code(code: str):  # type: ignore[no-untyped-def]
    s = db_session()
    ret = _domain(lambda: operations.by_code(s, code, warehouse_scope()))
    return jsonify(operations.detail(s, ret))


@bp.get(API + "/<rma_no>")
@requires(*READERS)
@scoped(rma_no="return")
def get_return(rma_no: str):  # type: ignore[no-untyped-def]
    s = db_session()
    ret = _domain(lambda: operations.find_return(s, rma_no))
    return jsonify(operations.detail(s, ret))


@bp.post(API + "/<rma_no>/scans")
@requires("qc")
@scoped(rma_no="return")
def scan_item(rma_no: str):  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()
    body, events = run(lambda s: operations.record_scan(s, rma_no, data, actor_of(principal)))
    publish(events)
    if not body.get("replayed"):
        body["message"] = _verdict_message(body["verdict"], body.get("params") or {})
    else:
        body.setdefault("message", _verdict_message(body["verdict"], body.get("params") or {}))
    return jsonify(body)


@bp.post(API + "/<rma_no>/scans/<scan_id>/photo")
@requires("qc")
@scoped(rma_no="return", scan_id=WITHIN)
def scan_photo(rma_no: str, scan_id: str):  # type: ignore[no-untyped-def]
    request.max_content_length = operations.MAX_PHOTO_BYTES + 64 * 1024
    upload = request.files.get("photo")
    if upload is None:
        raise ApiError("missing_field", "Send the photo as the multipart field 'photo'.",
                       fields=["photo"])
    data = upload.read(operations.MAX_PHOTO_BYTES + 1)
    if len(data) > operations.MAX_PHOTO_BYTES:
        raise ApiError("image_too_large", "A photo is at most 5 MB.", 413)
    try:
        # The size its header declares is checked before any decoding; the decoding and
        # re-encoding share the decoder's slots and run off the event loop, as /decode does.
        imaging.check_dimensions(data, current_app.config["IMAGE_MAX_PIXELS"])
        with imaging.image_slot():
            jpeg = imaging.run_off_loop(_as_jpeg, data)
    except imaging.ImageError as exc:
        raise image_refusal(exc) from None
    principal = actor()
    instance = current_app.config["INSTANCE_PATH"]
    body = run(lambda s: operations.attach_photo(s, rma_no, scan_id, jpeg, instance,
                                                 actor_of(principal)))
    return jsonify(body)


def _as_jpeg(data: bytes) -> bytes:
    """Decode with OpenCV (anything else is refused) and store a re-encoded JPEG: no metadata,
    no payload the browser could mistake for something else."""
    import cv2
    import numpy as np

    if not data:
        raise ApiError("invalid_image", "The photo is empty.")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except Exception:  # noqa: BLE001 - a decoder failure is bad input
        image = None
    if image is None or image.size == 0:
        raise ApiError("invalid_image", "The photo is not an image OpenCV can read.")
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest > 2000:
        scale = 2000 / longest
        image = cv2.resize(image, (max(1, int(width * scale)), max(1, int(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ApiError("invalid_image", "The photo could not be stored.")
    return bytes(encoded)


@bp.get(API + "/<rma_no>/scans/<scan_id>/photo")
@requires("qc", "supervisor")
@scoped(rma_no="return", scan_id=WITHIN)
def get_scan_photo(rma_no: str, scan_id: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from floor.returns.models import ReturnScan

    s = db_session()
    ret = _domain(lambda: operations.find_return(s, rma_no))
    row = s.scalar(select(ReturnScan).where(ReturnScan.scan_id == scan_id,
                                            ReturnScan.return_id == ret.id))
    if row is None or not row.photo:
        raise ApiError("no_photo", "That scan has no photo.", 404)
    path = operations.photo_path(current_app.config["INSTANCE_PATH"], ret, scan_id)
    if not path.is_file():
        raise ApiError("no_photo", "That scan has no photo.", 404)
    return send_file(Path(path), mimetype="image/jpeg", max_age=3600)


@bp.post(API + "/<rma_no>/close")
@requires("qc")
@scoped(rma_no="return")
def close(rma_no: str):  # type: ignore[no-untyped-def]
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        ret, report, events = operations.close_return(s, rma_no, actor_of(principal))
        return operations.report_view(ret, report), events

    body, events = run(op)
    publish(events)
    return jsonify(body)


@bp.post(API + "/<rma_no>/confirm")
@requires("supervisor")
@scoped(rma_no="return")
def confirm(rma_no: str):  # type: ignore[no-untyped-def]
    data = json_body(required=("outcome",))
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        ret, report, events = operations.confirm_return(s, rma_no, data, actor_of(principal))
        return operations.report_view(ret, report), events

    body, events = run(op)
    publish(events)
    return jsonify(body)


def _label_return(rma_no: str) -> Any:
    return _domain(lambda: operations.find_return(db_session(), rma_no))


@bp.get(API + "/<rma_no>/label.svg")
@requires("qc", "supervisor")
@scoped(rma_no="return")
def label_svg(rma_no: str):  # type: ignore[no-untyped-def]
    ret = _label_return(rma_no)
    return Response(labels.barcode_svg(ret.trace_code, "code128"), mimetype="image/svg+xml")


@bp.get(API + "/<rma_no>/label.png")
@requires("qc", "supervisor")
@scoped(rma_no="return")
def label_png(rma_no: str):  # type: ignore[no-untyped-def]
    ret = _label_return(rma_no)
    return Response(labels.barcode_png(ret.trace_code, "code128"), mimetype="image/png")


@bp.get(API + "/<rma_no>/label.zpl")
@requires("qc", "supervisor")
@scoped(rma_no="return")
def label_zpl(rma_no: str):  # type: ignore[no-untyped-def]
    ret = _label_return(rma_no)
    zpl = _domain(lambda: operations.trace_label_zpl(ret))
    return Response(zpl, mimetype="text/plain; charset=utf-8")
