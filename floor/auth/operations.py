"""Account use cases: tokens, users, the audit log. Flush only; the caller commits."""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from floor.auth.domain import ROLES, new_token, token_digest
from floor.auth.models import ApiToken, AuditEntry, LoginSession, User
from floor.db import utcnow
from floor.packing.domain import DomainError
from floor.packing.models import Warehouse
from floor.packing.operations import warehouse_by_code

AUDIT_ACTIONS = ("login", "login_failed", "login_locked", "logout", "session_expired",
                 "token_created", "token_revoked", "token_used", "override", "session_released",
                 "stock_decision", "forbidden", "other_warehouse_object", "settings_changed")


@dataclass(frozen=True)
class Who:
    """Who did it, for the audit log: an account, or just an address (a failed login)."""
    actor: str = ""
    role: str | None = None
    via: str | None = None
    token_id: int | None = None
    warehouse_id: int | None = None
    remote_addr: str = ""


def audit(s: Session, action: str, who: Who, target: str = "", outcome: str = "ok",
          detail: dict[str, Any] | None = None, at: dt.datetime | None = None) -> None:
    assert action in AUDIT_ACTIONS, action
    s.add(AuditEntry(at=at or utcnow(), actor=who.actor[:100], role=who.role, via=who.via,
                     token_id=who.token_id, warehouse_id=who.warehouse_id,
                     remote_addr=(who.remote_addr or "")[:64], action=action,
                     target=(target or "")[:200], outcome=outcome, detail=detail or {}))


def create_token_row(s: Session, role: str, name: str, warehouse: str | None = None,
                     created_by: str | None = None) -> tuple[ApiToken, str]:
    if role not in ROLES:
        raise DomainError("invalid_role", f"role is one of {', '.join(ROLES)}.", field="role")
    value = new_token()
    warehouse_id = warehouse_by_code(s, warehouse).id if warehouse else None
    row = ApiToken(name=name, role=role, digest=token_digest(value), warehouse_id=warehouse_id,
                   created_by=created_by)
    s.add(row)
    s.flush()
    return row, value


def create_token(s: Session, role: str, name: str, warehouse: str | None = None) -> str:
    """The CLI's `floor token create`: the secret, shown once."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role}")
    row, value = create_token_row(s, role, name, warehouse, created_by="cli")
    audit(s, "token_created", Who(actor="cli"), f"token:{row.id}",
          detail={"name": name, "role": role, "warehouse": warehouse})
    return value


def token_view(row: ApiToken, warehouse_code: str | None) -> dict[str, Any]:
    iso = lambda v: v.isoformat() if v else None  # noqa: E731
    return {"id": row.id, "name": row.name, "role": row.role, "warehouse": warehouse_code,
            "created_at": iso(row.created_at), "created_by": row.created_by,
            "last_used_at": iso(row.last_used_at), "revoked_at": iso(row.revoked_at),
            "revoked_by": row.revoked_by}


def list_tokens(s: Session, scope: int | None, include_revoked: bool = True) -> list[dict[str, Any]]:
    query = (select(ApiToken, Warehouse.code).outerjoin(Warehouse, Warehouse.id == ApiToken.warehouse_id)
             .order_by(ApiToken.id))
    if scope is not None:
        query = query.where(ApiToken.warehouse_id == scope)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return [token_view(row, code) for row, code in s.execute(query)]


def token_in_scope(s: Session, token_id: int, scope: int | None, lock: bool = False) -> ApiToken:
    query = select(ApiToken).where(ApiToken.id == token_id)
    if lock:
        query = query.with_for_update()
    row = s.scalar(query)
    if row is None or (scope is not None and row.warehouse_id != scope):
        raise DomainError("unknown_token", f"No token {token_id}.", 404)
    return row


def revoke_token(s: Session, token_id: int, scope: int | None, by: Who) -> ApiToken:
    """Idempotent: revoking a revoked token changes nothing and is not audited again."""
    row = token_in_scope(s, token_id, scope, lock=True)
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = utcnow(), by.actor
        audit(s, "token_revoked", by, f"token:{row.id}", detail={"name": row.name, "role": row.role})
    s.flush()
    return row


def note_token_use(s: Session, token_id: int, now: dt.datetime, every: dt.timedelta,
                   who: Who) -> bool:
    """last_used_at and a `token_used` audit line, on first use then at most once per `every`.
    The conditional update makes it once even with several processes."""
    first = s.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id)) is None
    done = s.execute(update(ApiToken).where(
        ApiToken.id == token_id,
        or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - every))
        .values(last_used_at=now)).rowcount
    if done:
        audit(s, "token_used", who, f"token:{token_id}", detail={"first_use": first}, at=now)
    return bool(done)


def list_audit(s: Session, scope: int | None, *, action: str | None = None,
               actor: str | None = None, since: dt.datetime | None = None,
               until: dt.datetime | None = None, before_id: int | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; page with before_id (the last id of the previous page)."""
    query = (select(AuditEntry, Warehouse.code).outerjoin(Warehouse, Warehouse.id == AuditEntry.warehouse_id)
             .order_by(AuditEntry.id.desc()).limit(limit))
    if scope is not None:
        query = query.where(AuditEntry.warehouse_id == scope)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "role": e.role, "via": e.via,
             "token_id": e.token_id, "warehouse": code, "remote_addr": e.remote_addr,
             "action": e.action, "target": e.target, "outcome": e.outcome, "detail": e.detail}
            for e, code in s.execute(query)]


def upsert_user(s: Session, username: str, role: str, password: str, display_name: str = "",
                warehouse_id: int | None = None, warehouse: str | None = None) -> User:
    """Create a user, or reset one's role and password (which ends its logins). `warehouse`
    (a code, created on first use as for tokens) limits it to one warehouse; without one a new
    user sees every warehouse and an existing one keeps its own."""
    if warehouse is not None:
        warehouse_id = warehouse_by_code(s, warehouse).id
    user = s.scalar(select(User).where(User.username == username))
    hashed = generate_password_hash(password)
    if user is None:
        user = User(username=username, role=role, password_hash=hashed,
                    display_name=display_name or username, warehouse_id=warehouse_id)
        s.add(user)
    else:
        user.role, user.password_hash = role, hashed
        user.display_name = display_name or user.display_name
        if warehouse_id is not None:
            user.warehouse_id = warehouse_id
        end_login_sessions(s, user.id, "password_changed")
    s.flush()
    return user


def deactivate_user(s: Session, username: str) -> User | None:
    """The user can no longer log in; its logins (and their sockets) end."""
    user = s.scalar(select(User).where(User.username == username))
    if user is not None:
        user.active = False
        end_login_sessions(s, user.id, "deactivated")
        s.flush()
    return user


# --- passwords and login sessions ------------------------------------------------------------

_dummy_hash: list[str] = []


def password_matches(user: User | None, password: str) -> bool:
    """Exactly one password hash verification, whoever is named: an unknown or inactive user
    is checked against a dummy hash made the same way as real ones, so the answer takes as
    long as a wrong password's and does not tell which names exist."""
    if not _dummy_hash:
        _dummy_hash.append(generate_password_hash(secrets.token_hex(16)))
    usable = user is not None and user.active
    stored = user.password_hash if usable else _dummy_hash[0]  # type: ignore[union-attr]
    return check_password_hash(stored, password) and usable


def start_login_session(s: Session, user: User, remote_addr: str, lifetime: dt.timedelta) -> str:
    """A new login of `user`: the secret for its cookie (stored here only as a digest). Logins
    of this user past their lifetime are deleted on the way."""
    now = utcnow()
    s.execute(delete(LoginSession).where(LoginSession.user_id == user.id,
                                         LoginSession.created_at < now - lifetime))
    secret = secrets.token_urlsafe(32)
    s.add(LoginSession(id=token_digest(secret), user_id=user.id, created_at=now,
                       remote_addr=(remote_addr or "")[:64]))
    s.flush()
    return secret


def end_login_session(s: Session, login_id: str, reason: str) -> bool:
    """End one login (by its digest); False when it was already over."""
    return bool(s.execute(update(LoginSession).where(
        LoginSession.id == login_id, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)).rowcount)


def end_login_sessions(s: Session, user_id: int, reason: str) -> int:
    """End every open login of a user (a password change, a deactivation)."""
    return s.execute(update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)).rowcount
