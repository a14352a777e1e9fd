"""Returns use cases: open a return, record what came out of the box, close, confirm.

Load, decide (floor.returns.domain), change, flush; never commit, never emit: each returns the
events to publish after the commit.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session

from floor import labels
from floor.db import utcnow
from floor.devices.models import Device
from floor.eventlog import PendingEvent, record_event
from floor.packing import domain as packing_domain
from floor.packing import operations as packing
from floor.packing.domain import Actor, DomainError
from floor.packing.models import KitSnapshot, Order, Override, PackSession
from floor.returns import domain
from floor.returns.models import InspectionReport, ReturnOrder, ReturnScan
from floor.scan import domain as scan_domain
from floor.scan.models import ScanEvent
from floor.stock import operations as stock

DEFAULT_STATION = "R01"
STATION_SETTING = "returns_station"          # per-warehouse setting naming the returns station
TRACE_PREFIX = "RT-"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"   # no I, O, 0, 1: read aloud and typed safely
MAX_PHOTO_BYTES = 5 * 1024 * 1024
QUEUE_STATES = ("open", "closed", "confirmed", "all")
CONFIRM_FIELDS = frozenset({"confirmed_outcome", "confirmed_by", "confirmed_at", "confirm_note"})


@event.listens_for(InspectionReport, "before_update")
def _report_immutable(_mapper: Any, _conn: Any, target: InspectionReport) -> None:
    """The report is immutable; only the QC lead's confirmation is recorded beside it."""
    state = inspect(target)
    changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
    if changed - CONFIRM_FIELDS:
        raise ValueError(f"inspection reports are immutable (tried to change {sorted(changed)})")


def _code(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rooms(ret: ReturnOrder) -> list[str]:
    rooms = [f"warehouse:{ret.warehouse}", f"order:{ret.order.order_no}"]
    if ret.station:
        rooms.append(f"station:{ret.station}")
    return rooms


def _event(s: Session, type_: str, ret: ReturnOrder, actor: Actor, **extra: Any) -> PendingEvent:
    now = utcnow()
    return record_event(s, type_, _rooms(ret), {
        "rma_no": ret.rma_no, "trace_code": ret.trace_code, "order_no": ret.order.order_no,
        "warehouse": ret.warehouse, "station": ret.station, "state": ret.state,
        "by": actor.name, "role": actor.role, "at": now.isoformat(), **extra}, now)


# --- opening a return ------------------------------------------------------------------------

def _packed_snapshot(s: Session, order: Order) -> KitSnapshot | None:
    """The snapshot the order was packed against: its last completed pack session's, else the
    order's current one."""
    session_row = s.scalar(select(PackSession).where(PackSession.order_id == order.id,
                                                     PackSession.state == "completed")
                           .order_by(PackSession.id.desc()).limit(1))
    if session_row is not None:
        return session_row.snapshot
    return order.snapshot


def _was_packed(s: Session, order: Order) -> bool:
    if order.status in packing_domain.PACKED_OR_LATER:
        return True
    # On hold or in exception after packing: a completed pack session proves it was packed.
    return order.status in packing_domain.SIDE_STATES and s.scalar(
        select(func.count()).select_from(PackSession).where(
            PackSession.order_id == order.id, PackSession.state == "completed")) > 0


def open_return_of(s: Session, order_id: int) -> ReturnOrder | None:
    return s.scalar(select(ReturnOrder).where(ReturnOrder.order_id == order_id,
                                              ReturnOrder.state == "open").limit(1))


def create_return(s: Session, data: dict[str, Any], actor: Actor,
                  warehouse_id: int | None = None) -> tuple[ReturnOrder, list[PendingEvent]]:
    order_no = packing.clean_text(data, "order_no", 64)
    reason = packing.clean_text(data, "reason", 200)
    note = _free_text(data, "customer_note", 1000)
    channel = packing.clean_text(data, "channel", 32, required=False)
    station = packing.clean_text(data, "station", 32, required=False)
    assert order_no is not None and reason is not None
    order = packing.find_order(s, order_no, channel, lock=True, warehouse_id=warehouse_id)
    if not _was_packed(s, order):
        raise DomainError("not_packed", f"Order {order.order_no} is {order.status}; a return is "
                                        "opened for a packed (or shipped) order.", 409,
                          order_status=order.status)
    snapshot = _packed_snapshot(s, order)
    if snapshot is None:
        raise DomainError("not_packed", f"Order {order.order_no} has no kit snapshot.", 409,
                          order_status=order.status)
    existing = open_return_of(s, order.id)
    if existing is not None:
        raise DomainError("return_open", f"Order {order.order_no} already has an open return "
                                         f"{existing.rma_no}.", 409, rma_no=existing.rma_no,
                          trace_code=existing.trace_code)
    settings = order.warehouse.settings if isinstance(order.warehouse.settings, dict) else {}
    default_station = settings.get(STATION_SETTING)
    if not isinstance(default_station, str) or not default_station:
        default_station = DEFAULT_STATION
    now = utcnow()
    rma_no = trace_code = ""
    for _attempt in range(10):
        rma_no = f"RMA{now:%y%m%d}{_code(5)}"
        trace_code = TRACE_PREFIX + _code(10)
        clash = s.scalar(select(func.count()).select_from(ReturnOrder).where(
            (ReturnOrder.rma_no == rma_no) | (ReturnOrder.trace_code == trace_code)))
        if not clash:
            break
    ret = ReturnOrder(rma_no=rma_no, trace_code=trace_code, order_id=order.id, order=order,
                      snapshot_id=snapshot.id, snapshot=snapshot, warehouse=order.warehouse.code,
                      station=station or default_station, reason=reason, customer_note=note,
                      state="open", created_by=actor.name, created_at=now)
    s.add(ret)
    s.flush()
    events = [_event(s, "return_created", ret, actor, reason=reason,
                     created_at=now.isoformat(), channel=order.channel)]
    events += _print_trace_label(s, ret, actor, data.get("print", True) is not False)
    return ret, events


def _free_text(data: dict[str, Any], name: str, max_len: int) -> str | None:
    """Optional human text: line breaks allowed, other control characters not."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DomainError("invalid_field", f"Field '{name}' must be a string.", field=name)
    value = value.strip()
    if len(value) > max_len or any((ord(c) < 32 and c not in "\r\n\t") or ord(c) == 127
                                   or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise DomainError("invalid_field", f"Field '{name}' must be at most {max_len} printable "
                                           "characters.", field=name)
    return value or None


def _print_trace_label(s: Session, ret: ReturnOrder, actor: Actor, wanted: bool) -> list[PendingEvent]:
    """Queue the trace label on the returns station's printer, when it has one."""
    from floor.devices import print_operations

    if not wanted or not ret.station:
        return []
    printer = print_operations.station_printer(s, ret.station)
    if printer is None:
        return []
    _job, events = print_operations.enqueue(s, printer, "trace", trace_label_zpl(ret), actor,
                                            order=ret.order)
    return events


def trace_label_zpl(ret: ReturnOrder) -> str:
    from floor.devices import print_operations

    try:
        return labels.trace_zpl(ret.rma_no, ret.trace_code, ret.order.order_no,
                                cjk_font=print_operations._cjk_font())
    except labels.LabelError as exc:
        raise DomainError(exc.code, exc.message, 409) from None


# --- finding returns -------------------------------------------------------------------------

def find_return(s: Session, rma_no: str, lock: bool = False) -> ReturnOrder:
    query = select(ReturnOrder).where(ReturnOrder.rma_no == rma_no)
    if lock:
        query = query.with_for_update()
    ret = s.scalar(query)
    if ret is None:
        raise DomainError("unknown_return", f"No return {rma_no}.", 404)
    return ret


def by_code(s: Session, raw: str, warehouse_id: int | None = None) -> ReturnOrder:
    """A trace code (or RMA number) names its return; a waybill or order number its order's
    open return (an order of `warehouse_id` when given: order numbers are per warehouse)."""
    norm = scan_domain.normalise(raw)
    if not norm.readable:
        raise DomainError("no_open_return", "That code names no open return.", 404)
    code = norm.text
    ret = s.scalar(select(ReturnOrder).where(
        (ReturnOrder.trace_code == code) | (ReturnOrder.rma_no == code),
        ReturnOrder.state == "open"))
    if ret is not None:
        return ret
    query = select(Order.id).where((Order.waybill_no == code) | (Order.order_no == code))
    if warehouse_id is not None:
        query = query.where(Order.warehouse_id == warehouse_id)
    orders = s.scalars(query.order_by(Order.id)).all()
    for order_id in orders:
        ret = open_return_of(s, order_id)
        if ret is not None:
            return ret
    raise DomainError("no_open_return", f"No open return for {code}.", 404, scanned=code)


def queue(s: Session, state: str = "open", warehouse: str | None = None,
          limit: int = 200) -> list[dict[str, Any]]:
    if state not in QUEUE_STATES:
        raise DomainError("invalid_field", f"state must be one of {', '.join(QUEUE_STATES)}.",
                          field="state")
    query = select(ReturnOrder).order_by(ReturnOrder.id.desc()).limit(limit)
    if state != "all":
        query = query.where(ReturnOrder.state == state)
    if warehouse:
        query = query.where(ReturnOrder.warehouse == warehouse)
    rows = s.scalars(query).all()
    counts = dict(s.execute(select(ReturnScan.return_id, func.count()).where(
        ReturnScan.return_id.in_([r.id for r in rows])).group_by(ReturnScan.return_id)).all()) if rows else {}
    return [summary(r, counts.get(r.id, 0)) for r in rows]


def returns_of_order(s: Session, order: Order) -> list[dict[str, Any]]:
    """An order's returns, oldest first, each with its inspection report's hashes once closed:
    the evidence page shows them beside the snapshot hash they chain to."""
    rows = s.execute(select(ReturnOrder, InspectionReport)
                     .outerjoin(InspectionReport, InspectionReport.return_id == ReturnOrder.id)
                     .where(ReturnOrder.order_id == order.id).order_by(ReturnOrder.id)).all()
    return [{**summary(ret),
             "report": report_view(ret, report) if report is not None else None}
            for ret, report in rows]


def summary(ret: ReturnOrder, scans: int | None = None) -> dict[str, Any]:
    body = {"rma_no": ret.rma_no, "trace_code": ret.trace_code, "order_no": ret.order.order_no,
            "channel": ret.order.channel, "waybill_no": ret.order.waybill_no,
            "warehouse": ret.warehouse, "station": ret.station, "reason": ret.reason,
            "customer_note": ret.customer_note, "state": ret.state,
            "created_by": ret.created_by, "created_at": _iso(ret.created_at),
            "closed_by": ret.closed_by, "closed_at": _iso(ret.closed_at)}
    if scans is not None:
        body["scans_count"] = scans
    return body


# --- facts for the comparison ----------------------------------------------------------------

def packed_rows(s: Session, order: Order) -> list[ScanEvent]:
    """The order's accepted packing scans: each one a unit that went into the box."""
    return list(s.scalars(select(ScanEvent).where(
        ScanEvent.order_id == order.id, ScanEvent.ok.is_(True), ScanEvent.verdict == "accepted",
        ScanEvent.sku.is_not(None), ScanEvent.line_no.is_not(None)).order_by(ScanEvent.id)))


def packed_units(rows: list[ScanEvent]) -> list[domain.PackedUnit]:
    return [domain.PackedUnit(r.sku or "", r.lot, r.serial, r.scan_id, r.by, r.station,
                              _iso(r.at) or "") for r in rows]


@dataclass(frozen=True)
class Shipped:
    """What went into the box (see floor.returns.domain): the accepted packing scans, the units
    supervisors credited by override, the units of waived lines that never went in."""
    units: list[domain.PackedUnit]
    shown: list[dict[str, Any]]             # the same units, as the QC screen lists them
    waived: dict[int, int]
    substitutes: dict[str, int]


def _packed_view(r: ScanEvent, sku: str | None, line_no: int | None,
                 override: Override | None = None) -> dict[str, Any]:
    return {"scan_id": r.scan_id, "sku": sku, "line_no": line_no, "code": r.code, "lot": r.lot,
            "serial": r.serial, "by": r.by, "station": r.station, "device_id": r.device_id,
            "at": _iso(r.at),
            "override": None if override is None else {
                "refused_code": override.refused_code, "reason_code": override.reason_code,
                "by": override.by, "note": override.note}}


def shipped(s: Session, ret: ReturnOrder) -> Shipped:
    kit = kit_of(ret)
    rows = packed_rows(s, ret.order)
    units = packed_units(rows)
    shown = [_packed_view(r, r.sku, r.line_no) for r in rows]
    overrides = s.scalars(select(Override).join(PackSession, Override.session_id == PackSession.id)
                          .where(PackSession.order_id == ret.order.id,
                                 PackSession.state == "completed")
                          .order_by(Override.id)).all()
    substitutes: dict[str, int] = {}
    waived_lines: set[int] = set()
    for o in overrides:
        waived_lines.update(int(n) for n in (o.waived or []))
        line = kit.line(o.line_no) if o.line_no is not None else None
        scan = s.scalar(select(ScanEvent).where(ScanEvent.scan_id == o.scan_id))
        if line is None or scan is None:
            continue
        units.append(domain.PackedUnit(line.sku, scan.lot, scan.serial, scan.scan_id, scan.by,
                                       scan.station, _iso(scan.at) or ""))
        shown.append(_packed_view(scan, line.sku, line.line_no, o))
        norm = _norm_of(scan)
        for key in (norm.item_keys() if norm.readable else ()):
            if kit.line_for_keys((key,)) is None:
                substitutes.setdefault(key, line.line_no)
    waived = {}
    for line_no in sorted(waived_lines):
        line = kit.line(line_no)
        packed = sum(1 for u in units if u.sku == line.sku)
        if packed < line.qty:
            waived[line_no] = line.qty - packed
    return Shipped(units, shown, waived, substitutes)


def gs_substitutes_of(s: Session, device_id: str | None,
                      warehouse_settings: Any) -> tuple[str, ...]:
    """The GS1 separator substitutes of a QC scanner: its profile, else the warehouse's."""
    profile = (s.scalar(select(Device.scanner_profile).where(Device.device_id == device_id))
               if device_id else None)
    return scan_domain.gs_substitutes_for(profile, warehouse_settings)


def _norm_of(row: ReturnScan) -> scan_domain.NormalisedCode:
    if row.verdict in ("unreadable", "invalid_gs1", "logistic_unit") or not row.code:
        return scan_domain.NormalisedCode("", row.symbology_id, error="unreadable")
    return scan_domain.NormalisedCode(row.code, row.symbology_id,
                                      gs1=scan_domain.parse_gs1(row.code, row.symbology_id))


def _unit(norm: scan_domain.NormalisedCode, scan_id: str, condition: str,
          catalog: tuple[str, str] | None) -> domain.ReturnedUnit:
    refusal: tuple[str, dict[str, Any]] | None = None
    if norm.gs1_error is not None:
        refusal = ("invalid_gs1", norm.gs1_error.params())
    elif norm.gs1 is not None and (norm.gs1.logistic_unit or norm.gs1.count):
        # A case (AI 02 + 37) or pallet (SSCC) label is not one unit: each unit is scanned.
        refusal = ("logistic_unit", {"sscc": norm.gs1.sscc, "count": norm.gs1.count})
    return domain.ReturnedUnit(
        refusal=refusal,
        scan_id=scan_id, code=norm.text, keys=norm.item_keys() if norm.readable else (),
        condition=condition, lot=norm.gs1.lot if norm.gs1 else None,
        serial=norm.gs1.serial if norm.gs1 else None, readable=norm.readable and refusal is None,
        catalog_sku=catalog[0] if catalog else None, catalog_name=catalog[1] if catalog else None)


def _catalog(s: Session, ret: ReturnOrder, keys: tuple[str, ...]) -> tuple[str, str] | None:
    """What the code means in the return's warehouse's catalogue."""
    sku = packing.catalog_entry(s, ret.order.warehouse_id, keys)
    return (sku.code, sku.name) if sku is not None else None


def returned_units(s: Session, ret: ReturnOrder, rows: list[ReturnScan]) -> list[domain.ReturnedUnit]:
    names = packing.sku_names(s, ret.order.warehouse_id, (r.sku for r in rows if r.sku))
    return [_unit(_norm_of(r), r.scan_id, r.condition,
                  (r.sku, names.get(r.sku, r.sku)) if r.sku else None) for r in rows]


def return_scans(s: Session, ret: ReturnOrder) -> list[ReturnScan]:
    return list(s.scalars(select(ReturnScan).where(ReturnScan.return_id == ret.id)
                          .order_by(ReturnScan.id)))


def kit_of(ret: ReturnOrder) -> packing_domain.Kit:
    return packing.kit_of(ret.snapshot)


def comparison_view(comparison: domain.Comparison) -> dict[str, Any]:
    return {"lines": list(comparison.lines), "suggested_outcome": comparison.suggested_outcome,
            "counts": comparison.counts(), "differences": comparison.differences()}


def compare(s: Session, ret: ReturnOrder) -> domain.Comparison:
    units = [u for u in returned_units(s, ret, return_scans(s, ret)) if u.readable]
    box = shipped(s, ret)
    return domain.compare(kit_of(ret), box.units, units, waived=box.waived,
                          substitutes=box.substitutes)


# --- scanning what came back ----------------------------------------------------------------

def _scan_id(data: dict[str, Any]) -> str:
    value = data.get("scan_id")
    if not isinstance(value, str) or not value.strip():
        raise DomainError("missing_field", "Missing field: scan_id.", fields=["scan_id"])
    value = value.strip()
    if len(value) > 64 or any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF
                              for c in value):
        raise DomainError("invalid_field", "Field 'scan_id' must be 1–64 printable characters.",
                          field="scan_id")
    return value


def record_scan(s: Session, rma_no: str, data: dict[str, Any], actor: Actor,
                ) -> tuple[dict[str, Any], list[PendingEvent]]:
    """One item out of the box: its live verdict and the comparison so far. Idempotent on
    scan_id; refused once the return is closed."""
    scan_id = _scan_id(data)
    ret = find_return(s, rma_no, lock=True)
    existing = s.scalar(select(ReturnScan).where(ReturnScan.scan_id == scan_id))
    if existing is not None:
        if existing.return_id != ret.id:
            raise DomainError("scan_id_in_use", f"Scan id {scan_id} was used for another return.", 409)
        return {**existing.response, "replayed": True,
                "comparison": comparison_view(compare(s, ret)), "state": ret.state}, []
    if ret.state != "open":
        raise DomainError("return_closed", f"Return {ret.rma_no} is {ret.state}.", 409,
                          state=ret.state)
    if "code" not in data or data["code"] is None:
        raise DomainError("missing_field", "Missing field: code.", fields=["code"])
    condition = data.get("condition") or "resellable"
    if condition not in domain.CONDITIONS:
        raise DomainError("invalid_field", f"condition must be one of {', '.join(domain.CONDITIONS)}.",
                          field="condition")
    note = _free_text(data, "note", 500)
    device_id = packing.clean_text(data, "device_id", 64, required=False)
    raw = data["code"]
    norm = scan_domain.normalise(raw, gs_substitutes_of(s, device_id, ret.order.warehouse.settings),
                                 today=utcnow().date())
    catalog = _catalog(s, ret, norm.item_keys()) if norm.readable else None
    unit = _unit(norm, scan_id, condition, catalog)
    kit = kit_of(ret)
    box = shipped(s, ret)
    rows = return_scans(s, ret)
    earlier = [u for u in returned_units(s, ret, rows) if u.readable]
    verdict = domain.scan_verdict(kit, box.units, earlier, unit, waived=box.waived,
                                  substitutes=box.substitutes)
    now = utcnow()
    line = kit.line(verdict.line_no) if verdict.line_no is not None else None
    response = {
        "ok": verdict.ok, "verdict": verdict.verdict, "code": verdict.verdict,
        "scan_id": scan_id, "rma_no": ret.rma_no, "order_no": ret.order.order_no,
        "line_no": verdict.line_no, "sku": verdict.sku,
        "name": line.name if line is not None else (catalog[1] if catalog else None),
        "role": line.role if line is not None else None,
        "lot": unit.lot, "serial": unit.serial, "condition": condition,
        "params": {**verdict.params, **({"reason": norm.error} if not norm.readable else {})},
        "gs1": norm.gs1.as_dict() if norm.gs1 is not None else None, "at": now.isoformat()}
    s.add(ReturnScan(scan_id=scan_id, return_id=ret.id, raw=scan_domain.storable(raw),
                     code=norm.text, symbology_id=norm.symbology_id, sku=verdict.sku,
                     lot=unit.lot, serial=unit.serial, condition=condition, note=note,
                     verdict=verdict.verdict, response=response, by=actor.name,
                     device_id=device_id, at=now))
    s.flush()
    comparison = domain.compare(kit, box.units, earlier + ([unit] if unit.readable else []),
                                waived=box.waived, substitutes=box.substitutes)
    events = [_event(s, "return_scanned", ret, actor, scan_id=scan_id, verdict=verdict.verdict,
                     sku=verdict.sku, lot=unit.lot, condition=condition,
                     differences=comparison.differences(),
                     suggested_outcome=comparison.suggested_outcome)]
    return {**response, "comparison": comparison_view(comparison), "state": ret.state}, events


def photo_path(instance_path: str, ret: ReturnOrder, scan_id: str) -> Path:
    """Under the instance folder; the file name is derived, never taken from the request."""
    digest = hashlib.sha256(scan_id.encode("utf-8")).hexdigest()[:24]
    return Path(instance_path) / "returns" / ret.rma_no / f"{digest}.jpg"


def attach_photo(s: Session, rma_no: str, scan_id: str, jpeg: bytes, instance_path: str,
                 actor: Actor) -> dict[str, Any]:
    ret = find_return(s, rma_no, lock=True)
    row = s.scalar(select(ReturnScan).where(ReturnScan.scan_id == scan_id,
                                            ReturnScan.return_id == ret.id))
    if row is None:
        raise DomainError("unknown_scan", f"No scan {scan_id} in return {ret.rma_no}.", 404)
    if ret.state != "open":
        raise DomainError("return_closed", f"Return {ret.rma_no} is {ret.state}.", 409,
                          state=ret.state)
    path = photo_path(instance_path, ret, scan_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(jpeg)
    tmp.replace(path)
    row.photo = str(path.relative_to(Path(instance_path)))
    s.flush()
    return {"scan_id": scan_id, "rma_no": ret.rma_no, "photo_url": photo_url(ret, row),
            "by": actor.name}


def photo_url(ret: ReturnOrder, row: ReturnScan) -> str | None:
    if not row.photo:
        return None
    return f"/api/v1/returns/{ret.rma_no}/scans/{row.scan_id}/photo"


# --- closing and confirming -----------------------------------------------------------------

def close_return(s: Session, rma_no: str, actor: Actor) -> tuple[ReturnOrder, InspectionReport, list[PendingEvent]]:
    ret = find_return(s, rma_no, lock=True)
    if ret.state != "open":
        raise DomainError("return_closed", f"Return {ret.rma_no} is already {ret.state}.", 409,
                          state=ret.state)
    comparison = compare(s, ret)
    lines = list(comparison.lines)
    snapshot_hash = ret.snapshot.content_hash
    content_hash = domain.report_hash(ret.rma_no, ret.order.order_no, snapshot_hash, lines,
                                      comparison.suggested_outcome)
    now = utcnow()
    report = InspectionReport(return_id=ret.id, lines=lines, content_hash=content_hash,
                              snapshot_hash=snapshot_hash,
                              suggested_outcome=comparison.suggested_outcome,
                              created_by=actor.name, created_at=now)
    s.add(report)
    ret.state, ret.closed_by, ret.closed_at = "closed", actor.name, now
    s.flush()
    event_ = _event(s, "return_closed", ret, actor, content_hash=content_hash,
                    snapshot_hash=snapshot_hash, suggested_outcome=comparison.suggested_outcome,
                    counts=comparison.counts())
    # Resellable units go back on the shelf with the report, in the same transaction.
    restocked = stock.restock_return(s, ret.warehouse, ret.order.order_no, ret.rma_no, lines, actor)
    return ret, report, [event_] + restocked


def report_of(s: Session, ret: ReturnOrder) -> InspectionReport | None:
    return s.scalar(select(InspectionReport).where(InspectionReport.return_id == ret.id))


def confirm_return(s: Session, rma_no: str, data: dict[str, Any], actor: Actor,
                   ) -> tuple[ReturnOrder, InspectionReport, list[PendingEvent]]:
    outcome = data.get("outcome")
    if outcome not in domain.OUTCOMES:
        raise DomainError("invalid_field", f"outcome must be one of {', '.join(domain.OUTCOMES)}.",
                          field="outcome")
    note = _free_text(data, "note", 500)
    ret = find_return(s, rma_no, lock=True)
    if ret.state == "open":
        raise DomainError("return_not_closed", f"Return {ret.rma_no} is still open; close it first.", 409)
    if ret.state == "confirmed":
        raise DomainError("already_confirmed", f"Return {ret.rma_no} is already confirmed.", 409)
    report = report_of(s, ret)
    assert report is not None
    now = utcnow()
    report.confirmed_outcome, report.confirmed_by = outcome, actor.name
    report.confirmed_at, report.confirm_note = now, note
    ret.state = "confirmed"
    s.flush()
    event_ = _event(s, "return_confirmed", ret, actor, outcome=outcome,
                    suggested_outcome=report.suggested_outcome, note=note,
                    content_hash=report.content_hash)
    return ret, report, [event_]


# --- views -----------------------------------------------------------------------------------

def report_view(ret: ReturnOrder, report: InspectionReport) -> dict[str, Any]:
    return {"rma_no": ret.rma_no, "order_no": ret.order.order_no, "lines": report.lines,
            "content_hash": report.content_hash, "snapshot_hash": report.snapshot_hash,
            "suggested_outcome": report.suggested_outcome, "created_by": report.created_by,
            "created_at": _iso(report.created_at),
            "confirmed_outcome": report.confirmed_outcome, "confirmed_by": report.confirmed_by,
            "confirmed_at": _iso(report.confirmed_at), "confirm_note": report.confirm_note,
            "state": ret.state}


def detail(s: Session, ret: ReturnOrder) -> dict[str, Any]:
    """Everything the QC screen shows: the return, the snapshot, what was packed, what came
    back, the live comparison, the report once closed."""
    order, snap = ret.order, ret.snapshot
    box = shipped(s, ret)
    rows = return_scans(s, ret)
    units = [u for u in returned_units(s, ret, rows) if u.readable]
    comparison = domain.compare(kit_of(ret), box.units, units, waived=box.waived,
                                substitutes=box.substitutes)
    report = report_of(s, ret)
    return {
        **summary(ret, len(rows)),
        "order_status": order.status,
        "snapshot": {"version": snap.version, "hash": snap.content_hash, "lines": snap.lines,
                     "created_at": _iso(snap.created_at)},
        "packed": box.shown,
        "waived": [{"line_no": n, "qty": q} for n, q in sorted(box.waived.items())],
        "scans": [{"scan_id": r.scan_id, "code": r.raw, "sku": r.sku, "lot": r.lot,
                   "serial": r.serial, "condition": r.condition, "note": r.note,
                   "verdict": r.verdict, "photo_url": photo_url(ret, r), "by": r.by,
                   "device_id": r.device_id, "at": _iso(r.at),
                   "name": (r.response or {}).get("name")} for r in rows],
        "comparison": comparison_view(comparison),
        "report": report_view(ret, report) if report is not None else None,
        "links": {"evidence": f"/api/v1/orders/{order.order_no}/evidence",
                  "evidence_page": f"/orders/{order.order_no}/evidence",
                  "label_svg": f"/api/v1/returns/{ret.rma_no}/label.svg",
                  "label_png": f"/api/v1/returns/{ret.rma_no}/label.png",
                  "label_zpl": f"/api/v1/returns/{ret.rma_no}/label.zpl"},
    }
