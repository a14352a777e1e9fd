"""Screens: login, the handheld pack screen, the printable demo barcode sheet, language."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from flask import (Blueprint, current_app, make_response, redirect, render_template, request,
                   session, url_for)
from flask_babel import gettext as _
from sqlalchemy import delete, func, select

from floor.auth.domain import LoginLimits, login_refusal
from floor.auth.models import LoginFailure, User
from floor.auth.operations import (Who, audit, end_login_session, password_matches,
                                   start_login_session)
from floor.auth.security import (check_csrf, current_principal, login_user, public, requires,
                                 session_login_id, who_of)
from floor.auth.scope import scope_filtered, scope_free, warehouse_scope
from floor.db import db_session, run_in_transaction, utcnow
from floor.errors import ApiError
from floor.labels import barcode_svg
from floor.packing.models import Order, SkuBarcode, Station, Wave

bp = Blueprint("web", __name__)
SCREEN_ROLES = ("packer", "qc", "supervisor")


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("web.index")
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/"):
        return url_for("web.index")
    return target


# No inline scripts or styles anywhere: the pages are built for this policy.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")


@bp.after_app_request
def _security_headers(response):  # type: ignore[no-untyped-def]
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@bp.app_context_processor
def _context() -> dict[str, Any]:
    from floor import select_locale
    return {"principal": current_principal(), "lang": select_locale()}


@bp.route("/login", methods=["GET", "POST"])
@public
def login():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("login.html", error=None)
    try:
        check_csrf()
    except ApiError:
        return render_template("login.html", error=_("The form expired; try again.")), 400
    username = (request.form.get("username") or "").strip()[:64]
    password = request.form.get("password") or ""
    cfg = current_app.config
    limits = login_limits(cfg)
    lifetime = dt.timedelta(hours=cfg.get("SESSION_LIFETIME_H", 12))
    now = utcnow()

    addr = request.remote_addr or ""

    def attempt(s):  # type: ignore[no-untyped-def]
        user = s.scalar(select(User).where(User.username == username))
        who = Who(username, user.role if user else None, "session", None,
                  user.warehouse_id if user else None, addr)
        since = now - limits.window
        by_name = s.execute(select(LoginFailure.at, LoginFailure.remote_addr).where(
            LoginFailure.username == username, LoginFailure.at > since)).all()
        by_addr = s.scalars(select(LoginFailure.at).where(
            LoginFailure.remote_addr == addr, LoginFailure.at > since)).all()
        refusal = login_refusal([at for at, a in by_name if a == addr], list(by_addr),
                                [at for at, _a in by_name], now, limits)
        if refusal is not None:
            # Refused before the password is looked at, and not counted as a failure: a
            # locked address cannot lengthen the name's backoff.
            audit(s, "login_locked", who, f"user:{username}", "refused",
                  {"reason": refusal.reason, "retry_after_s": refusal.retry_after_s})
            return refusal, None
        if not password_matches(user, password):
            s.add(LoginFailure(username=username, remote_addr=addr, at=now))
            audit(s, "login_failed", who, f"user:{username}", "failed",
                  {"known_user": user is not None})
            return "bad", None
        # The user's own typos from this address are forgiven; others' failures on the name
        # keep counting towards its backoff.
        s.execute(delete(LoginFailure).where(LoginFailure.username == username,
                                             LoginFailure.remote_addr == addr))
        secret = start_login_session(s, user, addr, lifetime)
        audit(s, "login", who, f"user:{username}")
        return secret, user

    outcome, user = run_in_transaction(attempt)
    if outcome == "bad":
        return render_template("login.html", error=_("Wrong user name or password.")), 401
    if user is None:
        wait = {"Retry-After": str(outcome.retry_after_s)}
        if outcome.reason == "name_backoff":
            return render_template("login.html", error=_(
                "Too many failed logins for this name; try again in %(seconds)s s.",
                seconds=outcome.retry_after_s)), 429, wait
        return render_template("login.html", error=_("Too many failed logins; wait a few minutes.")), 429, wait
    login_user(user, outcome)
    return redirect(_safe_next(request.args.get("next")))


def login_limits(cfg: Any) -> LoginLimits:
    return LoginLimits(
        window=dt.timedelta(seconds=cfg["LOGIN_LOCKOUT_S"]),
        per_name_and_address=cfg["LOGIN_MAX_FAILURES"],
        per_address=cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        name_backoff_after=cfg["LOGIN_NAME_BACKOFF_AFTER"],
        name_backoff_base=dt.timedelta(seconds=cfg["LOGIN_NAME_BACKOFF_BASE_S"]),
        name_backoff_max=dt.timedelta(seconds=cfg["LOGIN_NAME_BACKOFF_MAX_S"]))


@bp.post("/logout")
@public
def logout():  # type: ignore[no-untyped-def]
    try:
        check_csrf()
    except ApiError:
        return redirect(url_for("web.login"))
    principal = current_principal()
    login_id = session_login_id()
    if principal is not None and login_id is not None:
        who = who_of(principal)

        def end(s):  # type: ignore[no-untyped-def]
            end_login_session(s, login_id, "logout")
            audit(s, "logout", who, f"user:{principal.name}")

        run_in_transaction(end)
        # This login's sockets in this process end now; other processes see the ended row
        # at their next check (within a minute).
        current_app.extensions["floor.sockets"].end_login(login_id)
    session.clear()
    return redirect(url_for("web.login"))


@bp.get("/lang/<code>")
@public
def set_lang(code: str):  # type: ignore[no-untyped-def]
    response = redirect(_safe_next(request.args.get("next")))
    if code in ("zh", "en"):
        response.set_cookie("lang", code, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


@bp.get("/")
@requires(*SCREEN_ROLES)
@scope_free("a redirect to the role's screen")
def index():  # type: ignore[no-untyped-def]
    """Each role lands on its own screen."""
    role = current_principal().role  # type: ignore[union-attr]
    return redirect(url_for({"packer": "web.pack", "supervisor": "live.board_page",
                             "qc": "returns.returns_page"}.get(role, "web.sheet")))


@bp.get("/pack")
@requires("packer", "supervisor")
@scope_filtered("stations of the caller's warehouse")
def pack():  # type: ignore[no-untyped-def]
    query = select(Station.code).order_by(Station.code)
    if (scope := warehouse_scope()) is not None:
        query = query.where((Station.warehouse_id == scope) | Station.warehouse_id.is_(None))
    stations = db_session().scalars(query).all()
    return render_template("pack.html", stations=list(stations) or ["P01"], **_offline_texts())


def _offline_texts() -> dict[str, Any]:
    """The server's verdict texts, for the provisional verdicts the screen gives offline."""
    from floor.scan.messages import MESSAGES, STATUS_LABELS
    return {"verdict_texts": {code: _(text) for code, text in MESSAGES.items()},
            "status_labels": {code: _(text) for code, text in STATUS_LABELS.items()},
            "debounce_ms": current_app.config["SCAN_DEBOUNCE_MS"]}


# What the service worker keeps for the handheld screens to open offline (see templates/sw.js).
OFFLINE_ASSETS = ("js/offline-queue.js", "js/gs1.js", "js/pack.js", "js/returns.js", "css/floor.css",
                  "css/returns.css", "vendor/socket.io.min.js", "favicon.svg")
OFFLINE_PAGES = ("/pack", "/returns")


@functools.lru_cache(maxsize=4)
def _asset_version(static_folder: str, template: str) -> str:
    """The app version and the bytes of the offline assets and of the worker: a deploy that
    changes any of them gives the worker a new cache name. Computed once per process."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        digest = hashlib.sha256(version("floor").encode())
    except PackageNotFoundError:
        digest = hashlib.sha256(b"floor")
    for name in OFFLINE_ASSETS + (template,):
        path = Path(static_folder) / name if name != template else Path(template)
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    return digest.hexdigest()[:16]


@bp.get("/sw.js")
@public
def service_worker():  # type: ignore[no-untyped-def]
    """The service worker, at the root so that its scope covers /pack and /returns."""
    app = current_app
    template = str(Path(app.root_path, str(app.template_folder), "sw.js"))
    assets = [url_for("static", filename=name) for name in OFFLINE_ASSETS]
    body = render_template("sw.js", assets=assets, pages=list(OFFLINE_PAGES),
                           version=_asset_version(str(app.static_folder), template))
    response = make_response(body)
    response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    response.headers["Service-Worker-Allowed"] = "/"
    # The browser checks for a new worker on every visit; never a stale one from a cache.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sheet")
@requires(*SCREEN_ROLES)
@scope_filtered("orders of the caller's warehouse")
def sheet():  # type: ignore[no-untyped-def]
    """Printable barcodes: each demo order's waybill, order number and kit, plus strangers."""
    s = db_session()
    wave_no = request.args.get("wave", "")[:64]
    query = select(Order).where(Order.snapshot_id.is_not(None)).order_by(Order.id)
    if (scope := warehouse_scope()) is not None:
        query = query.where(Order.warehouse_id == scope)
    if wave_no:
        query = query.join(Wave, Wave.id == Order.wave_id).where(Wave.wave_no == wave_no)
    limit = min(max(request.args.get("limit", 12, type=int) or 12, 1), 60)
    orders = s.scalars(query.limit(limit)).all()
    shown_codes: set[str] = set()
    blocks = []
    for order in orders:
        snap = order.snapshot
        assert snap is not None
        lines = []
        for line in snap.lines:
            shown_codes.update(line["barcodes"])
            lines.append({**line, "barcodes": [{"code": c, "svg": barcode_svg(c)}
                                               for c in line["barcodes"]]})
        blocks.append({"order_no": order.order_no, "channel": order.channel,
                       "wave_no": order.wave.wave_no if order.wave else None,
                       "waybill_no": order.waybill_no,
                       "waybill_svg": barcode_svg(order.waybill_no) if order.waybill_no else None,
                       "order_svg": barcode_svg(order.order_no), "lines": lines})
    # Strangers from the catalogue of the warehouse(s) shown: never another warehouse's items.
    warehouse_ids = {scope} if scope is not None else {o.warehouse_id for o in orders}
    strangers = [{"sku": m.sku.code, "name": m.sku.name, "code": m.barcode,
                  "svg": barcode_svg(m.barcode)}
                 for m in s.scalars(select(SkuBarcode)
                                    .where(SkuBarcode.warehouse_id.in_(sorted(warehouse_ids)))
                                    .order_by(func.random()).limit(40))
                 if m.barcode not in shown_codes][:4]
    return render_template("sheet.html", orders=blocks, strangers=strangers)
