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
        return jsonify(err.to_dict()), err.status

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
