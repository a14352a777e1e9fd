"""Bearer tokens (create, list, revoke) and the audit log, for supervisors.

A supervisor limited to one warehouse makes, sees and revokes only that warehouse's tokens
and reads only that warehouse's audit lines; one of every warehouse sees all.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, request
from flask_babel import gettext as _

from floor.api import run
from floor.auth import operations
from floor.auth.domain import ROLES
from floor.auth.scope import scope_code, scope_filtered, scoped, warehouse_scope
from floor.auth.security import actor, drop_cached_token, requires, who_of
from floor.db import db_session
from floor.errors import ApiError, json_body

bp = Blueprint("auth", __name__, url_prefix="/api/v1")
MAX_PAGE = 500


def _text(data: dict[str, Any], name: str, max_len: int, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len \
            or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ApiError("invalid_field", f"Field '{name}' must be 1–{max_len} printable characters.",
                       field=name)
    return value.strip()


@bp.post("/tokens")
@requires("supervisor")
@scope_filtered("made for the caller's warehouse only")
def create_token():  # type: ignore[no-untyped-def]
    """{"name", "role", "warehouse"?}: the secret is in this answer and nowhere else, ever."""
    data = json_body(required=("name", "role"))
    principal = actor()
    name = _text(data, "name", 100)
    role = data.get("role")
    if role not in ROLES:
        raise ApiError("invalid_role", f"role is one of {', '.join(ROLES)}.", field="role")
    warehouse = _text(data, "warehouse", 32, required=False)
    who = who_of(principal)

    def op(s):  # type: ignore[no-untyped-def]
        scope = warehouse_scope()
        own = scope_code(s, scope)
        named = warehouse
        if scope is not None:
            if named is None:
                named = own      # a warehouse supervisor's tokens are of its warehouse
            elif named != own:
                raise ApiError("warehouse_forbidden",
                               _("Your access is limited to another warehouse."), 403)
        row, secret = operations.create_token_row(s, role, name or "", named, principal.name)
        operations.audit(s, "token_created", who, f"token:{row.id}",
                         detail={"name": row.name, "role": role, "warehouse": named})
        return {**operations.token_view(row, named), "token": secret}

    return jsonify(run(op)), 201


@bp.get("/tokens")
@requires("supervisor")
@scope_filtered("tokens of the caller's warehouse")
def list_tokens():  # type: ignore[no-untyped-def]
    include_revoked = request.args.get("revoked", "1") not in ("0", "false")
    return jsonify({"tokens": operations.list_tokens(db_session(), warehouse_scope(), include_revoked)})


@bp.post("/tokens/<int:token_id>/revoke")
@requires("supervisor")
@scoped(token_id="token")
def revoke_token(token_id: int):  # type: ignore[no-untyped-def]
    """At once in this process; other server processes stop accepting it within 10 s (their
    token cache)."""
    who = who_of(actor())

    def op(s):  # type: ignore[no-untyped-def]
        row = operations.revoke_token(s, token_id, warehouse_scope(), who)
        return row.digest, operations.token_view(row, scope_code(s, row.warehouse_id))

    digest, body = run(op)
    drop_cached_token(digest)
    return jsonify(body)


def _time_arg(name: str) -> dt.datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ApiError("invalid_field", f"Query parameter '{name}' is an ISO 8601 time.", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@bp.get("/audit")
@requires("supervisor")
@scope_filtered("lines of the caller's warehouse")
def audit_log():  # type: ignore[no-untyped-def]
    """Newest first. ?action=&actor=&since=&until=&limit= (≤ 500); the next page with
    ?before_id=<the last id of this page>."""
    action = request.args.get("action") or None
    if action is not None and action not in operations.AUDIT_ACTIONS:
        raise ApiError("invalid_field", f"action is one of {', '.join(operations.AUDIT_ACTIONS)}.",
                       field="action")
    actor_name = request.args.get("actor") or None
    if actor_name is not None and len(actor_name) > 100:
        raise ApiError("invalid_field", "Query parameter 'actor' is too long.", field="actor")
    limit = request.args.get("limit", 100, type=int)
    before_id = request.args.get("before_id", None, type=int)
    if limit is None or not 1 <= limit <= MAX_PAGE:
        raise ApiError("invalid_field", f"limit is 1 to {MAX_PAGE}.", field="limit")
    if before_id is not None and not 0 < before_id < 2**31:
        raise ApiError("invalid_field", "before_id is a positive id.", field="before_id")
    entries = operations.list_audit(db_session(), warehouse_scope(), action=action, actor=actor_name,
                                    since=_time_arg("since"), until=_time_arg("until"),
                                    before_id=before_id, limit=limit)
    return jsonify({"entries": entries,
                    "next_before_id": entries[-1]["id"] if len(entries) == limit else None})


# --- the supervisor's tokens screen -------------------------------------------------------------

pages = Blueprint("access", __name__)


def _tokens_page(status: int = 200, **extra: Any):  # type: ignore[no-untyped-def]
    from flask import render_template
    s = db_session()
    scope = warehouse_scope()
    return render_template("tokens.html", tokens=operations.list_tokens(s, scope), roles=ROLES,
                           own_warehouse=scope_code(s, scope), **extra), status


@pages.get("/tokens")
@requires("supervisor")
@scope_filtered("tokens of the caller's warehouse")
def tokens_page():  # type: ignore[no-untyped-def]
    return _tokens_page()


@pages.post("/tokens")
@requires("supervisor")
@scope_filtered("made for the caller's warehouse only")
def tokens_page_create():  # type: ignore[no-untyped-def]
    """The screen's form (CSRF checked by `requires`): the page again, with the new secret shown
    this once, or with what was wrong."""
    principal = actor()
    who = who_of(principal)
    form = {"name": (request.form.get("name") or "").strip(), "role": request.form.get("role") or "",
            "warehouse": (request.form.get("warehouse") or "").strip() or None}

    def op(s):  # type: ignore[no-untyped-def]
        scope = warehouse_scope()
        named = form["warehouse"]
        if scope is not None:
            own = scope_code(s, scope)
            if named not in (None, own):
                raise ApiError("warehouse_forbidden", _("Your access is limited to another warehouse."), 403)
            named = own
        row, secret = operations.create_token_row(s, form["role"], form["name"], named, principal.name)
        operations.audit(s, "token_created", who, f"token:{row.id}",
                         detail={"name": row.name, "role": row.role, "warehouse": named})
        return {**operations.token_view(row, named), "token": secret}

    if not form["name"] or len(form["name"]) > 100 or any(ord(c) < 32 for c in form["name"]):
        return _tokens_page(400, error=_("Give the token a name (at most 100 characters)."), form=form)
    if form["role"] not in ROLES:
        return _tokens_page(400, error=_("Choose a role."), form=form)
    try:
        made = run(op)
    except ApiError as exc:
        return _tokens_page(exc.status, error=exc.message, form=form)
    return _tokens_page(201, made=made)


@pages.post("/tokens/<int:token_id>/revoke")
@requires("supervisor")
@scoped(token_id="token")
def tokens_page_revoke(token_id: int):  # type: ignore[no-untyped-def]
    from flask import redirect, url_for
    who = who_of(actor())
    digest = run(lambda s: operations.revoke_token(s, token_id, warehouse_scope(), who).digest)
    drop_cached_token(digest)
    return redirect(url_for("access.tokens_page", revoked=token_id))
