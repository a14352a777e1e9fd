"""Pure rules of authentication: roles, token format, login throttling."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

ROLES = ("packer", "qc", "supervisor", "integration", "device")
TOKEN_PREFIX = "flr_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are stored as sha256: they are long random strings, so no slow hash is needed."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def login_locked(failures: list[dt.datetime], now: dt.datetime, max_failures: int,
                 lockout: dt.timedelta) -> bool:
    """Locked while `max_failures` failures fall inside the last `lockout` period."""
    recent = [t for t in failures if now - t < lockout]
    return len(recent) >= max_failures
