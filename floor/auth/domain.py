"""Pure rules of authentication: roles, token format, login throttling, socket admission."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

ROLES = ("packer", "qc", "supervisor", "integration", "device")
TOKEN_PREFIX = "flr_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are stored as sha256: they are long random strings, so no slow hash is needed."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins within `window` (see docs/security.md, "Login throttling")."""
    window: dt.timedelta = dt.timedelta(minutes=5)
    per_name_and_address: int = 5     # one address guessing one name: that address is locked for it
    per_address: int = 20             # one address guessing many names: locked for every name
    name_backoff_after: int = 5       # failures of a name from anywhere before it is slowed down
    name_backoff_base: dt.timedelta = dt.timedelta(seconds=1)
    name_backoff_max: dt.timedelta = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class LoginRefusal:
    reason: str                       # "address" | "name_backoff"
    retry_after_s: int


def login_refusal(by_name_and_address: list[dt.datetime], by_address: list[dt.datetime],
                  by_name: list[dt.datetime], now: dt.datetime,
                  limits: LoginLimits) -> LoginRefusal | None:
    """Whether an attempt is refused before its password is looked at.

    The address that failed is locked (per name, and for every name past a higher count); the
    name itself is only slowed down: after `name_backoff_after` failures from anywhere each
    further attempt waits base × 2^(failures − after), at most `name_backoff_max`, after the
    last failure. So a flood from one address locks that address, and the name's rightful user
    elsewhere gets through after a short wait: a locked address adds no failures."""
    def recent(times: list[dt.datetime]) -> list[dt.datetime]:
        return [t for t in times if now - t < limits.window]

    def until_free(times: list[dt.datetime], limit: int) -> int:
        # The lock lifts when the oldest failure that keeps the count at the limit ages out.
        kept = sorted(times)[-limit]
        return max(1, int((kept + limits.window - now).total_seconds() + 0.999))

    pair, addr, name = recent(by_name_and_address), recent(by_address), recent(by_name)
    if len(pair) >= limits.per_name_and_address:
        return LoginRefusal("address", until_free(pair, limits.per_name_and_address))
    if len(addr) >= limits.per_address:
        return LoginRefusal("address", until_free(addr, limits.per_address))
    if len(name) >= limits.name_backoff_after:
        steps = len(name) - limits.name_backoff_after
        delay = min(limits.name_backoff_base * (2 ** min(steps, 30)), limits.name_backoff_max)
        wait = max(name) + delay - now
        if wait > dt.timedelta(0):
            return LoginRefusal("name_backoff", max(1, int(wait.total_seconds() + 0.999)))
    return None


@dataclass(frozen=True)
class SocketLimits:
    """Open Socket.IO connections of one server process (docs/security.md, "Socket admission")."""
    total: int                        # below the worker's capacity: HTTP keeps threads of its own
    per_address: int
    pending_total: int                # connections without a credential yet (auth in CONNECT)
    pending_per_address: int


@dataclass(frozen=True)
class SocketRefusal:
    status: int
    code: str


def socket_admission(credential: str, open_total: int, open_here: int, pending_total: int,
                     pending_here: int, limits: SocketLimits) -> SocketRefusal | None:
    """Whether an Engine.IO handshake may make a session. `credential` is "valid", "invalid"
    (a session cookie or bearer header that names no open login or live token) or "none"."""
    if credential == "invalid":
        return SocketRefusal(401, "unauthenticated")
    if credential == "none" and (pending_total >= limits.pending_total
                                 or pending_here >= limits.pending_per_address):
        return SocketRefusal(401, "unauthenticated")
    if open_total >= limits.total:
        return SocketRefusal(503, "socket_capacity")
    if open_here >= limits.per_address:
        return SocketRefusal(429, "socket_address_limit")
    return None
