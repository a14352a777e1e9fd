"""API errors: every failure answers JSON {"code", "message"} with a 4xx status."""
from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    status = 400

    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class DatabaseUnavailable(ApiError):
    """The database is out of reach or busy past the lock timeout: nothing was committed, so
    the client may send the same request again (a scan: the same scan_id)."""
    status = 503

    def __init__(self) -> None:
        super().__init__("database_unavailable", _unavailable_message())


def _unavailable_message() -> str:
    try:
        from flask_babel import gettext

        return gettext("The database is not reachable right now; nothing was recorded. "
                       "Send it again.")
    except Exception:  # noqa: BLE001 - outside a request: the untranslated text
        return "The database is not reachable right now; nothing was recorded. Send it again."


_HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 429: "too_many_requests",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz" or request.is_json


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):  # type: ignore[no-untyped-def]
        if isinstance(err, DatabaseUnavailable):
            return jsonify(err.to_dict()), err.status, {"Retry-After": "1"}
        return jsonify(err.to_dict()), err.status

    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    from floor.db import is_unavailable

    def _database_error(err: Exception):  # type: ignore[no-untyped-def]
        # Outside a use case's transaction (a token lookup, a read-only page): the same 503.
        if not is_unavailable(err):
            raise err
        return _api_error(DatabaseUnavailable())

    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(PoolTimeoutError, _database_error)

    from floor.extensions import socketio

    @socketio.on_error_default
    def _socket_error(err: Exception):  # type: ignore[no-untyped-def]
        # A Socket.IO handler that failed on the database before its own error handling (e.g.
        # the token check once its cache has expired): the ack says so with the stable code.
        if not (isinstance(err, DatabaseUnavailable) or is_unavailable(err)):
            raise err
        if request.event.get("message") == "connect":  # type: ignore[attr-defined]
            return False        # refused; the client connects again
        return {"ok": False, **DatabaseUnavailable().to_dict()}

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):  # type: ignore[no-untyped-def]
        if not _wants_json():
            return err
        status = err.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        return jsonify({"code": code, "message": err.description or err.name}), status

    from floor.packing.domain import DomainError

    @app.errorhandler(DomainError)
    def _domain_error(err: DomainError):  # type: ignore[no-untyped-def]
        # A use case's refusal that reached the top outside `api.run`: still a 4xx, never a 500.
        return jsonify({"code": err.code, "message": err.message, **err.extra}), err.status

    @app.errorhandler(UnicodeDecodeError)
    def _bad_bytes(_err: UnicodeDecodeError):  # type: ignore[no-untyped-def]
        return jsonify({"code": "invalid_encoding", "message": "The request is not valid UTF-8."}), 400


def json_body(required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's JSON object, or a 400 with a stable code."""
    if not request.data:
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    try:
        data = request.get_json(force=True, silent=False)
    except Exception:
        raise ApiError("invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    missing = [name for name in required if data.get(name) in (None, "")]
    if missing:
        raise ApiError("missing_field", f"Missing field(s): {', '.join(missing)}.", fields=missing)
    return data
