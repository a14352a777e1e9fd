"""Who is calling: bearer token or session cookie; the role check every route declares.

`requires(...)` runs before the view reads its body, so a role that may not call an endpoint
gets 401/403 whatever it sends; CSRF is checked after it for cookie-authenticated writes.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from flask import current_app, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select

from floor.auth.domain import token_digest
from floor.auth.models import ApiToken, LoginSession, User
from floor.db import db_session, utcnow
from floor.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    via: str                       # "session" | "token"
    warehouse_id: int | None = None
    user_id: int | None = None
    token_id: int | None = None


# Devices send a token with every scan; a valid one is remembered briefly. A revocation drops
# the entry in the revoking process at once; other processes honour it within TOKEN_CACHE_S.
# Unknown tokens are never cached.
TOKEN_CACHE_S = 10.0
_token_cache: dict[tuple[str, str], tuple[Principal, float]] = {}


def principal_from_token(token: str) -> Principal | None:
    if not token or len(token) > 200:
        return None
    digest = token_digest(token)
    key = (current_app.config["DATABASE_URL"], digest)
    cached = _token_cache.get(key)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    row = db_session().scalar(select(ApiToken).where(ApiToken.digest == digest))
    if row is None or row.revoked_at is not None:
        _token_cache.pop(key, None)
        return None
    principal = Principal(row.name, row.role, "token", row.warehouse_id, token_id=row.id)
    every = dt.timedelta(minutes=current_app.config.get("TOKEN_USE_AUDIT_MIN", 15))
    now = utcnow()
    if row.last_used_at is None or row.last_used_at < now - every:
        _note_token_use(principal, now, every)
    if len(_token_cache) > 10_000:
        _token_cache.clear()
    _token_cache[key] = (principal, time.monotonic() + TOKEN_CACHE_S)
    return principal


def drop_cached_token(digest: str) -> None:
    """A revoked token stops working in this process now, not after the cache entry ages."""
    for key in [k for k in _token_cache if k[1] == digest]:
        _token_cache.pop(key, None)


def _note_token_use(principal: Principal, now: dt.datetime, every: dt.timedelta) -> None:
    from floor.auth.operations import note_token_use
    from floor.db import run_in_transaction
    try:
        run_in_transaction(lambda s: note_token_use(s, principal.token_id or 0, now, every,
                                                    who_of(principal)))
    except Exception:  # noqa: BLE001 - bookkeeping: never refuses a valid token
        log.warning("token use not recorded", exc_info=True)


def session_expiry(started: Any, seen: Any, now: dt.datetime, lifetime: dt.timedelta,
                   idle: dt.timedelta) -> str | None:
    """Why a session is over ("lifetime", "idle"), or None while it is valid."""
    try:
        start, last = dt.datetime.fromisoformat(started), dt.datetime.fromisoformat(seen or started)
    except (TypeError, ValueError):
        return "lifetime"     # a session without its timestamps predates them: log in again
    if now - start >= lifetime:
        return "lifetime"
    if now - last >= idle:
        return "idle"
    return None


# The last-seen time is rewritten into the cookie at most this often.
SEEN_RESOLUTION = dt.timedelta(seconds=60)


def session_login_id() -> str | None:
    """The server-side login (`login_sessions.id`) the session cookie names, if any."""
    secret = session.get("sid")
    return token_digest(secret) if isinstance(secret, str) and 0 < len(secret) <= 100 else None


def login_is_open(login_id: str | None, user_id: int) -> bool:
    """The login row exists, belongs to this user and was not ended (logout, password change,
    deactivation): a copied cookie of an ended login names nothing."""
    if login_id is None:
        return False
    row = db_session().get(LoginSession, login_id, populate_existing=True)
    return row is not None and row.user_id == user_id and row.ended_at is None


def principal_from_session() -> Principal | None:
    uid = session.get("uid")
    if not isinstance(uid, int):
        return None
    user = db_session().get(User, uid)
    if user is None or not user.active or session.get("pw") != user.password_hash[-16:]:
        return None
    if not login_is_open(session_login_id(), user.id):
        session.clear()
        return None
    principal = Principal(user.username, user.role, "session", user.warehouse_id, user.id)
    cfg, now = current_app.config, utcnow()
    why = session_expiry(session.get("at"), session.get("seen"), now,
                         dt.timedelta(hours=cfg.get("SESSION_LIFETIME_H", 12)),
                         dt.timedelta(minutes=cfg.get("SESSION_IDLE_MIN", 30)))
    if why is not None:
        session.clear()
        audit_now("session_expired", who_of(principal), f"user:{user.id}", detail={"reason": why})
        return None
    seen = session.get("seen")
    if not isinstance(seen, str) or now - dt.datetime.fromisoformat(seen) >= SEEN_RESOLUTION:
        session["seen"] = now.isoformat()
    return principal


def who_of(principal: Principal | None) -> Any:
    """The audit log's `Who` of a principal (or of an anonymous caller), with its address."""
    from floor.auth.operations import Who
    addr = (request.remote_addr or "") if request else ""
    if principal is None:
        return Who(remote_addr=addr)
    return Who(principal.name, principal.role, principal.via, principal.token_id,
               principal.warehouse_id, addr)


def audit_now(action: str, who: Any, target: str = "", outcome: str = "ok",
               detail: dict[str, Any] | None = None) -> None:
    """An audit line in its own transaction (the event is not part of any use case's)."""
    from floor.auth.operations import audit
    from floor.db import run_in_transaction
    try:
        run_in_transaction(lambda s: audit(s, action, who, target, outcome, detail))
    except Exception:  # noqa: BLE001 - the audit must not turn a refusal into a 500
        log.warning("audit line %s not recorded", action, exc_info=True)


# Refusals are audited once per (caller, what was refused) per window: a misconfigured device
# retrying every second must not flood the log.
REFUSAL_AUDIT_S = 300.0
_refusals_seen: dict[tuple[str, ...], float] = {}


def audit_refusal_once(principal: Any, action: str, target: str,
                       detail: dict[str, Any] | None = None, *, key: tuple[str, ...]) -> None:
    """audit_now(action, ..., "refused") unless the same refusal (`key`, per database and
    caller) was audited within REFUSAL_AUDIT_S."""
    seen = (current_app.config["DATABASE_URL"], str(getattr(principal, "via", "")),
            str(getattr(principal, "name", "")), action, *key)
    now = time.monotonic()
    if _refusals_seen.get(seen, 0.0) > now:
        return
    if len(_refusals_seen) > 10_000:
        _refusals_seen.clear()
    _refusals_seen[seen] = now + REFUSAL_AUDIT_S
    audit_now(action, who_of(principal), target, "refused", detail)


def _audit_forbidden(principal: Principal) -> None:
    audit_refusal_once(principal, "forbidden", f"{request.method} {request.path}"[:200],
                       key=(request.endpoint or "",))


def current_principal() -> Principal | None:
    if "principal" not in g:
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            g.principal = principal_from_token(header[7:].strip())
        else:
            g.principal = principal_from_session()
    return g.principal


def login_user(user: User, secret: str) -> None:
    """Fill the cookie of a login just recorded on the server (`start_login_session`)."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["sid"] = secret
    # Changing the password ends every session made with the old one.
    session["pw"] = user.password_hash[-16:]
    session["at"] = session["seen"] = utcnow().isoformat()


def _is_api() -> bool:
    return request.path.startswith("/api/")


def requires(*roles: str) -> Callable[[F], F]:
    """Allow only these roles. Records the rule on the view for the access-control tests."""
    def wrap(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                if not _is_api() and request.method == "GET":
                    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
                raise ApiError("unauthenticated", _("Log in or send a bearer token."), 401)
            if principal.role not in roles:
                _audit_forbidden(principal)
                raise ApiError("forbidden", _("The role %(role)s may not do this.", role=principal.role), 403)
            if principal.via == "session" and request.method in UNSAFE:
                check_csrf()
            return view(*args, **kwargs)
        guarded.floor_roles = tuple(roles)  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]
    return wrap


def public(view: F) -> F:
    view.floor_roles = ()  # type: ignore[attr-defined]
    return view


def socket_event(*roles: str) -> Callable[[F], F]:
    """A Socket.IO handler `on_x(self, data)` of a namespace with `_principal()`: only
    these roles; others get the ack {"ok": false, "code": "forbidden"}. Records the rule, like
    `requires`, for the access-control tests (a handler without a rule fails them)."""
    def wrap(handler: F) -> F:
        @functools.wraps(handler)
        def guarded(self: Any, *args: Any) -> Any:
            principal = self._principal()
            if principal is None:
                return {"ok": False, "code": "unauthenticated",
                        "message": _("Log in or send a bearer token.")}
            if principal.role not in roles:
                return {"ok": False, "code": "forbidden",
                        "message": _("The role %(role)s may not do this.", role=principal.role)}
            g.principal = principal   # what warehouse_scope() and the use cases read
            return handler(self, *args)
        guarded.floor_roles = tuple(roles)  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]
    return wrap


def check_csrf() -> None:
    token = request.headers.get("X-CSRFToken") or request.form.get("csrf_token", "")
    try:
        validate_csrf(token)
    except CSRFError as exc:
        raise ApiError("csrf_failed", _("The form expired or was not sent from this site; reload the page."),
                       400, detail=exc.description) from None
    except Exception:
        raise ApiError("csrf_failed", _("The form expired or was not sent from this site; reload the page."),
                       400) from None


def actor() -> Principal:
    principal = current_principal()
    assert principal is not None, "actor() outside a guarded view"
    return principal
