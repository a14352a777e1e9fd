"""Device registry use cases: register, list, heartbeat, state changes. Never commit, never emit:
state changes come back as events for the caller to publish after commit."""
from __future__ import annotations

import datetime as dt
import os
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from floor.db import utcnow
from floor.devices import domain
from floor.devices.models import Device
from floor.eventlog import PendingEvent, record_event
from floor.packing import operations as packing
from floor.packing.domain import Actor, DomainError
from floor.packing.models import Station, Warehouse
from floor.scan import domain as scan_domain
from floor.scan import operations as scan_operations


def _rooms(s: Session, station_code: str | None) -> list[str]:
    if not station_code:
        return []
    station = s.scalar(select(Station).where(Station.code == station_code))
    rooms = [f"station:{station_code}"]
    if station is not None and station.warehouse is not None:
        rooms.insert(0, f"warehouse:{station.warehouse.code}")
    return rooms


def as_dict(device: Device, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "device_id": device.device_id, "kind": device.kind, "station": device.station,
        "state": domain.effective_state(device.kind, device.state, device.last_seen_at, now,
                                 device.state_changed_at),
        "reason": device.state_reason,
        "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
        "last_scan_at": device.last_code_at.isoformat() if device.last_code_at else None,
        "state_changed_at": device.state_changed_at.isoformat() if device.state_changed_at else None,
        "port": device.port, "baudrate": device.baudrate, "terminator": device.terminator,
        "enabled": device.enabled, "registered_by": device.registered_by,
        "scanner_profile": device.scanner_profile,
    }


def _device_event(s: Session, device: Device, by: str, why: str, now: dt.datetime,
                  moved_from: str | None = None) -> PendingEvent:
    """The audit record and the board's push in one: who, which device, when, why. A device
    that moved is announced where it was too (another warehouse's board drops its chip)."""
    rooms = _rooms(s, device.station)
    if moved_from and moved_from != device.station:
        rooms += _rooms(s, moved_from)
    return record_event(s, "device", rooms, {**as_dict(device, now), "by": by, "why": why,
                                             "moved_from": moved_from, "at": now.isoformat()}, now)


def register_device(s: Session, data: Any, actor: Actor,
                    port_globs: Sequence[str] = domain.DEFAULT_SERIAL_PORT_GLOBS,
                    ) -> tuple[dict[str, Any], bool, list[PendingEvent]]:
    """Create or update a device. Registering a serial scanner hands its port to the readers;
    the port must be a device path allowed by `port_globs` (FLOOR_SERIAL_PORT_GLOBS)."""
    try:
        spec = domain.parse_registration(data, port_globs)
        profile_given, profile = domain.parse_scanner_profile(data)
    except domain.RegistrationError as exc:
        fields = {"field": exc.field} if exc.field else {}
        raise DomainError(exc.code, exc.message, 400, **fields) from None
    warehouse_code = data.get("warehouse") if isinstance(data, dict) else None
    if warehouse_code is not None and (not isinstance(warehouse_code, str)
                                       or not 0 < len(warehouse_code) <= 32):
        raise DomainError("invalid_field", "warehouse is a warehouse code.", 400, field="warehouse")
    device_id, station_code = ((spec.device_id, spec.station) if isinstance(spec, domain.SerialSpec)
                               else spec)
    warehouse = None
    if warehouse_code:
        warehouse = s.scalar(select(Warehouse).where(Warehouse.code == warehouse_code))
        if warehouse is None:
            warehouse = Warehouse(code=warehouse_code, name=warehouse_code)
            s.add(warehouse)
            s.flush()
    packing.station_by_code(s, station_code, warehouse)
    now = utcnow()
    device = s.scalar(select(Device).where(Device.device_id == device_id).with_for_update())
    created = device is None
    if device is None:
        device = Device(device_id=device_id, last_seen_at=now)
        s.add(device)
    moved_from = device.station
    device.station, device.registered_by, device.registered_at = station_code, actor.name, now
    if profile_given:
        device.scanner_profile = profile
    if isinstance(spec, domain.SerialSpec):
        changed = (device.kind, device.port, device.baudrate, device.terminator, device.enabled) != (
            "serial", spec.port, spec.baudrate, spec.terminator, spec.enabled)
        device.kind, device.port, device.baudrate = "serial", spec.port, spec.baudrate
        device.terminator, device.enabled = spec.terminator, spec.enabled
        if created or changed:
            # Until its reader has opened the port, a scanner is not known to work.
            device.state = "offline"
            device.state_reason = "waiting for the reader" if spec.enabled else "disabled"
            device.state_changed_at = now
    else:
        device.kind, device.port, device.baudrate, device.terminator = "handheld", None, None, None
    s.flush()
    why = "registered" if created else "registration updated"
    return as_dict(device, now), created, [_device_event(s, device, actor.name, why, now,
                                                         moved_from)]


def devices_on_port(s: Session, port: Any, device_id: Any) -> list[str]:
    """The other serial devices registered on the same serial device as `port` (by its path or
    the one it links to): one port is one physical scanner, whoever registered it."""
    if not isinstance(port, str) or not port.strip() or "\x00" in port:
        return []
    device_id = device_id if isinstance(device_id, str) else ""
    wanted = {port.strip(), os.path.realpath(port.strip())}
    rows = s.execute(select(Device.device_id, Device.port).where(Device.port.is_not(None),
                                                                  Device.device_id != device_id))
    return sorted(other for other, held in rows
                  if held in wanted or os.path.realpath(held) in wanted)


def list_devices(s: Session, warehouse: str | None = None,
                 station: str | None = None) -> list[dict[str, Any]]:
    query = select(Device).order_by(Device.station, Device.device_id)
    if station:
        query = query.where(Device.station == station)
    if warehouse:
        codes = select(Station.code).join(Warehouse, Station.warehouse_id == Warehouse.id).where(
            Warehouse.code == warehouse)
        query = query.where(Device.station.in_(codes))
    now = utcnow()
    return [as_dict(d, now) for d in s.scalars(query)]


def heartbeat(s: Session, device_id: str, station: str, actor: Actor) -> list[PendingEvent]:
    """A handheld's screen is open. Pushes an event only when the device comes (back) online
    or changes station: heartbeats themselves are not news."""
    now = utcnow()
    device = s.scalar(select(Device).where(Device.device_id == device_id).with_for_update())
    if device is None:
        packing.station_ref(s, station)
        device = Device(device_id=device_id, kind="handheld", station=station, state="online",
                        last_seen_at=now, state_changed_at=now, state_reason="heartbeat")
        s.add(device)
        s.flush()
        return [_device_event(s, device, actor.name, "first heartbeat", now)]
    was = domain.effective_state(device.kind, device.state, device.last_seen_at, now,
                                 device.state_changed_at)
    moved_from = device.station
    moved = device.station != station
    if moved:
        packing.station_ref(s, station)
    device.last_seen_at, device.station = now, station
    if device.kind != "handheld":
        return []          # a serial scanner's state is its reader's to set
    if was != "online" or device.state != "online" or moved:
        device.state, device.state_reason, device.state_changed_at = "online", "heartbeat", now
        s.flush()
        return [_device_event(s, device, actor.name,
                              f"moved to {station}" if moved else "back online", now, moved_from)]
    return []


def set_state(s: Session, device_id: str, state: str, reason: str, by: str) -> list[PendingEvent]:
    """A reader reports its scanner online, offline or in error; recorded only on change."""
    if state not in domain.STATES:
        raise ValueError(state)
    now = utcnow()
    device = s.scalar(select(Device).where(Device.device_id == device_id).with_for_update())
    if device is None:
        return []
    if state == "online":
        device.last_seen_at = now
    if device.state == state and device.state_reason == reason:
        return []
    device.state, device.state_reason, device.state_changed_at = state, reason[:200], now
    s.flush()
    return [_device_event(s, device, by, reason, now)]


def mark_silent_handhelds(s: Session, now: dt.datetime | None = None) -> list[PendingEvent]:
    """Handhelds whose heartbeats stopped go offline on the boards (pushed once)."""
    now = now or utcnow()
    events = []
    for device in s.scalars(select(Device).where(Device.kind == "handheld",
                                                 Device.state == "online")):
        if domain.effective_state(device.kind, device.state, device.last_seen_at, now,
                                 device.state_changed_at) == "offline":
            device.state, device.state_reason, device.state_changed_at = "offline", "no heartbeat", now
            s.flush()
            events.append(_device_event(s, device, "floor", "no heartbeat", now))
    return events


def serial_devices(s: Session) -> list[domain.SerialSpec]:
    """The scanners the readers should hold open."""
    rows = s.scalars(select(Device).where(Device.kind == "serial", Device.enabled.is_(True),
                                          Device.port.is_not(None)))
    return [domain.SerialSpec(d.device_id, d.station or "", d.port or "", d.baudrate or 9600,
                              d.terminator, d.enabled) for d in rows]


def record_serial_scan(s: Session, request: scan_operations.ScanRequest, actor: Actor,
                       debounce_ms: int, render: scan_operations.Render,
                       renders: dict[str, scan_operations.Render] | None = None,
                       ) -> scan_operations.ScanResult:
    """A serial scanner's line: the handhelds' scan use case, plus the verdict pushed to the
    station's screen (a serial scanner has no screen of its own). `renders` gives the verdict
    text in each screen language, so every screen shows it in its own."""
    result = scan_operations.record_scan(s, request, actor, debounce_ms, render)
    if not result.replayed:
        response = result.response
        messages = {lang: fn(response["code"], response.get("params") or {})
                    for lang, fn in (renders or {}).items()}
        result.events.append(record_event(s, "scan_verdict", [f"station:{request.station}"], {
            **response, "messages": messages, "device_id": request.device_id,
            "station": request.station, "raw": scan_domain.storable(request.code),
            "at": utcnow().isoformat()}))
    return result
