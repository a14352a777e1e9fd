"""REST entry point of the scan pipeline: POST /api/v1/scans."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from floor.api import actor_of, run
from floor.auth.security import Principal, actor, requires
from floor.errors import ApiError, json_body
from floor.packing.domain import DomainError
from floor.publish import publish
from floor.scan import messages, operations

bp = Blueprint("scan", __name__, url_prefix="/api/v1")
SCAN_ROLES = ("packer", "device")


def submit_scan(data: Any, principal: Principal) -> dict[str, Any]:
    """Shared by REST and Socket.IO: validate, one transaction, publish after commit."""
    try:
        request_ = operations.parse_scan_request(data)
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, exc.status, **exc.extra) from None
    debounce = current_app.config["SCAN_DEBOUNCE_MS"]
    result = run(lambda s: operations.record_scan(s, request_, actor_of(principal), debounce,
                                                  messages.render))
    publish(result.events)
    return result.response


@bp.post("/scans")
@requires(*SCAN_ROLES)
def post_scan():  # type: ignore[no-untyped-def]
    return jsonify(submit_scan(json_body(), actor()))
