"""Health and the API's own description."""
from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from floor.auth.security import public
from floor.db import db_session
from floor.openapi import openapi_document

bp = Blueprint("meta", __name__)


@bp.get("/healthz")
@public
def healthz():  # type: ignore[no-untyped-def]
    try:
        db_session().execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - health answers, it does not crash
        return jsonify({"ok": False, "code": "database_unavailable",
                        "message": "The database does not answer."}), 503
    return jsonify({"ok": True})


@bp.get("/api/v1/openapi.json")
@public
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(openapi_document())
