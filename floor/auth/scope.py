"""Warehouse scoping: a principal with a warehouse sees and changes only that warehouse.

Every guarded route declares its scope rule next to its roles, and the access tests walk the
URL map to check each one has a rule (a new route without one fails):

- `@scoped(order_no="order", ...)`: each named URL parameter names an object of a warehouse;
  before the view runs, an object of another warehouse answers the same 404 as an object that
  does not exist (its existence is not leaked);
- `@scope_filtered("why")`: a listing or body-driven route that filters/checks by
  `warehouse_scope()` itself (the reason says how);
- `@scope_free("why")`: the route touches no warehouse-bound data (a barcode image, a language);
- `@all_warehouses_only`: configuration of the whole site (webhooks, ...): a principal limited to
  one warehouse gets 403 `all_warehouses_only`.

A principal whose warehouse_id is NULL (a token created without --warehouse, a user without a
warehouse) works in every warehouse. Objects whose warehouse is not known yet (a station no
order, wave or one-warehouse scan has bound) are usable by every principal.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, TypeVar

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from floor.db import db_session
from floor.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])
Resolver = Callable[[Session, Any], list[Any]]


def warehouse_scope() -> int | None:
    """The warehouse id the current caller is limited to; None: every warehouse."""
    from floor.auth.security import current_principal
    principal = current_principal()
    return principal.warehouse_id if principal is not None else None


def allows(scope: int | None, warehouse_ids: Iterable[int | None]) -> bool:
    """Whether a caller limited to `scope` may touch an object of these warehouses
    (None in the list: not bound to a warehouse yet)."""
    return scope is None or all(w is None or w == scope for w in warehouse_ids)


def warehouse_id_of_code(s: Session, code: str | None) -> int | None:
    from floor.packing.models import Warehouse
    if not code:
        return None
    return s.scalar(select(Warehouse.id).where(Warehouse.code == code))


def scope_code(s: Session, scope: int | None) -> str | None:
    from floor.packing.models import Warehouse
    return None if scope is None else s.scalar(select(Warehouse.code).where(Warehouse.id == scope))


def check_warehouse_code(s: Session, code: str | None) -> None:
    """A body or query naming a warehouse: a caller of another warehouse is refused (403: the
    caller named it, so nothing is leaked)."""
    scope = warehouse_scope()
    if scope is None or code is None:
        return
    if warehouse_id_of_code(s, code) != scope:
        raise ApiError("warehouse_forbidden", _("Your access is limited to another warehouse."), 403)


def check_station_code(s: Session, station: Any) -> None:
    """A scan, heartbeat or registration at a station of another warehouse is refused."""
    scope = warehouse_scope()
    if scope is None or not isinstance(station, str):
        return
    if not allows(scope, _station(s, station)):
        raise ApiError("warehouse_forbidden", _("That station belongs to another warehouse."), 403)


def bind_station_to_scope(s: Session, station: str) -> None:
    """A station first used by a one-warehouse caller (created on first use, or not bound yet)
    becomes that warehouse's: its scans then name only that warehouse's orders."""
    scope = warehouse_scope()
    if scope is None:
        return
    from floor.packing.models import Warehouse
    from floor.packing.operations import station_by_code
    station_by_code(s, station, s.get(Warehouse, scope))


# --- resolvers: URL parameter value -> the warehouse ids of the object(s) it names -----------

def _order(s: Session, order_no: Any) -> list[Any]:
    from floor.packing.models import Order
    query = select(Order.warehouse_id).where(Order.order_no == str(order_no))
    scope = warehouse_scope()
    if scope is not None:
        # Order numbers are per warehouse: the caller's own order of that number is the one
        # it names, whatever other warehouses use the number for.
        own = s.scalar(query.where(Order.warehouse_id == scope).limit(1))
        if own is not None:
            return [own]
    return list(s.scalars(query.limit(10)))


def _wave(s: Session, wave_no: Any) -> list[Any]:
    from floor.packing.models import Order, Wave
    row = s.execute(select(Wave.id, Wave.warehouse_id).where(Wave.wave_no == str(wave_no))).first()
    if row is None:
        return []
    if row.warehouse_id is not None:
        return [row.warehouse_id]
    return list(s.scalars(select(Order.warehouse_id).where(Order.wave_id == row.id).distinct())) or [None]


def _station(s: Session, code: Any) -> list[Any]:
    from floor.packing.models import Station
    row = s.execute(select(Station.warehouse_id).where(Station.code == str(code))).first()
    return [] if row is None else [row.warehouse_id]


def _warehouse(s: Session, code: Any) -> list[Any]:
    found = warehouse_id_of_code(s, str(code))
    return [] if found is None else [found]


def _return(s: Session, rma_no: Any) -> list[Any]:
    from floor.returns.models import ReturnOrder
    code = s.scalar(select(ReturnOrder.warehouse).where(ReturnOrder.rma_no == str(rma_no)))
    return [] if code is None else [warehouse_id_of_code(s, code)]


def _return_code(s: Session, code: Any) -> list[Any]:
    from floor.packing.domain import DomainError
    from floor.returns.operations import by_code
    try:
        ret = by_code(s, str(code), warehouse_scope())
    except DomainError:
        return []
    return [warehouse_id_of_code(s, ret.warehouse)]


def _scan(s: Session, scan_id: Any) -> list[Any]:
    from floor.packing.models import Order
    from floor.scan.models import ScanEvent
    row = s.execute(select(ScanEvent.order_id, ScanEvent.station)
                    .where(ScanEvent.scan_id == str(scan_id))).first()
    if row is None:
        return []
    if row.order_id is not None:
        return [s.scalar(select(Order.warehouse_id).where(Order.id == row.order_id))]
    return _station(s, row.station) or [None]


def _pack_session(s: Session, session_id: Any) -> list[Any]:
    from floor.packing.models import Order, PackSession
    found = s.scalar(select(Order.warehouse_id).join(PackSession, PackSession.order_id == Order.id)
                     .where(PackSession.id == int(session_id)))
    return [] if found is None else [found]


def _alert(s: Session, alert_id: Any) -> list[Any]:
    from floor.live.models import Alert
    row = s.execute(select(Alert.warehouse).where(Alert.id == int(alert_id))).first()
    return [] if row is None else [warehouse_id_of_code(s, row.warehouse)]


def _camera(s: Session, camera_id: Any) -> list[Any]:
    from floor.evidence.models import Camera
    station = s.scalar(select(Camera.station).where(Camera.camera_id == str(camera_id)))
    return [] if station is None else (_station(s, station) or [None])


def _recording(s: Session, recording_id: Any) -> list[Any]:
    from floor.evidence.models import Camera, Recording
    station = s.scalar(select(Camera.station).join(Recording, Recording.camera_id == Camera.id)
                       .where(Recording.id == int(recording_id)))
    return [] if station is None else (_station(s, station) or [None])


def _printer(s: Session, printer_id: Any) -> list[Any]:
    from floor.devices.models import Printer
    station = s.scalar(select(Printer.station).where(Printer.printer_id == str(printer_id)))
    return [] if station is None else (_station(s, station) or [None])


def _device(s: Session, device_id: Any) -> list[Any]:
    from floor.devices.models import Device
    row = s.execute(select(Device.station).where(Device.device_id == str(device_id))).first()
    if row is None:
        return []
    return (_station(s, row.station) or [None]) if row.station else [None]


def _print_job(s: Session, job_id: Any) -> list[Any]:
    from floor.devices.models import Printer, PrintJob
    row = s.execute(select(PrintJob.order_no, Printer.station)
                    .join(Printer, Printer.id == PrintJob.printer_id)
                    .where(PrintJob.job_id == str(job_id))).first()
    if row is None:
        return []
    return (_order(s, row.order_no) if row.order_no else []) + (_station(s, row.station) or [None])


def _token(s: Session, token_id: Any) -> list[Any]:
    from floor.auth.models import ApiToken
    row = s.execute(select(ApiToken.warehouse_id).where(ApiToken.id == int(token_id))).first()
    # A token of every warehouse is beyond any one warehouse: "*" matches no scope.
    return [] if row is None else [row.warehouse_id if row.warehouse_id is not None else "*"]


# kind -> (resolver, the code and message the view answers for an object that does not exist)
KINDS: dict[str, tuple[Resolver, str, str]] = {
    "order": (_order, "unknown_order", "No order {}."),
    "wave": (_wave, "unknown_wave", "No wave {}."),
    "station": (_station, "unknown_station", "No station {}."),
    "warehouse": (_warehouse, "unknown_warehouse", "No warehouse {}."),
    "return": (_return, "unknown_return", "No return {}."),
    "return_code": (_return_code, "no_open_return", "That code names no open return."),
    "scan": (_scan, "unknown_scan", "No scan {}."),
    "pack_session": (_pack_session, "no_open_session", "No open pack session with that id."),
    "alert": (_alert, "unknown_alert", "No alert {}."),
    "camera": (_camera, "unknown_camera", "No camera {}."),
    "recording": (_recording, "unknown_recording", "No recording {}."),
    "printer": (_printer, "unknown_printer", "No printer {}."),
    "device": (_device, "unknown_device", "No device {}."),
    "print_job": (_print_job, "unknown_job", "No print job {}."),
    "token": (_token, "unknown_token", "No token {}."),
}


WITHIN = "within"


def warehouses_of(s: Session, kind: str, value: Any) -> list[Any]:
    return KINDS[kind][0](s, value)


def check_object(s: Session, kind: str, value: Any) -> None:
    """An object named in a body: one of another warehouse answers as if it did not exist."""
    scope = warehouse_scope()
    if scope is not None and not allows(scope, warehouses_of(s, kind, value)):
        _, code, message = KINDS[kind]
        raise ApiError(code, message.format(value), 404)


def scoped(**params: str) -> Callable[[F], F]:
    """Each keyword names a URL parameter and the kind of object it names (see KINDS), or
    WITHIN: a part of the object another parameter names (a frame of a recording)."""
    for kind in params.values():
        if kind not in KINDS and kind != WITHIN:
            raise ValueError(f"unknown scope kind {kind}")

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if warehouse_scope() is not None:
                for name, kind in params.items():
                    if name in kwargs and kind != WITHIN:
                        check_object(db_session(), kind, kwargs[name])
            return view(*args, **kwargs)
        checked.floor_scope = dict(params)  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]
    return wrap


def scope_filtered(reason: str) -> Callable[[F], F]:
    def wrap(view: F) -> F:
        view.floor_scope = {"filtered": reason}  # type: ignore[attr-defined]
        return view
    return wrap


def scope_free(reason: str) -> Callable[[F], F]:
    def wrap(view: F) -> F:
        view.floor_scope = {"free": reason}  # type: ignore[attr-defined]
        return view
    return wrap


def all_warehouses_only(view: F) -> F:
    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if warehouse_scope() is not None:
            raise ApiError("all_warehouses_only",
                           _("Only an account for every warehouse may do this."), 403)
        return view(*args, **kwargs)
    checked.floor_scope = {"all_warehouses": True}  # type: ignore[attr-defined]
    return checked  # type: ignore[return-value]


def order_warehouse_id(s: Session, data: Any = None) -> int | None:
    """Which warehouse's order an order number names for this caller (order numbers are per
    warehouse): the caller's own when limited to one; else the warehouse named by `?warehouse=`
    (or the body's `warehouse`); else None: any, and a number several warehouses use is then
    refused as `ambiguous_order`. Naming another warehouse than one's own is refused (403)."""
    from flask import request
    named = request.args.get("warehouse")
    if named is None and isinstance(data, dict) and isinstance(data.get("warehouse"), str):
        named = data["warehouse"]
    if named is not None and (not named or len(named) > 32 or any(ord(c) < 32 for c in named)):
        raise ApiError("invalid_field", "Parameter 'warehouse' is not valid.", field="warehouse")
    scope = warehouse_scope()
    if named:
        check_warehouse_code(s, named)
    if scope is not None or not named:
        return scope
    found = warehouse_id_of_code(s, named)
    if found is None:
        raise ApiError("unknown_warehouse", f"No warehouse {named}.", 404)
    return found


def warehouse_arg(given: str | None) -> str | None:
    """A listing's `?warehouse=`: a caller limited to one warehouse gets that one (naming
    another is refused); a caller of every warehouse gets what it named (None: all)."""
    scope = warehouse_scope()
    if scope is None:
        return given
    s = db_session()
    if given:
        check_warehouse_code(s, given)
    return scope_code(s, scope)


# --- objects named in a body ---------------------------------------------------------------------

UPSERT, USE = "upsert", "use"


def check_not_elsewhere(s: Session, kind: str, value: Any, field: str) -> None:
    """A create-or-update naming an existing object by its id: one that is now in another
    warehouse (its station is another warehouse's) is refused with 409 `<field>_in_use`, so a
    one-warehouse account cannot move it to its own station, take it over or replay it. What
    it is and where it is are not shown. The refusal is audited (once per caller and id per
    security.REFUSAL_AUDIT_S)."""
    from flask import g
    scope = warehouse_scope()
    if scope is None or not isinstance(value, str) or not value.strip():
        return
    checked = g.setdefault("floor_ids_checked", set())
    if (kind, value.strip()) in checked:          # the route's rule and the shared use case's
        return
    if allows(scope, warehouses_of(s, kind, value.strip())):
        checked.add((kind, value.strip()))
        return
    _audit_refusal(f"{field}_in_use", f"{kind}:{value.strip()[:64]}")
    raise ApiError(f"{field}_in_use",
                   _("That %(field)s is already in use in another warehouse; choose another.",
                     field=field), 409, field=field)


def _audit_refusal(code: str, target: str) -> None:
    from floor.auth.security import audit_refusal_once, current_principal
    audit_refusal_once(current_principal(), "other_warehouse_object", target, {"code": code},
                       key=(code, target))


def check_body_objects(s: Session, data: Any, fields: dict[str, tuple[str, str]]) -> None:
    """The ids a body names (`fields`: body field -> (kind, UPSERT | USE)), against the caller's
    warehouse: an upsert of another warehouse's object is 409 `<field>_in_use`; an object to
    use (a printer to print on) of another warehouse answers as missing (404)."""
    if warehouse_scope() is None or not isinstance(data, dict):
        return
    for field, (kind, mode) in fields.items():
        value = data.get(field)
        if not isinstance(value, str) or not value.strip():
            continue
        if mode == UPSERT:
            check_not_elsewhere(s, kind, value, field)
        else:
            check_object(s, kind, value.strip())


def _body_rule(mode: str, fields: dict[str, str]) -> Callable[[F], F]:
    for kind in fields.values():
        if kind not in KINDS:
            raise ValueError(f"unknown scope kind {kind}")

    def wrap(view: F) -> F:
        declared = {**getattr(view, "floor_body", {}), **{f: (k, mode) for f, k in fields.items()}}

        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if warehouse_scope() is not None:
                from flask import request
                data = request.get_json(force=True, silent=True)
                check_body_objects(db_session(), data, declared)
            return view(*args, **kwargs)
        checked.floor_body = declared  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]
    return wrap


def upserts(**fields: str) -> Callable[[F], F]:
    """Each keyword names a body field holding the id of the object the route creates or
    updates (`device_id="device"`): an existing one of another warehouse is refused (409).
    The access tests walk these declarations from the URL map."""
    return _body_rule(UPSERT, fields)


def uses(**fields: str) -> Callable[[F], F]:
    """Each keyword names a body field holding the id of an existing object the route acts
    with (`printer_id="printer"`): one of another warehouse answers as missing (404)."""
    return _body_rule(USE, fields)
