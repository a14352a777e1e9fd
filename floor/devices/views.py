"""REST entry points of the device registry: register and list devices, handheld heartbeats."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from floor.api import actor_of, run
from floor.auth.security import actor, requires
from floor.auth.scope import (check_not_elsewhere, check_station_code, check_warehouse_code,
                               scope_code, scope_filtered, upserts, warehouse_arg,
                               warehouse_scope)
from floor.db import db_session
from floor.devices import operations
from floor.errors import ApiError, json_body
from floor.publish import publish
from floor.scan.operations import MAX_ID, MAX_STATION

bp = Blueprint("devices", __name__, url_prefix="/api/v1")


def _query_text(name: str, max_len: int) -> str | None:
    value = request.args.get(name)
    if value is None:
        return None
    if not value or len(value) > max_len or any(ord(c) < 32 for c in value):
        raise ApiError("invalid_field", f"Query parameter '{name}' is not valid.", field=name)
    return value


@bp.post("/devices")
@requires("supervisor", "integration")
@scope_filtered("the station, the warehouse named and the device's current station must be "
                "the caller's warehouse's")
@upserts(device_id="device")
def register_device():  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()
    globs = current_app.config["SERIAL_PORT_GLOBS"]

    def op(s):  # type: ignore[no-untyped-def]
        check_station_code(s, data.get("station"))
        body = data
        if warehouse_scope() is not None:
            # A one-warehouse caller neither creates a warehouse by naming it nor leaves a new
            # station unbound: the station becomes the caller's warehouse's.
            warehouse = data.get("warehouse")
            check_warehouse_code(s, warehouse if isinstance(warehouse, str) else None)
            body = {**data, "warehouse": scope_code(s, warehouse_scope())}
        return operations.register_device(s, body, actor_of(principal), globs)

    if warehouse_scope() is not None and data.get("kind", "serial") == "serial":
        # Another warehouse's scanner registered again at one's own station would send its
        # reads there. Checked before the write, as the body's ids are (the refusal is audited).
        s = db_session()
        for other in operations.devices_on_port(s, data.get("port"), data.get("device_id")):
            check_not_elsewhere(s, "device", other, "port")

    body, created, events = run(op)
    publish(events)
    # The readers pick up a new or changed serial scanner now, not at their next tick.
    current_app.extensions["floor.serial"].notify()
    return jsonify(body), 201 if created else 200


@bp.get("/devices")
@requires("supervisor", "integration")
@scope_filtered("?warehouse= forced to the caller's")
def list_devices():  # type: ignore[no-untyped-def]
    devices = operations.list_devices(db_session(), warehouse_arg(_query_text("warehouse", 32)),
                                      _query_text("station", MAX_STATION))
    return jsonify({"devices": devices})


def heartbeat_of(data: object, principal) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Shared by REST and Socket.IO: {"device_id", "station"} -> {"ok": true, "device_id"}."""
    if not isinstance(data, dict):
        raise ApiError("invalid_payload", "A heartbeat is a JSON object.")
    for name, max_len in (("device_id", MAX_ID), ("station", MAX_STATION)):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ApiError("missing_field", f"Missing field: {name}.", fields=[name])
        if len(value) > max_len or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ApiError("invalid_field", f"Field '{name}' must be 1–{max_len} printable characters.",
                           field=name)
    device_id, station = data["device_id"].strip(), data["station"].strip()
    check_station_code(db_session(), station)
    # A heartbeat moves the handheld: another warehouse's device stays where it is.
    check_not_elsewhere(db_session(), "device", device_id, "device_id")
    events = run(lambda s: operations.heartbeat(s, device_id, station,
                                                actor_of(principal, device_id, station)))
    publish(events)
    return {"ok": True, "device_id": device_id}


@bp.post("/devices/heartbeat")
@requires("packer", "qc", "device")
@scope_filtered("the station and the device's current station must be the caller's warehouse's")
@upserts(device_id="device")
def heartbeat():  # type: ignore[no-untyped-def]
    return jsonify(heartbeat_of(json_body(), actor()))
