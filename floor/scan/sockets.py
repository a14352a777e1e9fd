"""Socket.IO namespace /floor: authenticated connections, `scan` with the verdict as ack,
`subscribe` to rooms with catch-up by `seq`."""
from __future__ import annotations

import logging
import re
from typing import Any

from flask import current_app, request
from flask_socketio import Namespace

from floor.devices.views import heartbeat_of
from floor.auth.security import Principal, principal_from_session, principal_from_token
from floor.errors import ApiError
from floor.scan import messages
from floor.scan.views import SCAN_ROLES, submit_scan

log = logging.getLogger(__name__)
ROOM = re.compile(r"^(warehouse|wave|order|station):[^\x00-\x1f]{1,64}$")
HEARTBEAT_ROLES = ("packer", "qc", "device")
SUBSCRIBE_ROLES = ("packer", "qc", "supervisor", "integration", "device")


class FloorNamespace(Namespace):
    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.principals: dict[str, Principal] = {}

    def on_connect(self, auth: Any = None) -> bool:
        principal = None
        if isinstance(auth, dict) and isinstance(auth.get("token"), str):
            principal = principal_from_token(auth["token"])
        else:
            principal = principal_from_session()
        if principal is None:
            return False  # refused: unauthenticated
        self.principals[request.sid] = principal  # type: ignore[attr-defined]
        return True

    def on_disconnect(self, reason: Any = None) -> None:
        self.principals.pop(request.sid, None)  # type: ignore[attr-defined]
        current_app.extensions["floor.pump"].forget(request.sid)  # type: ignore[attr-defined]

    def _principal(self) -> Principal | None:
        return self.principals.get(request.sid)  # type: ignore[attr-defined]

    def on_scan(self, data: Any = None) -> dict[str, Any]:
        principal = self._principal()
        if principal is None or principal.role not in SCAN_ROLES:
            return {"ok": False, "code": "forbidden", "message": messages.render("forbidden", {})}
        try:
            return submit_scan(data, principal)
        except ApiError as exc:
            return {"ok": False, **exc.to_dict()}
        except Exception:  # noqa: BLE001 - the ack must always come back, with a stable code
            log.exception("scan failed")
            return {"ok": False, "code": "server_error",
                    "message": messages.render("server_error", {})}

    def on_heartbeat(self, data: Any = None) -> dict[str, Any]:
        """{"device_id", "station"} every 20 s from an open handheld screen: online on boards."""
        principal = self._principal()
        if principal is None or principal.role not in HEARTBEAT_ROLES:
            return {"ok": False, "code": "forbidden", "message": "Your role sends no heartbeats."}
        try:
            return heartbeat_of(data, principal)
        except ApiError as exc:
            return {"ok": False, **exc.to_dict()}
        except Exception:  # noqa: BLE001 - answered, never raised into the socket
            log.exception("heartbeat failed")
            return {"ok": False, "code": "server_error", "message": "Heartbeat not recorded."}

    def on_subscribe(self, data: Any = None) -> dict[str, Any]:
        """{"room": "...", "after_seq": N} or {"rooms": [...], "after_seq": N}: the missed events
        of those rooms with seq > N first, then live ones, in order and each once."""
        principal = self._principal()
        if principal is None or principal.role not in SUBSCRIBE_ROLES:
            return {"ok": False, "code": "forbidden",
                    "message": messages.render("forbidden_subscribe", {})}
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
        pump = current_app.extensions["floor.pump"]
        return pump.subscribe(request.sid, rooms, after)  # type: ignore[attr-defined]
