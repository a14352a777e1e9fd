from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from floor.db import Base, utcnow


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(100))
    revoked_by: Mapped[str | None] = mapped_column(String(100))


class LoginSession(Base):
    """A login held on the server: the signed cookie carries a secret whose digest is `id`.
    Logout, a password change and a deactivation end it, so a copied cookie stops working."""
    __tablename__ = "login_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)   # sha256 of the cookie's secret
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    ended_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))      # logout | password_changed | deactivated


class LoginFailure(Base):
    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Append-only: who logged in or failed to, overrode a verdict, made, revoked or used a token."""
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_warehouse_at", "warehouse_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str | None] = mapped_column(String(32))
    via: Mapped[str | None] = mapped_column(String(16))            # session | token | None
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id"))
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok | refused | failed
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
