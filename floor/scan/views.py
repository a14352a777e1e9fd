"""REST entry point of the scan pipeline: POST /api/v1/scans."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from floor.api import actor_of, run
from floor.auth.security import Principal, actor, requires
from floor.auth.scope import (bind_station_to_scope, check_not_elsewhere, check_station_code,
                               scope_filtered, scope_free, upserts)
from floor.db import db_session
from floor.errors import ApiError, json_body
from floor.packing.domain import DomainError
from floor.publish import publish
from floor.scan import domain as scan_domain
from floor.scan import imaging, messages, operations

bp = Blueprint("scan", __name__, url_prefix="/api/v1")
SCAN_ROLES = ("packer", "device")
MAX_IMAGE_BYTES = 10 * 1024 * 1024


def submit_scan(data: Any, principal: Principal) -> dict[str, Any]:
    """Shared by REST and Socket.IO: validate, one transaction, publish after commit."""
    try:
        request_ = operations.parse_scan_request(data)
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, exc.status, **exc.extra) from None
    debounce = current_app.config["SCAN_DEBOUNCE_MS"]
    check_station_code(db_session(), request_.station)
    # Another warehouse's scan_id is not replayed (its verdict is not ours to see), and its
    # handheld is not moved to this station.
    check_not_elsewhere(db_session(), "scan", request_.scan_id, "scan_id")
    check_not_elsewhere(db_session(), "device", request_.device_id, "device_id")

    def op(s):  # type: ignore[no-untyped-def]
        bind_station_to_scope(s, request_.station)
        return operations.record_scan(s, request_, actor_of(principal), debounce, messages.render)

    result = run(op)
    publish(result.events)
    return result.response


def image_refusal(exc: imaging.ImageError) -> ApiError:
    """An image refused (400 invalid_image, 413 image_too_large, 503 decoder_busy), its
    parameters (the pixel limit) kept."""
    return ApiError(exc.code, exc.message, exc.status, **exc.extra)


@bp.post("/decode")
@requires("packer", "qc", "device")
@scope_free("decodes the image it is given")
def decode():  # type: ignore[no-untyped-def]
    """Barcodes in a photo (multipart field `image`), for labels the scanner cannot read."""
    request.max_content_length = MAX_IMAGE_BYTES
    upload = request.files.get("image")
    if upload is None:
        raise ApiError("missing_field", "Send the photo as the multipart field 'image'.", fields=["image"])
    try:
        # CPU-bound for milliseconds to seconds: under a gevent worker, in a real thread.
        reads = imaging.decode_upload(upload.read(MAX_IMAGE_BYTES + 1),
                                      current_app.config["IMAGE_MAX_PIXELS"])
    except imaging.ImageError as exc:
        raise image_refusal(exc) from None
    codes = []
    for read in reads:
        gs1 = scan_domain.parse_gs1(read.text, read.symbology_id)
        codes.append({"text": read.text, "format": read.format, "symbology_id": read.symbology_id,
                      "gs1": gs1.as_dict() if gs1 is not None else None, "engine": read.engine})
    return jsonify({"codes": codes})


@bp.post("/scans")
@requires(*SCAN_ROLES)
@scope_filtered("the station must be the caller's warehouse's")
@upserts(scan_id="scan", device_id="device")
def post_scan():  # type: ignore[no-untyped-def]
    return jsonify(submit_scan(json_body(), actor()))
