"""Socket.IO namespace /floor: authenticated connections, `scan` with the verdict as ack,
`subscribe` to rooms with catch-up by `seq`."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from typing import Any

from flask import current_app, request, session
from flask_socketio import Namespace

from floor.devices.views import heartbeat_of
from floor.auth.scope import allows, scope_code, warehouses_of
from floor.auth.models import User
from floor.auth.security import (Principal, audit_now, login_is_open, principal_from_session,
                                 principal_from_token, public, session_login_id, socket_event,
                                 who_of)
from floor.db import db_session, utcnow
from floor.errors import ApiError
from floor.scan import messages
from floor.scan.views import SCAN_ROLES, submit_scan

log = logging.getLogger(__name__)
SESSION_RECHECK = dt.timedelta(seconds=60)


@dataclasses.dataclass(frozen=True)
class SocketSession:
    user_id: int
    password_mark: str          # the session's password fingerprint at connect
    ends_at: dt.datetime        # the login's absolute end
    recheck_at: dt.datetime     # when the user row is looked at again
    login_id: str = ""          # the server-side login (login_sessions.id) it was opened with
ROOM = re.compile(r"^(warehouse|wave|order|station):[^\x00-\x1f]{1,64}$")
HEARTBEAT_ROLES = ("packer", "qc", "device")
SUBSCRIBE_ROLES = ("packer", "qc", "supervisor", "integration", "device")


class FloorNamespace(Namespace):
    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.principals: dict[str, Principal] = {}
        self.tokens: dict[str, str] = {}     # sid -> the bearer token it connected with
        # sid -> how a connection made with a login session stays valid (see _session_over).
        self.sessions: dict[str, SocketSession] = {}

    @public   # checks the token or session itself: refused without one
    def on_connect(self, auth: Any = None) -> bool:
        # The token of the CONNECT packet (the contract's way), else the handshake's bearer
        # header, else the session cookie.
        token = None
        if isinstance(auth, dict) and isinstance(auth.get("token"), str):
            token = auth["token"]
        elif request.headers.get("Authorization", "")[:7].lower() == "bearer ":
            token = request.headers["Authorization"][7:].strip()
        principal = principal_from_token(token) if token is not None else principal_from_session()
        gate = current_app.extensions.get("floor.socket_gate")
        if principal is None:
            if gate is not None:
                gate.refused(request.environ)   # the Engine.IO connection ends too
            return False  # refused: unauthenticated
        if gate is not None:
            gate.admitted(request.environ)
        self.principals[request.sid] = principal  # type: ignore[attr-defined]
        if principal.via == "token":
            self.tokens[request.sid] = token  # type: ignore[assignment]
        else:
            started = dt.datetime.fromisoformat(session["at"])   # valid: checked just above
            lifetime = dt.timedelta(hours=current_app.config.get("SESSION_LIFETIME_H", 12))
            self.sessions[request.sid] = SocketSession(  # type: ignore[attr-defined]
                principal.user_id or 0, str(session.get("pw")), started + lifetime,
                utcnow() + SESSION_RECHECK, session_login_id() or "")
        return True

    def end_login(self, login_id: str) -> int:
        """Close this process's sockets opened with that login (at its logout)."""
        ended = [sid for sid, held in list(self.sessions.items()) if held.login_id == login_id]
        for sid in ended:
            self._end(sid)     # the logout itself is the audit line
        return len(ended)

    @public
    def on_disconnect(self, reason: Any = None) -> None:
        self.principals.pop(request.sid, None)  # type: ignore[attr-defined]
        self.tokens.pop(request.sid, None)  # type: ignore[attr-defined]
        self.sessions.pop(request.sid, None)  # type: ignore[attr-defined]
        current_app.extensions["floor.pump"].forget(request.sid)  # type: ignore[attr-defined]

    def _principal(self) -> Principal | None:
        """The connection's principal; a token revoked since the connect ends it (at once in
        the revoking process, within the token cache's seconds in others)."""
        sid = request.sid  # type: ignore[attr-defined]
        token = self.tokens.get(sid)
        if token is not None and principal_from_token(token) is None:
            self._end(sid)
            return None
        if sid in self.sessions and self._session_over(sid):
            self._end(sid)
            return None
        return self.principals.get(sid)

    def _session_over(self, sid: str) -> bool:
        """A connection made with a login session ends with that session's lifetime, and when
        the user is deactivated or changes password (looked up at most once a minute). Socket
        traffic is activity, so the idle limit does not apply to an open screen."""
        held, now = self.sessions[sid], utcnow()
        if now >= held.ends_at:
            principal = self.principals.get(sid)
            audit_now("session_expired", who_of(principal), f"user:{held.user_id}",
                       detail={"reason": "lifetime", "via": "socket"})
            return True
        if now >= held.recheck_at:
            user = db_session().get(User, held.user_id)
            if user is None or not user.active or user.password_hash[-16:] != held.password_mark \
                    or not login_is_open(held.login_id, held.user_id):
                return True
            self.sessions[sid] = dataclasses.replace(held, recheck_at=now + SESSION_RECHECK)
        return False

    def _end(self, sid: str) -> None:
        self.principals.pop(sid, None)
        self.tokens.pop(sid, None)
        self.sessions.pop(sid, None)
        self.disconnect(sid)

    @socket_event(*SCAN_ROLES)
    def on_scan(self, data: Any = None) -> dict[str, Any]:
        principal = self._principal()
        assert principal is not None
        try:
            return submit_scan(data, principal)
        except ApiError as exc:
            return {"ok": False, **exc.to_dict()}
        except Exception:  # noqa: BLE001 - the ack must always come back, with a stable code
            log.exception("scan failed")
            return {"ok": False, "code": "server_error",
                    "message": messages.render("server_error", {})}

    @socket_event(*HEARTBEAT_ROLES)
    def on_heartbeat(self, data: Any = None) -> dict[str, Any]:
        """{"device_id", "station"} every 20 s from an open handheld screen: online on boards."""
        principal = self._principal()
        assert principal is not None
        try:
            return heartbeat_of(data, principal)
        except ApiError as exc:
            return {"ok": False, **exc.to_dict()}
        except Exception:  # noqa: BLE001 - answered, never raised into the socket
            log.exception("heartbeat failed")
            return {"ok": False, "code": "server_error", "message": "Heartbeat not recorded."}

    @socket_event(*SUBSCRIBE_ROLES)
    def on_subscribe(self, data: Any = None) -> dict[str, Any]:
        """{"room": "...", "after_seq": N} or {"rooms": [...], "after_seq": N}: the missed events
        of those rooms with seq > N first, then live ones, in order and each once.
        A client limited to one warehouse may join only that warehouse's rooms."""
        principal = self._principal()
        assert principal is not None
        if not isinstance(data, dict):
            return {"ok": False, "code": "invalid_payload", "message": "subscribe takes an object."}
        rooms = data.get("rooms") if "rooms" in data else [data.get("room")]
        after = data.get("after_seq", 0)
        if (not isinstance(rooms, list) or not 0 < len(rooms) <= 20
                or not all(isinstance(r, str) and ROOM.match(r) for r in rooms)):
            return {"ok": False, "code": "invalid_room",
                    "message": "room is warehouse:<code>, wave:<no>, order:<no> or station:<id>."}
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            return {"ok": False, "code": "invalid_field", "message": "after_seq is a whole number."}
        scope = None
        if principal.warehouse_id is not None:
            s = db_session()
            scope = scope_code(s, principal.warehouse_id) or ""
            refused = [room for room in rooms if not _room_allowed(s, room, principal.warehouse_id, scope)]
            if refused:
                return {"ok": False, "code": "forbidden_room", "rooms": refused,
                        "message": "Those rooms belong to another warehouse."}
        pump = current_app.extensions["floor.pump"]
        return pump.subscribe(request.sid, rooms, after, scope=scope)  # type: ignore[attr-defined]


def _room_allowed(s: Any, room: str, warehouse_id: int, code: str | None) -> bool:
    """A warehouse room only by its exact code; an order, wave or station room when what it
    names is not of another warehouse (the pump still withholds other warehouses' events)."""
    kind, _, value = room.partition(":")
    if kind == "warehouse":
        return value == code
    return allows(warehouse_id, warehouses_of(s, kind, value))
