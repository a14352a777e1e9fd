"""Account use cases: tokens and users. Flush only; the caller commits."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from floor.auth.domain import ROLES, new_token, token_digest
from floor.auth.models import ApiToken, User
from floor.packing.operations import warehouse_by_code


def create_token(s: Session, role: str, name: str, warehouse: str | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role}")
    value = new_token()
    warehouse_id = warehouse_by_code(s, warehouse).id if warehouse else None
    s.add(ApiToken(name=name, role=role, digest=token_digest(value), warehouse_id=warehouse_id))
    s.flush()
    return value


def upsert_user(s: Session, username: str, role: str, password: str, display_name: str = "",
                warehouse_id: int | None = None) -> User:
    user = s.scalar(select(User).where(User.username == username))
    hashed = generate_password_hash(password)
    if user is None:
        user = User(username=username, role=role, password_hash=hashed,
                    display_name=display_name or username, warehouse_id=warehouse_id)
        s.add(user)
    else:
        user.role, user.password_hash = role, hashed
        user.display_name = display_name or user.display_name
    s.flush()
    return user
