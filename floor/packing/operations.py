"""Packing use cases: load, decide, change, flush. Never commit, never emit.

Each returns the events to publish; the entry point commits, then publishes them.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, joinedload

from floor.db import utcnow
from floor.eventlog import EventCounter, PendingEvent, record_event
from floor.packing import domain
from floor.packing.domain import Actor, DomainError, KitError
from floor.packing.models import (KitSnapshot, Order, Override, PackCursor, PackSession, Sku,
                                  SkuBarcode, SnapshotSku, Station, StatusEvent, Warehouse, Wave,
                                  WaybillChange)

OVERRIDE_REASONS = ("label_damaged", "substitute_approved", "stock_out_waived",
                    "customer_request", "scanner_fault", "other")
OVERRIDABLE = frozenset({"wrong_item", "unknown_code", "other_order", "giftbox_incomplete",
                         "unreadable"})


def clean_text(data: dict[str, Any], name: str, max_len: int, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise DomainError("missing_field", f"Missing field: {name}.", fields=[name])
        return None
    if not isinstance(value, str):
        raise DomainError("invalid_field", f"Field '{name}' must be a string.", field=name)
    value = value.strip()
    if not value or len(value) > max_len or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise DomainError("invalid_field",
                          f"Field '{name}' must be 1–{max_len} printable characters.", field=name)
    return value


# --- places ---------------------------------------------------------------------------------

def warehouse_by_code(s: Session, code: str) -> Warehouse:
    """Warehouses named in a call are created on first use."""
    row = s.scalar(select(Warehouse).where(Warehouse.code == code))
    if row is None:
        row = Warehouse(code=code, name=code)
        s.add(row)
        s.flush()
    return row


_STATION = select(Station).where(Station.code == bindparam("code"))
_STATION_REF = (select(Station.id, Station.code, Station.kind, Station.warehouse_id,
                       Warehouse.code.label("warehouse_code"),
                       Warehouse.settings.label("warehouse_settings"))
                .outerjoin(Warehouse, Warehouse.id == Station.warehouse_id)
                .where(Station.code == bindparam("code")))


def station_ref(s: Session, code: str) -> Any:
    """(id, code, kind, warehouse_id, warehouse_code) of a station, created on first use; a
    plain row on the scan's hot path."""
    row = s.connection().execute(_STATION_REF, {"code": code}).first()
    if row is None:
        station_by_code(s, code)
        row = s.connection().execute(_STATION_REF, {"code": code}).first()
    return row


def station_by_code(s: Session, code: str, warehouse: Warehouse | None = None) -> Station:
    row = s.scalar(_STATION, {"code": code})
    if row is None:
        row = Station(code=code, warehouse_id=warehouse.id if warehouse else None)
        s.add(row)
        s.flush()
    elif row.warehouse_id is None and warehouse is not None:
        row.warehouse_id = warehouse.id
    return row


def rooms_for(order: Order, station: str | None = None) -> list[str]:
    rooms = [f"warehouse:{order.warehouse.code}", f"order:{order.order_no}"]
    if order.wave is not None:
        rooms.append(f"wave:{order.wave.wave_no}")
    if station:
        rooms.append(f"station:{station}")
    return rooms


# --- micro-status ---------------------------------------------------------------------------

def set_status(s: Session, order: Order, status: str, actor: Actor, reason: str = "",
               at: dt.datetime | None = None,
               machine: domain.StatusMachine | None = None) -> PendingEvent:
    """Move the order to `status`, recording a StatusEvent and a pushed `status` event."""
    machine = machine or machine_for(order)
    if not machine.can_transition(order.status, status):
        raise DomainError("illegal_transition",
                          f"Order {order.order_no} cannot go from {order.status} to {status}.", 409)
    previous = order.status
    order.status = status
    order.updated_at = utcnow()
    return _record_status(s, order, previous, actor, reason, at or utcnow())


def machine_for(order: Order) -> domain.StatusMachine:
    return domain.StatusMachine.from_settings(order.warehouse.settings)


_STATUS_INSERT = StatusEvent.__table__.insert()


def packing_at(s: Session, order: Order) -> dict[str, str] | None:
    """Where the order is being packed now: the station and device of its open session."""
    row = s.execute(select(Station.code, PackSession.device_id)
                    .join(Station, Station.id == PackSession.station_id)
                    .where(PackSession.order_id == order.id, PackSession.state == "open")).first()
    return {"station": row[0], "device_id": row[1]} if row is not None else None


def _record_status(s: Session, order: Order, previous: str | None, actor: Actor, reason: str,
                   at: dt.datetime) -> PendingEvent:
    rooms, held = rooms_for(order, actor.station), None
    if order.status in domain.SIDE_STATES or previous in domain.SIDE_STATES:
        # Held, cancelled (or let go again) while being packed: the handheld holding it hears
        # it at once, in its station's room, not at its next scan.
        held = packing_at(s, order)
        if held is not None:
            rooms.append(f"station:{held['station']}")
    event = record_event(s, "status", rooms, {
        "order_no": order.order_no, "channel": order.channel, "status": order.status,
        "from": previous, "at": at.isoformat(), "by": actor.name, "role": actor.role,
        "device_id": actor.device_id, "station": actor.station, "reason": reason,
        "wave_no": order.wave.wave_no if order.wave else None,
        **({"packing_at": held} if held is not None else {})})
    s.connection().execute(_STATUS_INSERT, {"seq": event.payload["seq"], "order_id": order.id,
                               "from_status": previous, "status": order.status, "at": at,
                               "by": actor.name, "role": actor.role, "device_id": actor.device_id,
                               "station": actor.station, "reason": reason})
    return event


# --- orders from the OMS --------------------------------------------------------------------

def _remember_barcodes(s: Session, warehouse_id: int, kit: domain.Kit) -> None:
    """Keep the warehouse's catalogue current: which SKU each barcode means there, for
    refusals elsewhere. Another warehouse's catalogue is never touched."""
    for line in kit.lines:
        sku = s.scalar(select(Sku).where(Sku.warehouse_id == warehouse_id, Sku.code == line.sku))
        if sku is None:
            sku = Sku(warehouse_id=warehouse_id, code=line.sku, name=line.name)
            s.add(sku)
            s.flush()
        elif sku.name != line.name:
            sku.name = line.name
        for code in line.barcodes:
            mapping = s.get(SkuBarcode, (code, warehouse_id))
            if mapping is None:
                s.add(SkuBarcode(warehouse_id=warehouse_id, barcode=code, sku_id=sku.id))
            elif mapping.sku_id != sku.id:
                mapping.sku_id = sku.id
    s.flush()


def catalog_entry(s: Session, warehouse_id: int | None, keys: Any) -> Sku | None:
    """The SKU the first of these codes means in the warehouse's catalogue. Without a
    warehouse (a station none has bound yet: only accounts of every warehouse scan there, a
    one-warehouse account binds it first), the first warehouse's that knows the code."""
    for key in keys:
        if warehouse_id is not None:
            mapping = s.get(SkuBarcode, (key, warehouse_id))
        else:
            mapping = s.scalar(select(SkuBarcode).where(SkuBarcode.barcode == key)
                               .order_by(SkuBarcode.warehouse_id).limit(1))
        if mapping is not None:
            return mapping.sku
    return None


def sku_names(s: Session, warehouse_id: int, codes: Any) -> dict[str, str]:
    """The warehouse's catalogue names of these SKU codes."""
    codes = sorted(set(codes))
    if not codes:
        return {}
    return dict(s.execute(select(Sku.code, Sku.name).where(Sku.warehouse_id == warehouse_id,
                                                           Sku.code.in_(codes))).all())


def _freeze(s: Session, order: Order, kit: domain.Kit, actor: Actor, reason: str) -> KitSnapshot:
    version = (s.scalar(select(func.max(KitSnapshot.version))
                        .where(KitSnapshot.order_id == order.id)) or 0) + 1
    snap = KitSnapshot(order_id=order.id, version=version, content_hash=kit.content_hash(),
                       lines=[line.as_dict() for line in kit.lines], created_by=actor.name,
                       reason=reason)
    s.add(snap)
    s.flush()
    for sku in {line.sku for line in kit.lines}:
        s.add(SnapshotSku(snapshot_id=snap.id, sku=sku))
    order.snapshot_id = snap.id
    order.snapshot = snap
    return snap


def _waybill_holder(s: Session, order: Order, waybill_no: str) -> None:
    """Waybills are unique across warehouses; one bound in another warehouse is named as in
    use without its order (nor that warehouse)."""
    holder = s.execute(select(Order.order_no, Order.warehouse_id)
                       .where(Order.waybill_no == waybill_no, Order.id != order.id)).first()
    if holder is None:
        return
    if holder.warehouse_id != order.warehouse_id:
        raise DomainError("waybill_in_use", f"Waybill {waybill_no} is already in use.", 409)
    raise DomainError("waybill_in_use", f"Waybill {waybill_no} is bound to order {holder.order_no}.",
                      409, order_no=holder.order_no)


def bind_waybill(s: Session, order: Order, waybill_no: str) -> None:
    _waybill_holder(s, order, waybill_no)
    order.waybill_no = waybill_no


# --- tracking numbers in --------------------------------------------------------------------

# What an OMS may bind: carriers' numbers are letters and digits (some all digits), a few use
# hyphens. No spaces or symbols: the number must scan back exactly as it was sent.
WAYBILL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{5,39}$")
WAYBILL_CLOSED = frozenset({domain.CANCELLED, domain.HANDED_OVER})
LABEL_PRINTED = frozenset({domain.LABELLING, domain.LABELLED, domain.AWAITING_LOADING,
                           domain.LOADING, domain.LOADED})


def clean_waybill(data: dict[str, Any]) -> str:
    value = data.get("waybill_no")
    if value is None or value == "":
        raise DomainError("missing_field", "Missing field: waybill_no.", fields=["waybill_no"])
    if not isinstance(value, str) or not WAYBILL_PATTERN.match(value.strip()):
        raise DomainError("invalid_waybill", "waybill_no is 6–40 letters, digits or hyphens, "
                                             "starting with a letter or digit.", field="waybill_no")
    return value.strip()


def _check_waybill_free(s: Session, order: Order, waybill_no: str) -> None:
    """A waybill opens its order when scanned: it may name no other order, nor an item (of
    the order's warehouse: a station's scans name only its warehouse's orders and items)."""
    _waybill_holder(s, order, waybill_no)
    named = s.scalar(select(Order.order_no).where(Order.order_no == waybill_no, Order.id != order.id,
                                                  Order.warehouse_id == order.warehouse_id).limit(1))
    if named is not None:
        raise DomainError("waybill_in_use", f"{waybill_no} is the number of order {named}; a scan "
                                            "of it could not tell the two apart.", 409, order_no=named)
    if s.get(SkuBarcode, (waybill_no, order.warehouse_id)) is not None:
        raise DomainError("waybill_is_item_code", f"{waybill_no} is an item's barcode; a scan of it "
                                                  "would count as that item.", 409)


def change_waybill(s: Session, order: Order, waybill_no: str, actor: Actor, reason: str = "",
                   via: str = "") -> tuple[WaybillChange | None, list[PendingEvent]]:
    """Bind or replace the order's waybill, recorded (an audit row and a `waybill` event);
    then settle what waited for it: an order complete but for its waybill becomes `packed`,
    the missing-tracking-number alert clears. The same number again changes nothing."""
    if waybill_no != order.waybill_no:
        if order.status in WAYBILL_CLOSED:
            raise DomainError("order_closed", f"Order {order.order_no} is {order.status}; its "
                                              "waybill can no longer change.", 409,
                              order_status=order.status)
        _check_waybill_free(s, order, waybill_no)
    open_row = s.scalar(select(PackSession).where(PackSession.order_id == order.id,
                                                  PackSession.state == "open").with_for_update())
    station = open_row.station.code if open_row is not None else None
    change, events = None, []
    if waybill_no != order.waybill_no:
        now = utcnow()
        old, status_then = order.waybill_no, order.status
        order.waybill_no, order.updated_at = waybill_no, now
        event = record_event(s, "waybill", rooms_for(order, station), {
            "order_no": order.order_no, "channel": order.channel,
            "warehouse": order.warehouse.code, "waybill_no": waybill_no,
            "old_waybill_no": old, "status": order.status, "reason": reason, "by": actor.name,
            "role": actor.role, "via": via, "device_id": actor.device_id,
            "at": now.isoformat()}, now)
        change = WaybillChange(order_id=order.id, old_waybill_no=old, new_waybill_no=waybill_no,
                               reason=reason, by=actor.name, role=actor.role, via=via,
                               device_id=actor.device_id, order_status=status_then,
                               seq=event.payload["seq"], at=now)
        s.add(change)
        s.flush()
        events.append(event)
    events += _settle_waybill_wait(s, order, open_row, actor, waybill_no)
    return change, events


def _settle_waybill_wait(s: Session, order: Order, open_row: PackSession | None, actor: Actor,
                         waybill_no: str) -> list[PendingEvent]:
    from floor.devices import print_operations  # imports this module
    from floor.live import operations as live_ops  # imports this module

    events: list[PendingEvent] = []
    if open_row is not None and order.status == domain.PACKING:
        state = pack_state(open_row)
        if state.is_complete():
            # Every line was packed and only the waybill was missing: the pack rules make it
            # packed now, at the station and device that packed it, by whoever bound it.
            at_station = Actor(actor.name, actor.role, open_row.device_id, open_row.station.code)
            cursor = s.scalar(select(PackCursor).where(PackCursor.session_id == open_row.id))
            events += complete_and_take_stock(s, open_row, cursor, at_station, utcnow(),
                                              f"kit complete, waybill {waybill_no} bound")
            events += print_operations.after_pack_complete(s, order, open_row.station.code,
                                                           at_station)
    key = f"no_tracking_number:{order.order_no}"
    events += live_ops.reconcile_alerts(s, order.warehouse.code, [], utcnow(), {key})
    return events


def upsert_order(s: Session, data: dict[str, Any], actor: Actor) -> tuple[Order, bool, list[PendingEvent]]:
    """Create or update one order; idempotent on (warehouse, channel, order_no): the same
    number in another warehouse is another order."""
    order_no = clean_text(data, "order_no", 64)
    channel = clean_text(data, "channel", 32)
    warehouse_code = clean_text(data, "warehouse", 32)
    waybill_no = clean_text(data, "waybill_no", 64, required=False)
    customer = data.get("customer") or {}
    if not isinstance(customer, dict):
        raise DomainError("invalid_field", "Field 'customer' must be an object.", field="customer")
    try:
        kit = domain.parse_kit(data.get("lines"))
    except KitError as exc:
        raise DomainError(exc.code, exc.message) from None
    assert order_no and channel and warehouse_code
    events: list[PendingEvent] = []
    warehouse = warehouse_by_code(s, warehouse_code)
    order = s.scalar(select(Order).where(Order.warehouse_id == warehouse.id, Order.channel == channel,
                                         Order.order_no == order_no).with_for_update())
    new_hash = kit.content_hash()
    if order is None:
        order = Order(channel=channel, order_no=order_no, warehouse_id=warehouse.id,
                      warehouse=warehouse, status=domain.RECEIVED, customer=customer,
                      lines=[l.as_dict() for l in kit.lines], lines_hash=new_hash)
        s.add(order)
        s.flush()
        if waybill_no:
            bind_waybill(s, order, waybill_no)
        _remember_barcodes(s, warehouse.id, kit)
        events.append(_record_status(s, order, None, actor, "received from OMS", utcnow()))
        return order, True, events
    kit_changed = new_hash != order.lines_hash
    # Held or in exception half packed, its pack session stays open on the old snapshot: a
    # released hold would resume the old kit. The session must be released first.
    if kit_changed and (order.status == domain.PACKING or packing_at(s, order) is not None):
        raise DomainError("order_being_packed",
                          f"Order {order_no} is being packed; its kit cannot change now "
                          "(a supervisor may release its pack session first).", 409)
    if kit_changed and order.status in domain.PACKED_OR_LATER:
        raise DomainError("order_already_packed",
                          f"Order {order_no} is already packed; its kit cannot change.", 409)
    if waybill_no and waybill_no != order.waybill_no:
        _change, waybill_events = change_waybill(s, order, waybill_no, actor, "sent with the order")
        events += waybill_events
    order.customer = customer
    if kit_changed:
        order.lines = [l.as_dict() for l in kit.lines]
        order.lines_hash = new_hash
        _remember_barcodes(s, order.warehouse_id, kit)
        if order.snapshot_id is not None:
            # Already frozen into a wave: keep the old snapshot, add a new version.
            snap = _freeze(s, order, kit, actor, "kit changed by the OMS")
            # Recorded and pushed; seeing it, the entry point calls floor.stock in the same
            # transaction to check the new kit against the stock the release counted on.
            now = utcnow()
            events.append(record_event(s, "kit_changed", rooms_for(order), {
                "order_no": order.order_no, "channel": order.channel,
                "warehouse": order.warehouse.code, "wave_no": order.wave.wave_no if order.wave else None,
                "status": order.status, "snapshot_version": snap.version,
                "snapshot_hash": snap.content_hash, "by": actor.name, "role": actor.role,
                "at": now.isoformat()}, now))
    order.updated_at = utcnow()
    return order, False, events


def find_order(s: Session, order_no: str, channel: str | None = None, lock: bool = False,
               warehouse_id: int | None = None) -> Order:
    """The order of this number (in that warehouse and channel, when given). A caller limited
    to one warehouse always passes it: another warehouse's order of the same number is then
    as if it did not exist."""
    query = select(Order).where(Order.order_no == order_no)
    if warehouse_id is not None:
        query = query.where(Order.warehouse_id == warehouse_id)
    if channel:
        query = query.where(Order.channel == channel)
    if lock:
        query = query.with_for_update()
    rows = s.scalars(query.order_by(Order.id).limit(50)).all()
    if not rows:
        raise DomainError("unknown_order", f"No order {order_no}.", 404)
    if len(rows) > 1:
        warehouses = sorted({o.warehouse.code for o in rows})
        if len(warehouses) > 1:
            raise DomainError("ambiguous_order", f"Order number {order_no} exists in several "
                                                 "warehouses; pass ?warehouse=.", 409,
                              warehouses=warehouses)
        raise DomainError("ambiguous_order",
                          f"Order number {order_no} exists in several channels; pass ?channel=.", 409,
                          channels=sorted({o.channel for o in rows}))
    return rows[0]


# --- waves ----------------------------------------------------------------------------------

@dataclass
class WaveAssignment:
    wave: Wave
    orders: list[dict[str, Any]]              # the wave's orders with their snapshots
    events: list[PendingEvent]
    stock: dict[str, Any]                     # the stock check: shortfall, decision, reason
    left_out: list[dict[str, Any]]            # short orders split off (`split`)
    held: list[dict[str, Any]]                # short orders put on hold (`hold_short`)


def assign_wave(s: Session, data: dict[str, Any], actor: Actor,
                warehouse_id: int | None = None) -> WaveAssignment:
    """Put orders into a wave and freeze each one's kit snapshot. Re-sending is harmless.

    Order numbers are looked up in `warehouse_id` (the caller's, when limited to one), else in
    the body's `warehouse`, else in every warehouse: a number several warehouses use names the
    one of the station's warehouse, else it is refused (`ambiguous_order`).

    The new orders are first checked against the tracked stock (floor.stock): a shortfall
    refuses the release before any snapshot is frozen, unless the body chooses
    release_anyway, hold_short or split.
    """
    from floor.stock import operations as stock  # stock builds on this module

    wave_no = clean_text(data, "wave_no", 64)
    station_code = clean_text(data, "station", 32, required=False)
    order_nos = data.get("order_nos")
    if (not isinstance(order_nos, list) or not order_nos or len(order_nos) > 5000
            or not all(isinstance(n, str) and 0 < len(n) <= 64 for n in order_nos)):
        raise DomainError("invalid_field", "order_nos must be a list of order numbers.", field="order_nos")
    option = stock.release_option(data)
    assert wave_no is not None
    warehouse_code = clean_text(data, "warehouse", 32, required=False)
    if warehouse_id is None and warehouse_code:
        warehouse_id = s.scalar(select(Warehouse.id).where(Warehouse.code == warehouse_code))
        if warehouse_id is None:
            raise DomainError("unknown_orders", f"No warehouse {warehouse_code}.", 404,
                              order_nos=list(dict.fromkeys(order_nos)))
    station_warehouse = (s.scalar(select(Station.warehouse_id).where(Station.code == station_code))
                         if station_code and warehouse_id is None else None)
    orders: list[Order] = []
    unknown: list[str] = []
    ambiguous: list[str] = []
    for order_no in dict.fromkeys(order_nos):
        query = select(Order).where(Order.order_no == order_no)
        if warehouse_id is not None:
            query = query.where(Order.warehouse_id == warehouse_id)
        rows = s.scalars(query.with_for_update()).all()
        if len({o.warehouse_id for o in rows}) > 1 and station_warehouse is not None:
            rows = [o for o in rows if o.warehouse_id == station_warehouse]
        if len(rows) == 1:
            orders.append(rows[0])
        elif len({o.warehouse_id for o in rows}) > 1:
            ambiguous.append(order_no)
        else:
            unknown.append(order_no)
    if unknown:
        raise DomainError("unknown_orders", f"Unknown or ambiguous orders: {', '.join(unknown[:20])}.",
                          404, order_nos=unknown)
    if ambiguous:
        raise DomainError("ambiguous_order", "Order numbers in several warehouses: "
                                             f"{', '.join(ambiguous[:20])}; name the `warehouse`.",
                          409, order_nos=ambiguous)
    warehouses = {o.warehouse_id for o in orders}
    if len(warehouses) > 1:
        raise DomainError("mixed_warehouses", "A wave holds orders of one warehouse only.", 409)
    wave = s.scalar(select(Wave).where(Wave.wave_no == wave_no).with_for_update())
    warehouse = orders[0].warehouse
    if wave is not None and wave.warehouse_id != warehouse.id:
        raise DomainError("mixed_warehouses", f"Wave {wave_no} is for another warehouse.", 409)
    wave_id = wave.id if wave is not None else None
    blocked = [o.order_no for o in orders
               if (o.wave_id is not None and o.wave_id != wave_id) or
               (o.wave_id is None and o.status not in (domain.RECEIVED, domain.ON_HOLD))]
    if blocked:
        raise DomainError("order_not_waveable",
                          f"Orders already in another wave or past receiving: {', '.join(blocked[:20])}.",
                          409, order_nos=blocked)
    new_orders = [o for o in orders if o.wave_id is None]
    plan = stock.plan_release(s, warehouse, wave_no, new_orders, option,
                              already_in_wave=len(orders) - len(new_orders))
    going = {id(o) for o in plan.release}
    orders = [o for o in orders if o.wave_id is not None or id(o) in going]
    if wave is None:
        wave = Wave(wave_no=wave_no, warehouse_id=warehouse.id, created_by=actor.name)
        s.add(wave)
        s.flush()
    if station_code:
        wave.station = station_by_code(s, station_code, warehouse)
    events: list[PendingEvent] = []
    result: list[dict[str, Any]] = []
    wave_actor = Actor(actor.name, actor.role, None, station_code)
    for order in orders:
        if order.wave_id is None:
            order.wave_id, order.wave = wave.id, wave
            kit = domain.kit_from_dicts(order.lines)
            _freeze(s, order, kit, actor, f"assigned to wave {wave_no}")
            events.append(set_status(s, order, domain.WAVE_ASSIGNED, wave_actor, f"wave {wave_no}"))
        snap = order.snapshot
        assert snap is not None
        result.append({"order_no": order.order_no, "channel": order.channel,
                       "snapshot_version": snap.version, "snapshot_hash": snap.content_hash})
    s.flush()
    checked, decision_events = stock.record_release(s, plan, wave_no, warehouse, actor)
    events += decision_events
    return WaveAssignment(
        wave, result, events, checked,
        [{"order_no": o.order_no, "channel": o.channel} for o in plan.left_out],
        [{"order_no": o.order_no, "channel": o.channel, "status": o.status} for o in plan.hold])


# --- pack sessions --------------------------------------------------------------------------

_KITS: dict[tuple[int, str], domain.Kit] = {}


def kit_of(snapshot: KitSnapshot) -> domain.Kit:
    """Snapshots never change, so their parsed kits are kept (keyed by id and content hash:
    another database behind the same id cannot be served a stale kit)."""
    key = (snapshot.id, snapshot.content_hash)
    kit = _KITS.get(key)
    if kit is None:
        if len(_KITS) > 10_000:
            _KITS.clear()
        kit = _KITS[key] = domain.kit_from_dicts(snapshot.lines)
    return kit


def pack_state(session_row: PackSession) -> domain.PackState:
    order = session_row.order
    return domain.PackState(
        order_no=order.order_no, wave_no=order.wave.wave_no if order.wave else None,
        kit=kit_of(session_row.snapshot),
        counts={int(k): int(v) for k, v in (session_row.counts or {}).items()},
        waived={int(n) for n in (session_row.waived or [])}, waybill_no=order.waybill_no,
        giftbox_requires=domain.roles_before_giftbox(order.warehouse.settings))


@dataclass
class OpenSession:
    """The session open at a (station, device), read with Core for the scan's hot path."""
    id: int
    order_id: int
    order_no: str
    order_status: str
    wave_id: int | None
    state: domain.PackState
    warehouse_id: int | None = None


def _open_session_query(lock: bool) -> Any:
    cursors, sessions = PackCursor.__table__, PackSession.__table__
    orders, waves, snaps = Order.__table__, Wave.__table__, KitSnapshot.__table__
    warehouses = Warehouse.__table__
    query = (select(sessions.c.id, sessions.c.order_id, sessions.c.counts, sessions.c.waived,
                    sessions.c.snapshot_id, snaps.c.content_hash, orders.c.order_no,
                    orders.c.status, orders.c.waybill_no, orders.c.wave_id, waves.c.wave_no,
                    warehouses.c.settings, orders.c.warehouse_id)
             .select_from(cursors.join(sessions, sessions.c.id == cursors.c.session_id)
                          .join(orders, orders.c.id == sessions.c.order_id)
                          .join(warehouses, warehouses.c.id == orders.c.warehouse_id)
                          .join(snaps, snaps.c.id == sessions.c.snapshot_id)
                          .outerjoin(waves, waves.c.id == orders.c.wave_id))
             .where(cursors.c.station_id == bindparam("station_id"),
                    cursors.c.device_id == bindparam("device_id"), sessions.c.state == "open"))
    return query.with_for_update(of=[cursors, sessions]) if lock else query


_OPEN_SESSION = {False: _open_session_query(False), True: _open_session_query(True)}


def open_session_of(s: Session, station_id: int, device_id: str, lock: bool = False) -> OpenSession | None:
    row = s.connection().execute(_OPEN_SESSION[lock], {"station_id": station_id, "device_id": device_id}).first()
    if row is None:
        return None
    kit = _KITS.get((row.snapshot_id, row.content_hash))
    if kit is None:
        snapshot = s.get(KitSnapshot, row.snapshot_id)
        assert snapshot is not None
        kit = kit_of(snapshot)
    state = domain.PackState(
        order_no=row.order_no, wave_no=row.wave_no, kit=kit,
        counts={int(k): int(v) for k, v in (row.counts or {}).items()},
        waived={int(n) for n in (row.waived or [])}, waybill_no=row.waybill_no,
        giftbox_requires=domain.roles_before_giftbox(row.settings))
    return OpenSession(row.id, row.order_id, row.order_no, row.status, row.wave_id, state,
                       row.warehouse_id)


def save_state(session_row: PackSession, state: domain.PackState) -> None:
    # New objects, so the JSON columns are seen as changed.
    session_row.counts = {str(k): v for k, v in sorted(state.counts.items())}
    session_row.waived = sorted(state.waived)


def active_session(s: Session, station: Station, device_id: str) -> tuple[PackCursor | None, PackSession | None]:
    """The (station, device)'s cursor and its open session, loaded in one query."""
    session_path = joinedload(PackCursor.session)
    query = (select(PackCursor)
             .options(session_path.joinedload(PackSession.order).joinedload(Order.wave),
                      session_path.joinedload(PackSession.snapshot))
             .where(PackCursor.station_id == station.id, PackCursor.device_id == device_id))
    cursor = s.scalar(query)
    if cursor is None or cursor.session is None or cursor.session.state != "open":
        return cursor, None
    return cursor, cursor.session


def complete_session(s: Session, session_row: PackSession, cursor: PackCursor | None,
                     actor: Actor, at: dt.datetime, reason: str) -> PendingEvent:
    session_row.state = "completed"
    session_row.closed_at = utcnow()
    if cursor is not None and cursor.session_id == session_row.id:
        cursor.session_id = None
        cursor.session = None
    return set_status(s, session_row.order, domain.PACKED, actor, reason, at)


def complete_and_take_stock(s: Session, session_row: PackSession, cursor: PackCursor | None,
                            actor: Actor, at: dt.datetime, reason: str) -> list[PendingEvent]:
    """Complete the session (the order is `packed`) and take the packed units off the tracked
    stock, in the same transaction."""
    from floor.stock import operations as stock  # stock builds on this module

    status = complete_session(s, session_row, cursor, actor, at, reason)
    return [status] + stock.take_for_pack(s, session_row, actor)


STATION_KINDS = ("pack", "dock")


def configure_station(s: Session, code: str, data: dict[str, Any]) -> Station:
    """Create or change a station: its kind (pack or dock) and warehouse."""
    code = clean_text({"station": code}, "station", 32) or code
    kind = data.get("kind", "pack")
    if kind not in STATION_KINDS:
        raise DomainError("invalid_field", f"kind must be one of {', '.join(STATION_KINDS)}.", field="kind")
    warehouse_code = clean_text(data, "warehouse", 32, required=False)
    station = station_by_code(s, code, warehouse_by_code(s, warehouse_code) if warehouse_code else None)
    station.kind = kind
    return station


def session_view(s: Session, station_code: str, device_id: str) -> dict[str, Any]:
    """What a handheld shows after a reload; `last_seq` lets it subscribe to live events only."""
    last_seq = s.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1)) or 0
    view = _session_view(s, station_code, device_id)
    view["last_seq"] = last_seq
    return view


def _session_view(s: Session, station_code: str, device_id: str) -> dict[str, Any]:
    station = s.scalar(select(Station).where(Station.code == station_code))
    if station is None:
        return {"station": station_code, "device_id": device_id, "order_no": None, "progress": None,
                "status": None}
    _cursor, row = active_session(s, station, device_id)
    if row is None:
        return {"station": station_code, "device_id": device_id, "order_no": None, "progress": None,
                "status": None}
    return {"station": station_code, "device_id": device_id, "order_no": row.order.order_no,
            "progress": pack_state(row).progress(), "status": row.order.status}


def release_session(s: Session, session_id: int, actor: Actor, reason: str) -> list[PendingEvent]:
    """A supervisor frees an order held by a device that is gone."""
    row = s.get(PackSession, session_id, with_for_update=True)
    if row is None or row.state != "open":
        raise DomainError("no_open_session", "No open pack session with that id.", 404)
    row.state = "released"
    row.closed_at = utcnow()
    for cursor in s.scalars(select(PackCursor).where(PackCursor.session_id == row.id)):
        cursor.session_id = None
    event = record_event(s, "session_released", rooms_for(row.order, row.station.code), {
        "order_no": row.order.order_no, "session_id": row.id, "by": actor.name, "reason": reason,
        "at": utcnow().isoformat()})
    return [event]


def override_refused_scan(s: Session, scan_event: Any, data: dict[str, Any], actor: Actor) -> tuple[dict[str, Any], list[PendingEvent]]:
    """A supervisor accepts a refused step with a reason code; recorded and shown on the order."""
    reason_code = clean_text(data, "reason_code", 32)
    if reason_code not in OVERRIDE_REASONS:
        raise DomainError("invalid_reason", f"reason_code must be one of {', '.join(OVERRIDE_REASONS)}.")
    note = clean_text(data, "note", 500, required=False) or ""
    line_no = data.get("line_no", scan_event.line_no)
    if line_no is not None and (isinstance(line_no, bool) or not isinstance(line_no, int)):
        raise DomainError("invalid_field", "line_no must be a whole number.", field="line_no")
    if scan_event.ok or scan_event.verdict not in OVERRIDABLE:
        raise DomainError("not_overridable", f"A {scan_event.verdict} scan cannot be overridden.", 409)
    if s.scalar(select(Override).where(Override.scan_id == scan_event.scan_id)) is not None:
        raise DomainError("already_overridden", "This scan was overridden already.", 409)
    row = s.get(PackSession, scan_event.session_id, with_for_update=True) if scan_event.session_id else None
    if row is None or row.state != "open":
        raise DomainError("no_open_session", "The scan's pack session is no longer open.", 409)
    state = pack_state(row)
    if line_no is not None and line_no not in {l.line_no for l in state.kit.lines}:
        raise DomainError("unknown_line", f"The kit has no line {line_no}.", 400)
    try:
        waived = domain.waive_for_override(state, scan_event.verdict, line_no)
    except KitError as exc:
        raise DomainError(exc.code, exc.message, 409) from None
    save_state(row, state)
    now = utcnow()
    s.add(Override(session_id=row.id, scan_id=scan_event.scan_id, refused_code=scan_event.verdict,
                   reason_code=reason_code, note=note, line_no=line_no, waived=waived,
                   by=actor.name, at=now))
    override_actor = Actor(actor.name, actor.role, scan_event.device_id, row.station.code)
    events = [record_event(s, "override", rooms_for(row.order, row.station.code), {
        "order_no": row.order.order_no, "scan_id": scan_event.scan_id,
        "refused_code": scan_event.verdict, "reason_code": reason_code, "note": note,
        "line_no": line_no, "waived": waived, "by": actor.name, "at": now.isoformat()})]
    if state.is_complete():
        cursor = s.scalar(select(PackCursor).where(PackCursor.session_id == row.id))
        events += complete_and_take_stock(s, row, cursor, override_actor, now,
                                          f"override {reason_code}")
        # Completed by a supervisor rather than a scan: the label prints all the same.
        from floor.devices import print_operations  # imports this module
        events += print_operations.after_pack_complete(s, row.order, row.station.code, override_actor)
    s.flush()
    return {"ok": True, "order_no": row.order.order_no, "progress": state.progress(),
            "status": row.order.status, "waived": waived, "reason_code": reason_code}, events


# --- reading --------------------------------------------------------------------------------

def order_detail(s: Session, order: Order) -> dict[str, Any]:
    from floor.scan.models import ScanEvent  # the scan package records against orders

    snap = order.snapshot
    timeline = s.scalars(select(StatusEvent).where(StatusEvent.order_id == order.id)
                         .order_by(StatusEvent.seq)).all()
    scans = s.scalars(select(ScanEvent).where(ScanEvent.order_id == order.id)
                      .order_by(ScanEvent.id)).all()
    versions = s.scalars(select(KitSnapshot).where(KitSnapshot.order_id == order.id)
                         .order_by(KitSnapshot.version)).all()
    sessions = s.scalars(select(PackSession).where(PackSession.order_id == order.id)
                         .order_by(PackSession.id)).all()
    overrides = s.scalars(select(Override).join(PackSession, Override.session_id == PackSession.id)
                          .where(PackSession.order_id == order.id).order_by(Override.id)).all()
    return {
        "order_no": order.order_no, "channel": order.channel, "warehouse": order.warehouse.code,
        "status": order.status, "waybill_no": order.waybill_no,
        "wave_no": order.wave.wave_no if order.wave else None,
        "customer": order.customer, "lines": order.lines,
        "snapshot": None if snap is None else {
            "version": snap.version, "hash": snap.content_hash, "lines": snap.lines,
            "created_at": snap.created_at.isoformat(), "created_by": snap.created_by},
        "snapshot_versions": [{"version": v.version, "hash": v.content_hash,
                               "created_at": v.created_at.isoformat(), "reason": v.reason}
                              for v in versions],
        "timeline": [{"seq": e.seq, "status": e.status, "from": e.from_status,
                      "at": e.at.isoformat(), "by": e.by, "role": e.role, "device_id": e.device_id,
                      "station": e.station, "reason": e.reason} for e in timeline],
        "scans": [{"scan_id": e.scan_id, "code": e.raw,
                   "verdict": {"ok": e.ok, "code": e.verdict, "message": e.message},
                   "at": e.at.isoformat(), "received_at": e.received_at.isoformat(),
                   "device_id": e.device_id, "station": e.station, "by": e.by,
                   "sku": e.sku, "lot": e.lot, "serial": e.serial, "line_no": e.line_no}
                  for e in scans],
        "sessions": [{"id": r.id, "station": r.station.code, "device_id": r.device_id,
                      "state": r.state, "snapshot_version": r.snapshot.version,
                      "opened_at": r.opened_at.isoformat(),
                      "closed_at": r.closed_at.isoformat() if r.closed_at else None}
                     for r in sessions],
        "overrides": [{"scan_id": o.scan_id, "refused_code": o.refused_code,
                       "reason_code": o.reason_code, "note": o.note, "line_no": o.line_no,
                       "waived": o.waived, "by": o.by, "at": o.at.isoformat()} for o in overrides],
    }
