"""Glue shared by the thin entry points: run one use case in one transaction."""
from __future__ import annotations

from typing import Callable, TypeVar

from sqlalchemy.orm import Session

from floor.auth.security import Principal
from floor.db import run_in_transaction
from floor.errors import ApiError
from floor.packing.domain import Actor, DomainError

T = TypeVar("T")


def run(operation: Callable[[Session], T]) -> T:
    """Commit the operation's work or nothing; domain refusals become 4xx ApiErrors."""
    try:
        return run_in_transaction(operation)
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, exc.status, **exc.extra) from None


def actor_of(principal: Principal, device_id: str | None = None, station: str | None = None) -> Actor:
    return Actor(principal.name, principal.role, device_id, station)
