"""Devices on the floor: handhelds and serial scanners (the registry), label printers and their
print queue."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from floor.db import Base, utcnow


class Device(Base):
    """A handheld appears on its first scan or heartbeat; a serial scanner is registered (API or
    config) with its port. `state` is what the service last knew: a serial reader sets it, a
    handheld's is judged from its last heartbeat when read."""
    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="handheld")  # handheld | serial
    station: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="online")    # online | offline | error
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The debounce rule compares against the device's previous read.
    last_code: Mapped[str | None] = mapped_column(String(512))
    last_code_at: Mapped[dt.datetime | None]
    # Serial scanners: where and how to read them.
    port: Mapped[str | None] = mapped_column(String(255))
    baudrate: Mapped[int | None]
    terminator: Mapped[str | None] = mapped_column(String(8))          # CR | LF | CRLF | None: any
    enabled: Mapped[bool] = mapped_column(default=True, server_default="1")
    state_reason: Mapped[str | None] = mapped_column(String(200))
    state_changed_at: Mapped[dt.datetime | None]
    registered_by: Mapped[str | None] = mapped_column(String(100))
    registered_at: Mapped[dt.datetime | None]
    # How this scanner writes what a keyboard cannot type (e.g. {"gs_substitute": "<GS>"} for
    # FNC1); None: the warehouse's setting applies.
    scanner_profile: Mapped[dict[str, Any] | None]


class Printer(Base):
    """A label printer at a station: raw TCP (port 9100, ZPL) or a folder (tests, PDF-less
    archives)."""
    __tablename__ = "printers"
    id: Mapped[int] = mapped_column(primary_key=True)
    printer_id: Mapped[str] = mapped_column(String(64), unique=True)
    station: Mapped[str] = mapped_column(String(32), index=True)
    driver: Mapped[str] = mapped_column(String(16))                     # tcp | file
    address: Mapped[str] = mapped_column(String(255))                   # host:port | folder
    state: Mapped[str] = mapped_column(String(16), default="online")    # online | offline | error
    state_reason: Mapped[str | None] = mapped_column(String(200))
    registered_by: Mapped[str | None] = mapped_column(String(100))
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PrintJob(Base):
    """One label to print, queued per printer and sent in order. Idempotent on `job_id`."""
    __tablename__ = "print_jobs"
    __table_args__ = (Index("ix_print_jobs_queue", "printer_id", "state", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    printer_id: Mapped[int] = mapped_column(ForeignKey("printers.id"))
    printer: Mapped[Printer] = relationship()
    kind: Mapped[str] = mapped_column(String(16))                       # waybill | trace | station | location
    order_no: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)                          # ZPL
    state: Mapped[str] = mapped_column(String(16), default="queued")    # queued | printed | failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    printed_at: Mapped[dt.datetime | None]
