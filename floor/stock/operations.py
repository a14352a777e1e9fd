"""Stock use cases: set levels (JSON or CSV), adjust, take what packing used, restock what came
back, check a wave before it is released, raise and clear low-stock alerts.

Load, decide (floor.stock.domain), change, flush; never commit, never emit: each returns the
events to publish after the commit. Stock rows are locked (in SKU order) before they are read
for a decision, so two waves released at once are checked one after the other.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from floor.db import utcnow
from floor.eventlog import EventCounter, PendingEvent, record_event
from floor.live import domain as live
from floor.live import operations as live_ops
from floor.live.models import Alert
from floor.packing import domain as packing_domain
from floor.packing import operations as packing
from floor.packing.domain import Actor, DomainError
from floor.packing.models import KitSnapshot, Order, PackSession, SnapshotSku, Warehouse
from floor.stock import domain
from floor.stock.domain import StockInputError
from floor.stock.models import StockItem, StockMovement, WaveStockDecision

MOVEMENTS_SHOWN = 50
EVENT_ITEMS_LISTED = 100


def input_error(exc: StockInputError) -> DomainError:
    status = 413 if exc.code == "file_too_large" else 400
    extra: dict[str, Any] = {}
    if exc.errors:
        extra["errors"] = exc.errors[:domain.MAX_ERRORS_LISTED]
        extra["error_count"] = len(exc.errors)
    return DomainError(exc.code, exc.message, status, **extra)


# --- loading ---------------------------------------------------------------------------------

def items_of(s: Session, warehouse_id: int, skus: Iterable[str], lock: bool = False) -> dict[str, StockItem]:
    """The stock rows of these SKUs (the tracked ones), locked in SKU order when asked."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    query = (select(StockItem).where(StockItem.warehouse_id == warehouse_id, StockItem.sku.in_(wanted))
             .order_by(StockItem.sku))
    if lock:
        query = query.with_for_update()
    return {row.sku: row for row in s.scalars(query)}


def reserved_units(s: Session, warehouse_id: int, skus: Iterable[str],
                   exclude_order_id: int | None = None) -> dict[str, int]:
    """What orders of released waves, not packed yet (nor cancelled), will take of these SKUs,
    by their frozen kit snapshots. An order held or in exception after packing took its units
    when its pack session completed, so a completed session ends its reservation.
    `exclude_order_id`: leave one order out (the one being checked again)."""
    wanted = set(skus)
    if not wanted:
        return {}
    completed = exists().where(PackSession.order_id == Order.id, PackSession.state == "completed")
    has_sku = exists().where(SnapshotSku.snapshot_id == Order.snapshot_id,
                             SnapshotSku.sku.in_(sorted(wanted)))
    query = (select(KitSnapshot.lines)
             .join(Order, Order.snapshot_id == KitSnapshot.id)
             .where(Order.warehouse_id == warehouse_id, Order.wave_id.is_not(None),
                    Order.status.not_in(packing_domain.PACKED_OR_LATER
                                        | {packing_domain.CANCELLED}),
                    ~completed, has_sku))
    if exclude_order_id is not None:
        query = query.where(Order.id != exclude_order_id)
    rows = s.execute(query).scalars()
    out: dict[str, int] = {}
    for lines in rows:
        for line in lines:
            if line["sku"] in wanted:
                out[line["sku"]] = out.get(line["sku"], 0) + int(line["qty"])
    return out


def _default_threshold(warehouse: Warehouse) -> int | None:
    value = live.merged_settings(warehouse.settings).get("stock_low_threshold")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def low_stock_alerts(s: Session, warehouse: Warehouse) -> list[live.AlertSpec]:
    """Every low (or negative) tracked SKU of the warehouse, for the periodic evaluation."""
    default = _default_threshold(warehouse)
    specs = []
    for row in s.scalars(select(StockItem).where(StockItem.warehouse_id == warehouse.id)):
        spec = domain.low_stock_alert(warehouse.code, row.sku,
                                      row.on_hand, domain.effective_threshold(row.low_threshold, default))
        if spec is not None:
            specs.append(spec)
    return specs


def _settle_low_stock(s: Session, warehouse: Warehouse, rows: Iterable[StockItem],
                      now: dt.datetime) -> list[PendingEvent]:
    """Raise or clear the low-stock alerts of the rows just changed, in this transaction."""
    default = _default_threshold(warehouse)
    rows = list(rows)
    wanted = [spec for spec in (domain.low_stock_alert(warehouse.code, r.sku, r.on_hand,
                                                       domain.effective_threshold(r.low_threshold, default))
                                for r in rows) if spec is not None]
    scope = {domain.low_stock_key(warehouse.code, r.sku) for r in rows}
    return live_ops.reconcile_alerts(s, warehouse.code, wanted, now, scope)


# --- changing levels -------------------------------------------------------------------------

def _record(s: Session, warehouse: Warehouse, row: StockItem, delta: int, reason: str, actor: Actor,
            now: dt.datetime, order_no: str | None = None, rma_no: str | None = None,
            note: str = "") -> StockMovement:
    movement = StockMovement(warehouse_id=warehouse.id, sku=row.sku, delta=delta,
                             on_hand_after=row.on_hand, low_threshold_after=row.low_threshold,
                             reason=reason, order_no=order_no, rma_no=rma_no, note=note,
                             by=actor.name, role=actor.role, device_id=actor.device_id, at=now)
    s.add(movement)
    return movement


def _stock_event(s: Session, warehouse: Warehouse, reason: str, movements: list[StockMovement],
                 actor: Actor, now: dt.datetime, **extra: Any) -> PendingEvent:
    return record_event(s, "stock", [f"warehouse:{warehouse.code}"], {
        "warehouse": warehouse.code, "reason": reason, "count": len(movements),
        "items": [{"sku": m.sku, "delta": m.delta, "on_hand": m.on_hand_after,
                   "low_threshold": m.low_threshold_after} for m in movements[:EVENT_ITEMS_LISTED]],
        "by": actor.name, "role": actor.role, "at": now.isoformat(), **extra}, now)


def set_levels(s: Session, warehouse_code: str, rows: list[domain.StockRow], reason: str,
               actor: Actor, note: str = "") -> tuple[dict[str, Any], list[PendingEvent]]:
    """Counted levels (a stock-take, the ERP's figures): each SKU's on_hand becomes the given
    number; a movement records the difference. Unchanged rows record nothing."""
    assert reason in ("set", "upload")
    warehouse = packing.warehouse_by_code(s, warehouse_code)
    now = utcnow()
    existing = items_of(s, warehouse.id, (r.sku for r in rows), lock=True)
    movements: list[StockMovement] = []
    touched: list[StockItem] = []
    created = unchanged = 0
    for given in rows:
        row = existing.get(given.sku)
        if row is None:
            row = StockItem(warehouse_id=warehouse.id, sku=given.sku, on_hand=given.on_hand,
                            low_threshold=given.low_threshold, updated_at=now, updated_by=actor.name)
            s.add(row)
            created += 1
            delta = given.on_hand
        else:
            threshold = given.low_threshold if given.threshold_given else row.low_threshold
            if row.on_hand == given.on_hand and row.low_threshold == threshold:
                unchanged += 1
                continue
            delta = given.on_hand - row.on_hand
            row.on_hand, row.low_threshold = given.on_hand, threshold
            row.updated_at, row.updated_by = now, actor.name
        touched.append(row)
        movements.append(_record(s, warehouse, row, delta, reason, actor, now, note=note))
    s.flush()
    events: list[PendingEvent] = []
    if movements:
        events.append(_stock_event(s, warehouse, reason, movements, actor, now, note=note))
        events += _settle_low_stock(s, warehouse, touched, now)
    summary = {"warehouse": warehouse.code, "received": len(rows), "created": created,
               "changed": len(movements) - created, "unchanged": unchanged,
               "items": [_item_view(r, _default_threshold(warehouse)) for r in touched[:500]]}
    return summary, events


def adjust(s: Session, data: dict[str, Any], actor: Actor) -> tuple[dict[str, Any], list[PendingEvent]]:
    """A relative correction of one tracked SKU (found, broken, lost), with a note saying why."""
    warehouse_code = packing.clean_text(data, "warehouse", 32)
    sku = packing.clean_text(data, "sku", domain.MAX_SKU_LEN)
    note = packing.clean_text(data, "note", 500)
    delta = data.get("delta")
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 \
            or abs(delta) > domain.MAX_ON_HAND:
        raise DomainError("invalid_field", "delta is a whole number, not 0.", field="delta")
    assert warehouse_code and sku and note
    warehouse = s.scalar(select(Warehouse).where(Warehouse.code == warehouse_code))
    row = items_of(s, warehouse.id, [sku], lock=True).get(sku) if warehouse else None
    if warehouse is None or row is None:
        raise DomainError("unknown_stock_item", f"{sku} has no stock record in {warehouse_code}; "
                                                "set its level first.", 404)
    now = utcnow()
    movement = domain.delta_movement(sku, row.on_hand, delta)
    row.on_hand, row.updated_at, row.updated_by = movement.on_hand_after, now, actor.name
    record = _record(s, warehouse, row, delta, "adjust", actor, now, note=note)
    s.flush()
    events = [_stock_event(s, warehouse, "adjust", [record], actor, now, note=note)]
    events += _settle_low_stock(s, warehouse, [row], now)
    return _item_view(row, _default_threshold(warehouse)), events


def apply_deltas(s: Session, warehouse: Warehouse, deltas: Mapping[str, int], reason: str,
                 actor: Actor, order_no: str | None = None, rma_no: str | None = None,
                 note: str = "") -> list[PendingEvent]:
    """Packing takes, returns give back: only tracked SKUs move; on_hand may go negative."""
    rows = items_of(s, warehouse.id, [sku for sku, d in deltas.items() if d], lock=True)
    if not rows:
        return []
    now = utcnow()
    movements = []
    for sku, row in rows.items():
        movement = domain.delta_movement(sku, row.on_hand, deltas[sku])
        row.on_hand, row.updated_at, row.updated_by = movement.on_hand_after, now, actor.name
        movements.append(_record(s, warehouse, row, movement.delta, reason, actor, now,
                                 order_no=order_no, rma_no=rma_no, note=note))
    s.flush()
    events = [_stock_event(s, warehouse, reason, movements, actor, now, order_no=order_no,
                           rma_no=rma_no)]
    return events + _settle_low_stock(s, warehouse, rows.values(), now)


def take_for_pack(s: Session, session_row: PackSession, actor: Actor) -> list[PendingEvent]:
    """A completed pack session takes the units actually packed: the scanned (or credited)
    units of each line, never more than the line's quantity. Units of lines a supervisor
    waived were not packed and stay on the shelf."""
    kit = packing.kit_of(session_row.snapshot)
    counts = session_row.counts or {}
    deltas = {line.sku: -min(int(counts.get(str(line.line_no), 0)), line.qty) for line in kit.lines}
    order = session_row.order
    return apply_deltas(s, order.warehouse, deltas, "pack", actor, order_no=order.order_no)


def restock_return(s: Session, warehouse_code: str, order_no: str, rma_no: str,
                   report_lines: Iterable[Mapping[str, Any]], actor: Actor) -> list[PendingEvent]:
    """A closed return puts its resellable units back on the shelf (opened or damaged ones do
    not go back): every returned unit of a known SKU, on its report line."""
    deltas: dict[str, int] = {}
    for line in report_lines:
        sku = line.get("sku")
        if not sku:
            continue
        resellable = sum(1 for scan in line.get("scans") or [] if scan.get("condition") == "resellable")
        if resellable:
            deltas[sku] = deltas.get(sku, 0) + resellable
    warehouse = s.scalar(select(Warehouse).where(Warehouse.code == warehouse_code))
    if not deltas or warehouse is None:
        return []
    return apply_deltas(s, warehouse, deltas, "return_restock", actor, order_no=order_no,
                        rma_no=rma_no)


# --- the release check of a wave ----------------------------------------------------------

@dataclass
class ReleasePlan:
    option: domain.ReleaseOption
    allocation: domain.Allocation
    release: list[Order] = field(default_factory=list)
    hold: list[Order] = field(default_factory=list)
    left_out: list[Order] = field(default_factory=list)


def release_option(data: Mapping[str, Any]) -> domain.ReleaseOption:
    try:
        return domain.release_option(data)
    except StockInputError as exc:
        raise input_error(exc) from None


def check_wave(s: Session, warehouse: Warehouse, orders: list[Order]) -> domain.Allocation:
    """The wave's new orders against the tracked stock left after the released waves' claims."""
    needs = [domain.order_need(o.order_no, o.lines) for o in orders]
    skus = {sku for need in needs for sku in need.units}
    rows = items_of(s, warehouse.id, skus, lock=True)
    on_hand = {sku: row.on_hand for sku, row in rows.items()}
    return domain.allocate(needs, on_hand, reserved_units(s, warehouse.id, on_hand))


def plan_release(s: Session, warehouse: Warehouse, wave_no: str, orders: list[Order],
                 option: domain.ReleaseOption, already_in_wave: int) -> ReleasePlan:
    """Which of the wave's new orders go, which are held, which are left out. A shortfall with
    no choice made refuses the whole release before anything changes."""
    allocation = check_wave(s, warehouse, orders)
    plan = ReleasePlan(option, allocation)
    short = set(allocation.short_order_nos)
    if not short or option.choice == "release_anyway":
        plan.release = list(orders)
        return plan
    extra = {"wave_no": wave_no, "warehouse": warehouse.code,
             "shortfall": allocation.shortfall_dicts(),
             "short_orders": [o.as_dict() for o in allocation.short],
             "options": list(domain.RELEASE_OPTIONS)}
    if option.choice is None:
        worst = allocation.shortfall[0]
        raise DomainError(
            "stock_shortfall",
            f"Wave {wave_no} would leave {len(short)} order(s) short: {worst.sku} needs "
            f"{worst.needed}, {max(worst.available, 0)} available ({worst.on_hand} on hand, "
            f"{worst.reserved} reserved by released waves)"
            + (f" and {len(allocation.shortfall) - 1} more SKU(s)" if len(allocation.shortfall) > 1 else "")
            + ". Nothing was released; send release_anyway or hold_short with a reason, or split.",
            409, **extra)
    plan.release = [o for o in orders if o.order_no not in short]
    if not plan.release and not already_in_wave:
        raise DomainError("nothing_to_release",
                          f"Every order of wave {wave_no} is short; nothing was released.", 409, **extra)
    if option.choice == "hold_short":
        plan.hold = [o for o in orders if o.order_no in short]
    else:
        plan.left_out = [o for o in orders if o.order_no in short]
    return plan


def kit_fit(s: Session, order: Order, lock: bool = True) -> domain.Allocation | None:
    """The release check again, for one order of a released wave: its current snapshot served
    from on hand less what the other released orders reserve (they were released first). None
    when the order holds no reservation any more (not in a wave, packed, cancelled)."""
    if (order.wave_id is None or order.snapshot is None
            or order.status in packing_domain.PACKED_OR_LATER | {packing_domain.CANCELLED}
            or s.scalar(select(PackSession.id).where(PackSession.order_id == order.id,
                                                     PackSession.state == "completed").limit(1))):
        return None
    need = domain.order_need(order.order_no, order.snapshot.lines)
    rows = items_of(s, order.warehouse_id, need.units, lock=lock)
    on_hand = {sku: row.on_hand for sku, row in rows.items()}
    return domain.allocate([need], on_hand,
                           reserved_units(s, order.warehouse_id, on_hand, exclude_order_id=order.id))


def _kit_short_spec(order: Order, allocation: domain.Allocation | None) -> live.AlertSpec | None:
    short = allocation.short[0] if allocation is not None and allocation.short else None
    return domain.kit_short_alert(order.warehouse.code, order.channel, order.order_no,
                                  order.wave.wave_no if order.wave else None, short)


def recheck_kit(s: Session, order: Order) -> tuple[dict[str, Any] | None, list[PendingEvent]]:
    """An order's kit changed after its wave was released (a new snapshot): check it against
    the stock as the release did. When it no longer fits, a `kit_short_of_stock` alert names
    the order; when it fits again (another edit), that alert clears. Answers the check (None
    when the order reserves nothing) and the alert events."""
    allocation = kit_fit(s, order)
    spec = _kit_short_spec(order, allocation)
    events = live_ops.reconcile_alerts(s, order.warehouse.code, [spec] if spec else [], utcnow(),
                                       {domain.kit_short_key(order.channel, order.order_no)})
    if allocation is None:
        return None, events
    return {"checked": True, "fits": not allocation.short,
            "shortfall": allocation.shortfall_dicts(),
            "missing": allocation.short[0].as_dict()["missing"] if allocation.short else []}, events


def kit_short_alerts(s: Session, warehouse: Warehouse) -> list[live.AlertSpec]:
    """The open `kit_short_of_stock` alerts of the warehouse, checked again for the periodic
    evaluation: each stays while its order still does not fit, and clears once it fits (stock
    came in, an earlier order was packed short or cancelled) or is packed or cancelled."""
    specs = []
    for alert in s.scalars(select(Alert).where(Alert.warehouse == warehouse.code,
                                               Alert.kind == domain.KIT_SHORT,
                                               Alert.cleared_at.is_(None))):
        channel = (alert.params or {}).get("channel")
        order = s.scalar(select(Order).where(Order.warehouse_id == warehouse.id,
                                             Order.channel == channel,
                                             Order.order_no == alert.order_no).limit(1))
        spec = _kit_short_spec(order, kit_fit(s, order, lock=False)) if order is not None else None
        if spec is not None:
            specs.append(spec)
    return specs


def record_release(s: Session, plan: ReleasePlan, wave_no: str, warehouse: Warehouse,
                   actor: Actor) -> tuple[dict[str, Any], list[PendingEvent]]:
    """After the wave is assigned: hold the short orders, record the decision. Answers the
    `stock` part of the wave's answer."""
    allocation, option = plan.allocation, plan.option
    answer: dict[str, Any] = {"checked": True, "shortfall": allocation.shortfall_dicts(),
                              "short_orders": [o.as_dict() for o in allocation.short],
                              "decision": None, "reason": option.reason}
    if not allocation.short:
        return answer, []
    events: list[PendingEvent] = []
    reason = option.reason or ""
    for order in plan.hold:
        if order.status == packing_domain.ON_HOLD:
            continue            # held already: it stays held, for its own reason
        events.append(packing.set_status(
            s, order, packing_domain.ON_HOLD, actor,
            f"short of stock for wave {wave_no}: {reason}"))
    now = utcnow()
    decision = WaveStockDecision(wave_no=wave_no, warehouse_id=warehouse.id, decision=option.choice,
                                 reason=reason, shortfall=allocation.shortfall_dicts(),
                                 short_orders=[o.as_dict() for o in allocation.short],
                                 by=actor.name, role=actor.role, at=now)
    event = record_event(s, "wave_stock_decision", [f"warehouse:{warehouse.code}", f"wave:{wave_no}"], {
        "wave_no": wave_no, "warehouse": warehouse.code, "decision": option.choice,
        "reason": reason, "shortfall": allocation.shortfall_dicts(),
        "short_order_nos": list(allocation.short_order_nos),
        "held": [o.order_no for o in plan.hold], "left_out": [o.order_no for o in plan.left_out],
        "by": actor.name, "role": actor.role, "at": now.isoformat()}, now)
    decision.seq = event.payload["seq"]
    s.add(decision)
    s.flush()
    answer["decision"] = option.choice
    return answer, events + [event]


# --- reading -------------------------------------------------------------------------------

def _item_view(row: StockItem, default: int | None, reserved: int | None = None,
               names: Mapping[str, str] | None = None) -> dict[str, Any]:
    threshold = domain.effective_threshold(row.low_threshold, default)
    level = domain.low_level(row.on_hand, threshold)
    body = {"sku": row.sku, "on_hand": row.on_hand, "low_threshold": row.low_threshold,
            "effective_threshold": threshold, "low": level is not None, "level": level,
            "updated_at": row.updated_at.isoformat(), "updated_by": row.updated_by}
    if names is not None:
        body["name"] = names.get(row.sku)
    if reserved is not None:
        body["reserved"] = reserved
        body["available"] = row.on_hand - reserved
    return body


def _movement_view(m: StockMovement) -> dict[str, Any]:
    return {"id": m.id, "sku": m.sku, "delta": m.delta, "on_hand": m.on_hand_after,
            "low_threshold": m.low_threshold_after, "reason": m.reason, "order_no": m.order_no,
            "rma_no": m.rma_no, "note": m.note, "by": m.by, "role": m.role,
            "device_id": m.device_id, "at": m.at.isoformat()}


def stock_view(s: Session, warehouse_code: str, sku: str | None = None,
               movements: int = MOVEMENTS_SHOWN) -> dict[str, Any]:
    """A warehouse's tracked SKUs (low ones first), with what released waves reserve, and the
    last movements."""
    last_seq = s.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1)) or 0
    warehouse = s.scalar(select(Warehouse).where(Warehouse.code == warehouse_code))
    if warehouse is None:
        return {"warehouse": warehouse_code, "items": [], "movements": [], "last_seq": last_seq,
                "default_low_threshold": live.DEFAULT_SETTINGS["stock_low_threshold"]}
    default = _default_threshold(warehouse)
    query = select(StockItem).where(StockItem.warehouse_id == warehouse.id).order_by(StockItem.sku)
    moves = (select(StockMovement).where(StockMovement.warehouse_id == warehouse.id)
             .order_by(StockMovement.id.desc()).limit(movements))
    if sku:
        query = query.where(StockItem.sku == sku)
        moves = moves.where(StockMovement.sku == sku)
    rows = list(s.scalars(query))
    reserved = reserved_units(s, warehouse.id, [r.sku for r in rows])
    names = packing.sku_names(s, warehouse.id, [r.sku for r in rows])
    items = [_item_view(r, default, reserved.get(r.sku, 0), names) for r in rows]
    items.sort(key=lambda i: (i["level"] is None, i["level"] != "red", i["sku"]))
    return {"warehouse": warehouse.code, "default_low_threshold": default, "items": items,
            "low_count": sum(1 for i in items if i["low"]),
            "movements": [_movement_view(m) for m in s.scalars(moves)], "last_seq": last_seq}


def decisions_of_wave(s: Session, wave_no: str) -> list[dict[str, Any]]:
    return [{"decision": d.decision, "reason": d.reason, "shortfall": d.shortfall,
             "short_orders": d.short_orders, "by": d.by, "role": d.role, "seq": d.seq,
             "at": d.at.isoformat()}
            for d in s.scalars(select(WaveStockDecision).where(WaveStockDecision.wave_no == wave_no)
                               .order_by(WaveStockDecision.id))]
