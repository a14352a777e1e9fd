"""Label printing use cases: printers, the print queue's jobs, the waybill label.

Load, decide, change, flush; never commit, never emit: each returns the events to publish after
the commit. Printing the waybill label of a packed order moves it `packed → labelling` when the
job is queued and `labelling → labelled` when the print queue has sent it (`job_printed`); every
move is a status event with who, which printer and station, and why, and every job row stays.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, Callable, Sequence

from flask import current_app, has_app_context
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from floor import destinations, labels
from floor.db import utcnow
from floor.devices.models import Printer, PrintJob
from floor.eventlog import PendingEvent, record_event
from floor.packing import domain
from floor.packing import operations as packing
from floor.packing.domain import Actor, DomainError
from floor.packing.models import Order, Station, Warehouse

DRIVERS = ("tcp", "file")
JOB_KINDS = ("waybill", "trace", "station", "location")
PLACE_KINDS = ("station", "location")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
AUTO_PRINT = "auto_print_waybill"


def _cjk_font() -> str:
    if has_app_context():
        return str(current_app.config.get("LABEL_CJK_FONT") or labels.DEFAULT_CJK_FONT)
    return labels.DEFAULT_CJK_FONT


def clean_text(data: dict[str, Any], name: str, max_len: int, required: bool = True) -> str | None:
    """packing.clean_text, and no lone surrogates (they cannot be stored or printed)."""
    value = packing.clean_text(data, name, max_len, required=required)
    if value is not None and any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise DomainError("invalid_field", f"Field '{name}' is not valid text.", field=name)
    return value


def clean_identifier(data: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = clean_text(data, name, 64, required=required)
    if value is not None and not _ID.match(value):
        raise DomainError("invalid_field", f"Field '{name}' takes letters, digits, '.', '_' and '-' "
                                           "(at most 64, starting with a letter or digit).", field=name)
    return value


def _station_rooms(s: Session, station_code: str | None, order: Order | None = None) -> list[str]:
    rooms: list[str] = []
    if order is not None:
        rooms.append(f"warehouse:{order.warehouse.code}")
    elif station_code:
        code = s.scalar(select(Warehouse.code).join(Station, Station.warehouse_id == Warehouse.id)
                        .where(Station.code == station_code))
        if code:
            rooms.append(f"warehouse:{code}")
    if station_code:
        rooms.append(f"station:{station_code}")
    if order is not None:
        rooms.append(f"order:{order.order_no}")
    return rooms or ["warehouse:*"]


# --- printers --------------------------------------------------------------------------------

def printer_view(printer: Printer, queue_depth: int = 0, last_error: str | None = None) -> dict[str, Any]:
    return {"printer_id": printer.printer_id, "station": printer.station, "driver": printer.driver,
            "address": printer.address, "state": printer.state, "state_reason": printer.state_reason,
            "queue_depth": queue_depth, "last_error": last_error,
            "registered_by": printer.registered_by,
            "registered_at": printer.registered_at.isoformat() if printer.registered_at else None}


def _printer_event(s: Session, printer: Printer, by: str, why: str, now: dt.datetime) -> PendingEvent:
    return record_event(s, "printer", _station_rooms(s, printer.station),
                        {**printer_view(printer), "by": by, "why": why, "at": now.isoformat()}, now)


def register_printer(s: Session, data: dict[str, Any], actor: Actor, file_roots: Sequence[str],
                     blocked: Sequence[destinations.Network] = ()
                     ) -> tuple[Printer, bool, list[PendingEvent]]:
    """Create or change a printer. A TCP printer is `host:port`, not an address in a blocked
    network (`blocked`, FLOOR_PRINTER_BLOCKED_NETWORKS; host names are checked at each send);
    a file printer's folder must be absolute and inside the allowed print folder
    (FLOOR_PRINT_FILE_ROOT)."""
    from floor.devices.printing import file_folder, parse_tcp_address

    printer_id = clean_identifier(data, "printer_id")
    station = clean_text(data, "station", 32)
    driver = data.get("driver")
    if driver not in DRIVERS:
        raise DomainError("invalid_field", f"driver must be one of {', '.join(DRIVERS)}.", field="driver")
    address = clean_text(data, "address", 255)
    assert printer_id and station and address
    if driver == "tcp":
        try:
            host, port = parse_tcp_address(address)
        except ValueError as exc:
            raise DomainError("invalid_address", str(exc), 400, field="address") from None
        if destinations.literal_blocked(host, blocked):
            raise DomainError("blocked_destination", "The printer's address is in a network "
                              "printers may not reach (FLOOR_PRINTER_BLOCKED_NETWORKS).", 400,
                              field="address")
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    else:
        if not address.startswith("/"):
            raise DomainError("invalid_address", "A file printer's folder must be an absolute path.",
                              400, field="address")
        try:
            address = str(file_folder(address, file_roots))
        except ValueError as exc:
            raise DomainError("folder_not_allowed", str(exc), 400, field="address") from None
    packing.station_ref(s, station)                  # stations are created on first use
    now = utcnow()
    printer = s.scalar(select(Printer).where(Printer.printer_id == printer_id).with_for_update())
    created = printer is None
    if printer is None:
        printer = Printer(printer_id=printer_id, station=station, driver=driver, address=address,
                          state="online", registered_by=actor.name, registered_at=now)
        s.add(printer)
    else:
        if (printer.driver, printer.address) != (driver, address):
            printer.state, printer.state_reason = "online", None
        printer.station, printer.driver, printer.address = station, driver, address
        printer.registered_by, printer.registered_at = actor.name, now
    s.flush()
    why = "registered" if created else "re-registered"
    return printer, created, [_printer_event(s, printer, actor.name, why, now)]


def list_printers(s: Session) -> list[dict[str, Any]]:
    printers = s.scalars(select(Printer).order_by(Printer.station, Printer.printer_id)).all()
    depth = dict(s.execute(select(PrintJob.printer_id, func.count())
                           .where(PrintJob.state == "queued").group_by(PrintJob.printer_id)).all())
    last_ids = select(func.max(PrintJob.id)).where(PrintJob.last_error.is_not(None)) \
        .group_by(PrintJob.printer_id)
    errors = {job.printer_id: job.last_error
              for job in s.scalars(select(PrintJob).where(PrintJob.id.in_(last_ids)))}
    return [printer_view(p, depth.get(p.id, 0), errors.get(p.id)) for p in printers]


def find_printer(s: Session, printer_id: str) -> Printer:
    printer = s.scalar(select(Printer).where(Printer.printer_id == printer_id))
    if printer is None:
        raise DomainError("unknown_printer", f"No printer {printer_id}.", 404)
    return printer


def station_printer(s: Session, station: str) -> Printer | None:
    """The station's printer: an online one first, else the first registered."""
    return s.scalar(select(Printer).where(Printer.station == station)
                    .order_by(case((Printer.state == "online", 0), else_=1), Printer.id).limit(1))


# --- jobs ------------------------------------------------------------------------------------

def job_view(job: PrintJob) -> dict[str, Any]:
    return {"job_id": job.job_id, "state": job.state, "kind": job.kind, "order_no": job.order_no,
            "printer_id": job.printer.printer_id, "station": job.printer.station,
            "attempts": job.attempts, "last_error": job.last_error,
            "next_attempt_at": job.next_attempt_at.isoformat() if job.state == "queued" else None,
            "created_by": job.created_by, "created_at": job.created_at.isoformat(),
            "printed_at": job.printed_at.isoformat() if job.printed_at else None}


def find_job(s: Session, job_id: str) -> PrintJob:
    job = s.scalar(select(PrintJob).where(PrintJob.job_id == job_id))
    if job is None:
        raise DomainError("unknown_job", f"No print job {job_id}.", 404)
    return job


def _existing_job(s: Session, job_id: str | None, kind: str, order_no: str | None) -> PrintJob | None:
    """The job a client's repeated `job_id` already made; the same id for other work is a 409."""
    if job_id is None:
        return None
    job = s.scalar(select(PrintJob).where(PrintJob.job_id == job_id))
    if job is not None and (job.kind, job.order_no) != (kind, order_no):
        raise DomainError("job_id_in_use", f"Job id {job_id} was used for another label.", 409)
    return job


def enqueue(s: Session, printer: Printer, kind: str, payload: str, actor: Actor,
            job_id: str | None = None, order: Order | None = None) -> tuple[PrintJob, list[PendingEvent]]:
    """Queue one label on a printer and say so on the station's room (`print_queued` also
    wakes the print queue when published)."""
    assert kind in JOB_KINDS
    now = utcnow()
    job = PrintJob(job_id=job_id or uuid.uuid4().hex, printer_id=printer.id, printer=printer,
                   kind=kind, order_no=order.order_no if order else None, payload=payload,
                   state="queued", attempts=0, next_attempt_at=now, created_by=actor.name,
                   created_at=now)
    s.add(job)
    s.flush()
    event = record_event(s, "print_queued", _station_rooms(s, printer.station, order), {
        "job_id": job.job_id, "printer_id": printer.printer_id, "station": printer.station,
        "kind": kind, "order_no": job.order_no, "by": actor.name, "role": actor.role,
        "device_id": actor.device_id, "at": now.isoformat()}, now)
    return job, [event]


def _waybill_payload(order: Order) -> str:
    customer = order.customer if isinstance(order.customer, dict) else {}

    def text(key: str) -> str:
        value = customer.get(key)
        return value if isinstance(value, str) else ""

    address = [text(k) for k in ("province", "city", "district", "address") if text(k)]
    lines = order.snapshot.lines if order.snapshot is not None else order.lines
    kit = [f"{line.get('name') or line.get('sku')} x{line.get('qty', 1)}" for line in lines or []
           if isinstance(line, dict)]
    assert order.waybill_no
    try:
        return labels.waybill_zpl(order.order_no, order.waybill_no, order.channel, text("name"),
                                  address, kit, phone=text("phone") or None, cjk_font=_cjk_font())
    except labels.LabelError as exc:
        raise DomainError(exc.code, exc.message, 409) from None


def print_waybill(s: Session, order: Order, station: str, actor: Actor, job_id: str | None,
                  printer_id: str | None = None) -> tuple[PrintJob, list[PendingEvent]]:
    """Queue the order's waybill label on the station's printer. Allowed once the order is
    packed (later: a reprint, which moves no status). Queuing moves `packed → labelling`."""
    existing = _existing_job(s, job_id, "waybill", order.order_no)
    if existing is not None:
        return existing, []
    if order.status not in domain.PACKED_OR_LATER:
        raise DomainError("not_packed", f"Order {order.order_no} is {order.status}; its label "
                                        "prints once it is packed.", 409, order_status=order.status)
    if not order.waybill_no:
        raise DomainError("waybill_required", f"Order {order.order_no} has no waybill number yet; "
                                              "scan or bind the waybill first.", 409)
    printer = find_printer(s, printer_id) if printer_id else station_printer(s, station)
    if printer is None:
        raise DomainError("no_printer", f"No label printer is registered at station {station}.",
                          409, station=station)
    payload = _waybill_payload(order)
    job, events = enqueue(s, printer, "waybill", payload, actor, job_id, order)
    machine = packing.machine_for(order)
    if order.status == domain.PACKED and machine.can_transition(domain.PACKED, domain.LABELLING):
        status_actor = Actor(actor.name, actor.role, actor.device_id, station)
        events.insert(0, packing.set_status(s, order, domain.LABELLING, status_actor,
                                            f"label queued on {printer.printer_id} (job {job.job_id})"))
    return job, events


def print_place_label(s: Session, printer: Printer, data: dict[str, Any],
                      actor: Actor) -> tuple[PrintJob, list[PendingEvent]]:
    """A station's or location's label on a given printer."""
    kind = data.get("kind")
    if kind not in PLACE_KINDS:
        raise DomainError("invalid_field", f"kind must be one of {', '.join(PLACE_KINDS)}.", field="kind")
    code = clean_text(data, "code", 32 if kind == "station" else 64)
    assert code is not None
    job_id = clean_identifier(data, "job_id", required=False)
    existing = _existing_job(s, job_id, kind, None)
    if existing is not None:
        return existing, []
    builder = labels.station_zpl if kind == "station" else labels.location_zpl
    try:
        payload = builder(code, cjk_font=_cjk_font())
    except labels.LabelError as exc:
        raise DomainError(exc.code, exc.message, 400, field="code") from None
    return enqueue(s, printer, kind, payload, actor, job_id)


def after_pack_complete(s: Session, order: Order, station_code: str, actor: Actor) -> list[PendingEvent]:
    """A pack session just completed: queue the waybill label when the warehouse prints
    automatically. Never refuses the scan: a label that cannot be queued is a `print_failed`
    event on the station's and warehouse's boards."""
    if not (order.warehouse.settings or {}).get(AUTO_PRINT):
        return []
    try:
        _job, events = print_waybill(s, order, station_code, actor, None)
    except DomainError as exc:
        now = utcnow()
        return [record_event(s, "print_failed", _station_rooms(s, station_code, order), {
            "job_id": None, "printer_id": None, "station": station_code, "kind": "waybill",
            "order_no": order.order_no, "code": exc.code, "error": exc.message,
            "by": actor.name, "at": now.isoformat()}, now)]
    return events


def set_auto_print(s: Session, code: str, data: dict[str, Any]) -> dict[str, Any]:
    value = data.get(AUTO_PRINT)
    if not isinstance(value, bool):
        raise DomainError("invalid_field", f"{AUTO_PRINT} is true or false.", field=AUTO_PRINT)
    code = packing.clean_text({"warehouse": code}, "warehouse", 32) or code
    warehouse = packing.warehouse_by_code(s, code)
    warehouse.settings = {**(warehouse.settings or {}), AUTO_PRINT: value}
    return {"warehouse": warehouse.code, AUTO_PRINT: value}


# --- results from the print queue ------------------------------------------------------------

def _order_of(s: Session, job: PrintJob) -> Order | None:
    """The job's order (order numbers may repeat across channels and warehouses: then the one whose waybill
    is on the label)."""
    if not job.order_no:
        return None
    rows = s.scalars(select(Order).where(Order.order_no == job.order_no).with_for_update()).all()
    if len(rows) > 1:
        rows = [o for o in rows if o.waybill_no and labels.zpl_escape(o.waybill_no) in job.payload]
    return rows[0] if len(rows) == 1 else None


def job_printed(s: Session, job_pk: int, now: dt.datetime) -> list[PendingEvent]:
    """The printer took the job: printed; a waybill label moves its order to `labelled`."""
    job = s.get(PrintJob, job_pk, with_for_update=True)
    if job is None or job.state != "queued":
        return []
    printer = job.printer
    job.state, job.printed_at, job.attempts, job.last_error = "printed", now, job.attempts + 1, None
    events: list[PendingEvent] = []
    if printer.state != "online":
        printer.state, printer.state_reason = "online", None
        events.append(_printer_event(s, printer, "print queue", f"job {job.job_id} printed", now))
    order = _order_of(s, job) if job.kind == "waybill" else None
    if order is not None and order.status in (domain.PACKED, domain.LABELLING):
        machine = packing.machine_for(order)
        if machine.can_transition(order.status, domain.LABELLED):
            printer_actor = Actor(job.created_by, "printer", printer.printer_id, printer.station)
            events.append(packing.set_status(
                s, order, domain.LABELLED, printer_actor,
                f"label printed on {printer.printer_id} (job {job.job_id})", now, machine))
    return events


def job_failed(s: Session, job_pk: int, error: str, printer_state: str, now: dt.datetime,
               max_attempts: int, backoff: Callable[[int], dt.timedelta]) -> list[PendingEvent]:
    """A send failed: retry later, or after `max_attempts` give the job up and say so."""
    job = s.get(PrintJob, job_pk, with_for_update=True)
    if job is None or job.state != "queued":
        return []
    printer = job.printer
    job.attempts += 1
    job.last_error = error[:500]
    events: list[PendingEvent] = []
    if (printer.state, printer.state_reason) != (printer_state, error[:200]):
        was = printer.state
        printer.state, printer.state_reason = printer_state, error[:200]
        if was != printer_state:
            events.append(_printer_event(s, printer, "print queue", error[:200], now))
    if job.attempts < max_attempts:
        job.next_attempt_at = now + backoff(job.attempts)
        return events
    job.state = "failed"
    order = _order_of(s, job) if job.kind == "waybill" else None
    events.append(record_event(s, "print_failed", _station_rooms(s, printer.station, order), {
        "job_id": job.job_id, "printer_id": printer.printer_id, "station": printer.station,
        "kind": job.kind, "order_no": job.order_no, "code": "print_failed", "error": job.last_error,
        "attempts": job.attempts, "by": job.created_by, "at": now.isoformat()}, now))
    return events
